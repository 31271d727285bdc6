// Detail pages: an image with its posteriors, or a scene with its landmark boxes over the image.
"use strict";

const root = document.getElementById("detail");
const kind = root.dataset.kind;
const id = root.dataset.id;

function metaRows(pairs) {
  document.getElementById("metadata").replaceChildren(...pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => el("tr", {}, el("td", {text: k}), el("td", {text: typeof v === "object" ? JSON.stringify(v) : v}))));
}

async function showImage() {
  const d = await getJSON(`/api/images/${id}`);
  document.getElementById("image").src = d.image;
  document.getElementById("title").textContent = `${d.predicted_class} ${percent(d.confidence)}` + (d.abstained ? " (abstained)" : "");
  document.getElementById("posteriors").replaceChildren(...d.top_k.map(p => el("div", {class: "bar"},
    el("span", {text: p["class"]}), el("div", {class: "fill", style: `width:${100 * p.p}%`}), el("span", {text: percent(p.p)}))));
  metaRows([["file", d.file_name], ["path", d.path], ["model", d.model_id], ["data set", d.dataset], ["sol", d.sol],
            ["instrument", d.instrument], ["source image", d.source_image], ["size", `${d.width} x ${d.height}`],
            ["classified", d.classified_at], ...Object.entries(d.metadata)]);
  if (d.scene) document.getElementById("metadata").append(el("tr", {}, el("td", {text: "scene"}),
    el("td", {}, el("a", {href: d.scene, text: "landmarks of " + d.source_image}))));
}

async function showScene() {
  const d = await getJSON(`/api/scenes/${id}`);
  document.getElementById("image").src = d.image;
  document.getElementById("title").textContent = d.source_image;
  document.getElementById("count-confidence").textContent = d.count_confidence;
  const svg = document.getElementById("boxes");
  svg.setAttribute("viewBox", `0 0 ${d.working_width} ${d.working_height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  const tooltip = document.getElementById("tooltip");
  const shown = new Set(d.landmarks.map(m => m.predicted_class));
  const rects = d.landmarks.map(m => {
    const r = svgEl("rect", {x: m.x, y: m.y, width: m.w, height: m.h, stroke: classColour(m.predicted_class),
                             class: m.counted ? "counted" : "below", "data-class": m.predicted_class, "data-id": m.landmark_id});
    const label = `${m.predicted_class} ${percent(m.confidence)} (landmark ${m.landmark_id})`;
    r.append(svgEl("title", {}));
    r.firstChild.textContent = label;
    r.addEventListener("mousemove", e => {
      tooltip.textContent = label; tooltip.hidden = false;
      tooltip.style.left = `${e.clientX + 12}px`; tooltip.style.top = `${e.clientY + 12}px`;
    });
    r.addEventListener("mouseleave", () => { tooltip.hidden = true; });
    svg.append(r);
    return r;
  });
  const classes = [...new Set([...d.classes, ...shown])].filter(c => shown.has(c));
  document.getElementById("toggles").replaceChildren(...classes.map(c => {
    const box = el("input", {type: "checkbox", checked: true, "data-class": c});
    box.addEventListener("change", () => {
      for (const r of rects) if (r.dataset["class"] === c) r.style.display = box.checked ? "" : "none";
    });
    const n = d.landmarks.filter(m => m.predicted_class === c).length;
    return el("label", {}, box, el("span", {class: "swatch", style: `background:${classColour(c)}`}),
              el("span", {text: `${c} (${d.counts[c] || 0} of ${n})`}));
  }));
  metaRows([["file", d.file_name], ["path", d.path], ["model", d.model_id],
            ["source size", `${d.source_width} x ${d.source_height}`], ["shown at", `${d.working_width} x ${d.working_height}`],
            ["landmarks", d.landmarks.length], ["notes", d.notes], ["classified", d.classified_at]]);
  document.getElementById("crops").replaceChildren(...d.landmarks.map(m => el("figure", {
    style: `border-color:${classColour(m.predicted_class)}`, "data-class": m.predicted_class},
    el("img", {src: m.crop, loading: "lazy", alt: `landmark ${m.landmark_id}`}),
    el("figcaption", {text: `${m.landmark_id}: ${m.predicted_class} ${percent(m.confidence)}`}))));
}

(kind === "images" ? showImage() : showScene()).catch(error => showError(document.querySelector(".side"), error));
