// The Atlas search page: state in the URL, results and facet counts from the JSON API.
"use strict";

const state = {kind: "images", q: "", model: [], class: [], instrument: [], sol_min: "", sol_max: "",
               source_image: "", min_confidence: 0, abstained: false, min_count: {}};
let catalog = null;
let next = null;
let generation = 0;  // answers to older requests are dropped

function readURL() {
  const p = new URLSearchParams(location.search);
  state.kind = p.get("kind") === "scenes" ? "scenes" : "images";
  state.q = p.get("q") || "";
  for (const key of ["model", "class", "instrument"]) state[key] = p.getAll(key);
  state.sol_min = p.get("sol_min") || "";
  state.sol_max = p.get("sol_max") || "";
  state.source_image = p.get("source_image") || "";
  state.min_confidence = Number(p.get("min_confidence") || 0);
  state.abstained = p.get("abstained") === "true";
  state.min_count = {};
  for (const item of p.getAll("min_count")) {
    const at = item.lastIndexOf(":");
    if (at > 0) state.min_count[item.slice(0, at)] = Number(item.slice(at + 1));
  }
}

function params() {
  const p = new URLSearchParams();
  p.set("kind", state.kind);
  if (state.q) p.set("q", state.q);
  for (const key of ["model", "class", "instrument"]) for (const v of state[key]) p.append(key, v);
  if (state.sol_min !== "") p.set("sol_min", state.sol_min);
  if (state.sol_max !== "") p.set("sol_max", state.sol_max);
  if (state.source_image) p.set("source_image", state.source_image);
  // the value as given (a link may carry 0.935): the API counts any threshold exactly
  if (state.kind === "images" && state.min_confidence > 0) p.set("min_confidence", String(state.min_confidence));
  if (state.kind === "images" && state.abstained) p.set("abstained", "true");
  if (state.kind === "scenes")
    for (const [name, n] of Object.entries(state.min_count)) if (n > 0) p.append("min_count", `${name}:${n}`);
  return p;
}

function update() {
  history.replaceState(null, "", "?" + params().toString());
  document.getElementById("export").setAttribute("href", "/api/export.csv?" + params().toString());
  refresh();
}

async function refresh() {
  const mine = ++generation;
  const query = params().toString();
  const summary = document.getElementById("summary");
  summary.textContent = "Searching…";
  try {
    const [page, facets] = await Promise.all([getJSON("/api/search?" + query), getJSON("/api/facets?" + query)]);
    if (mine !== generation) return;
    next = page.next;
    document.getElementById("results").replaceChildren(...page.results.map(card));
    document.getElementById("more").hidden = !next;
    summary.textContent = `${page.total.toLocaleString()} ${state.kind === "images" ? "images" : "scenes"}` +
      (page.text.classes.length ? ` · text names ${page.text.classes.join(", ")}` : "") +
      (page.text.words.length ? ` · words: ${page.text.words.join(" ")}` : "");
    renderSuggestions(page.text.suggestions);
    renderFacets(facets);
  } catch (error) {
    if (mine === generation) showError(document.getElementById("results"), error);
    summary.textContent = "";
  }
}

async function more() {
  if (!next) return;
  const mine = generation;
  const page = await getJSON("/api/search?" + params().toString() + "&after=" + encodeURIComponent(next));
  if (mine !== generation) return;
  next = page.next;
  document.getElementById("results").append(...page.results.map(card));
  document.getElementById("more").hidden = !next;
}

function card(item) {
  const caption = el("div", {class: "caption"});
  if (state.kind === "images") {
    caption.append(el("div", {class: "class", text: `${item.predicted_class} ${percent(item.confidence)}`}));
    if (item.abstained) caption.append(el("div", {class: "abstained", text: "abstained"}));
    const where = item.sol !== null ? `sol ${item.sol}${item.instrument ? " · " + item.instrument : ""}`
                                    : (item.source_image || "");
    caption.append(el("div", {class: "muted", text: where}));
  } else {
    caption.append(el("div", {class: "class", text: item.source_image}));
    const counts = Object.entries(item.counts).map(([c, n]) => `${n} ${c}`).join(", ");
    caption.append(el("div", {class: "muted", text: counts || `${item.landmarks} landmarks, none counted`}));
  }
  caption.append(el("div", {class: "muted", text: item.file_name, title: item.file_name}));
  return el("a", {class: "card", href: item.page, "data-id": item.id},
            el("img", {src: item.thumbnail, loading: "lazy", alt: item.file_name}), caption);
}

function renderSuggestions(words) {
  const box = document.getElementById("suggestions");
  if (!words.length) { box.replaceChildren(); return; }
  box.replaceChildren("Did you mean ", ...words.map(w => el("button", {type: "button", text: w, onclick: () => {
    state.q = w; document.getElementById("q").value = w; update();
  }})), "?");
}

function checkboxFacet(id, key, values) {
  const box = document.getElementById(id);
  box.replaceChildren(...values.map(v => {
    const input = el("input", {type: "checkbox", "data-value": v.value, checked: state[key].includes(v.value)});
    input.addEventListener("change", () => {
      state[key] = input.checked ? [...state[key], v.value] : state[key].filter(x => x !== v.value);
      update();
    });
    return el("label", {"data-value": v.value}, input, el("span", {class: "name", text: v.label, title: v.label}),
              el("span", {class: "count", text: v.count.toLocaleString()}));
  }));
  if (!values.length) box.replaceChildren(el("span", {class: "muted", text: "none"}));
  // a facet the catalog has no values for (no instrument in HiRISE rows) is left out
  box.closest("section").hidden = !values.length && !state[key].length;
}

function renderFacets(f) {
  checkboxFacet("facet-class", "class", f["class"]);
  checkboxFacet("facet-model", "model", f.model);
  checkboxFacet("facet-instrument", "instrument", f.instrument);
  const sources = document.getElementById("facet-source_image");
  sources.replaceChildren(...f.source_image.map(v => el("button", {
    type: "button", class: "value" + (state.source_image === v.value ? " active" : ""), "data-value": v.value,
    onclick: () => { state.source_image = state.source_image === v.value ? "" : v.value; update(); }},
    el("span", {class: "name", text: v.label}), el("span", {class: "count", text: v.count}))));
  sources.closest("section").hidden = !f.source_image.length && !state.source_image;
  document.getElementById("facet-sol").closest("section").hidden =
    !f.sol.length && state.sol_min === "" && state.sol_max === "";
  const top = Math.max(1, ...f.sol.map(b => b.count));
  document.getElementById("facet-sol").replaceChildren(...f.sol.map(b => el("div", {
    class: "bar" + (String(b.start) === state.sol_min && String(b.end) === state.sol_max ? " active" : ""),
    style: `height:${Math.max(2, 60 * b.count / top)}px`, title: `sols ${b.start}-${b.end}: ${b.count}`,
    onclick: () => { state.sol_min = String(b.start); state.sol_max = String(b.end); syncInputs(); update(); }})));
}

function renderMinCounts() {
  const box = document.getElementById("min-counts");
  const classes = Object.keys(catalog.max_counts).sort();
  box.replaceChildren(...classes.map(name => {
    const value = state.min_count[name] || 0;
    const out = el("output", {text: value});
    const slider = el("input", {type: "range", min: 0, max: catalog.max_counts[name], step: 1, value,
                                class: "min-count-slider", "data-class": name});
    slider.addEventListener("input", () => { out.textContent = slider.value; });
    slider.addEventListener("change", () => { state.min_count[name] = Number(slider.value); update(); });
    return el("label", {class: "min-count"}, el("span", {text: name}), slider, out);
  }));
  document.getElementById("count-confidence").textContent = catalog.count_confidence;
}

function renderKinds() {
  const kinds = [["images", catalog.models.some(m => m.images)], ["scenes", catalog.models.some(m => m.scenes)]];
  const box = document.getElementById("kinds");
  box.replaceChildren(...kinds.filter(([, has]) => has).map(([kind]) => el("button", {
    type: "button", id: `kind-${kind}`, class: state.kind === kind ? "active" : "", text: kind,
    onclick: () => { state.kind = kind; state.class = []; document.body.className = "kind-" + kind; renderKinds(); update(); }})));
  document.body.className = "kind-" + state.kind;
}

function confidenceText(value) {
  const exact = String(value);  // 0.935 as 0.935, 0.9 as 0.90
  return exact.length > 4 ? exact : value.toFixed(2);
}

function syncInputs() {
  document.getElementById("q").value = state.q;
  document.getElementById("confidence").value = state.min_confidence;
  document.getElementById("confidence-value").textContent = confidenceText(state.min_confidence);
  document.getElementById("abstained").checked = state.abstained;
  document.getElementById("sol-min").value = state.sol_min;
  document.getElementById("sol-max").value = state.sol_max;
}

async function start() {
  readURL();
  try {
    catalog = await getJSON("/api/catalog");
  } catch (error) {
    showError(document.getElementById("results"), error);
    return;
  }
  if (!catalog.models.some(m => m.images) && catalog.models.some(m => m.scenes) && !location.search)
    state.kind = "scenes";
  renderKinds();
  renderMinCounts();
  syncInputs();
  document.getElementById("search-form").addEventListener("submit", e => {
    e.preventDefault(); state.q = document.getElementById("q").value.trim(); update();
  });
  const slider = document.getElementById("confidence");
  slider.addEventListener("input", () => {
    document.getElementById("confidence-value").textContent = Number(slider.value).toFixed(2);
  });
  slider.addEventListener("change", () => { state.min_confidence = Number(slider.value); update(); });
  document.getElementById("abstained").addEventListener("change", e => { state.abstained = e.target.checked; update(); });
  for (const id of ["sol-min", "sol-max"]) document.getElementById(id).addEventListener("change", e => {
    state[id.replace("-", "_")] = e.target.value; update();
  });
  document.getElementById("more").addEventListener("click", more);
  update();
}

start();
