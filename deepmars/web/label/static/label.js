// The labeling page: one image at a time, class buttons, keys (class number, L, U), progress.
// Everything comes from the JSON API; names reach the page through textContent only (dom.js).
"use strict";

const SUGGEST_KEY = "deepmars-label-suggestion";
const DIGIT_WAIT_MS = 700;  // a class number of two digits: the second key within this time
const state = {classes: [], item: null, busy: false, digits: "", digitTimer: null, imageUrl: null};
const $ = id => document.getElementById(id);

function setState(name) { document.body.dataset.state = name; }

function status(text) { $("status").textContent = text || ""; }

function showProgress(p) {
  $("p-labeled").textContent = p.labeled;
  $("p-skipped").textContent = p.skipped;
  $("p-left").textContent = p.left;
  $("p-mine").textContent = p.mine;
  $("p-unlabelable").textContent = p.unlabelable;
  $("p-unlabelable-wrap").hidden = !p.unlabelable;
  $("bar").max = Math.max(1, p.total - p.unlabelable);
  $("bar").value = p.labeled;
}

function showSuggestion() {
  const box = $("suggestion");
  const item = state.item;
  const wanted = $("show-suggestion").checked && item && item.suggestion;
  box.hidden = !wanted;
  if (wanted) {
    box.replaceChildren("Model: ", el("b", {text: item.suggestion}),
                        item.confidence === null ? "" : ` (${percent(item.confidence)})`);
  }
  for (const button of document.querySelectorAll("#classes button")) {
    button.classList.toggle("suggested", Boolean(wanted) && button.dataset.name === item.suggestion);
  }
}

function renderClasses(classes) {
  state.classes = classes;
  $("classes").replaceChildren(...classes.map(c => el("button", {
    type: "button", "data-class": c.id, "data-name": c.name, onclick: () => answer(c.id),
  }, el("kbd", {text: c.id}), " ", c.name)));
}

async function signIn(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  try {
    const queue = await apiJSON("GET", "/api/queue");
    $("login").hidden = true;
    $("labeler").hidden = false;
    $("logout").hidden = false;
    $("who").textContent = queue.user;
    renderClasses(queue.classes);
    const saved = localStorage.getItem(SUGGEST_KEY);
    $("show-suggestion").checked = saved === null ? queue.show_suggestion : saved === "1";
    showProgress(queue.progress);
    await next();
  } catch (error) {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin(error.status === 401 ? "That token is not a user's of this queue." : String(error.message));
  }
}

function showLogin(message) {
  $("labeler").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  setState("login");
}

async function show(item) {
  state.item = item;
  if (state.imageUrl) URL.revokeObjectURL(state.imageUrl);
  state.imageUrl = null;
  $("done").hidden = item !== null;
  $("figure").hidden = item === null;
  if (item === null) {
    $("figure").removeAttribute("data-item");
    setState("done");
    return;
  }
  try {
    const blob = await (await api("GET", item.image)).blob();
    state.imageUrl = URL.createObjectURL(blob);
  } catch (error) {
    if (error.status === 415) {  // cannot be decoded: the server marked it unlabelable
      status(`Skipped ${item.name}: ${error.message}`);
      return next();
    }
    throw error;
  }
  $("image").src = state.imageUrl;
  $("name").textContent = item.name;
  $("figure").dataset.item = item.id;
  showSuggestion();
  setState("ready");
}

async function next() {
  const reply = await apiJSON("POST", "/api/next");
  showProgress(reply.progress);
  await show(reply.item);
}

async function act(work) {
  if (state.busy) return;
  state.busy = true;
  setState("busy");
  try {
    await work();
  } catch (error) {
    if (error.status === 401) showLogin("Signed out: sign in again.");
    else { status(String(error.message)); setState("ready"); }
  } finally {
    state.busy = false;
  }
}

function answer(classId) {
  if (!state.item) return;
  const item = state.item;
  const name = state.classes.find(c => c.id === classId).name;
  return act(async () => {
    const reply = await apiJSON("POST", `/api/items/${item.id}/label`, {class_id: classId});
    showProgress(reply.progress);
    status(`${item.name}: ${name}`);
    await next();
  });
}

function later() {
  if (!state.item) return;
  const item = state.item;
  return act(async () => {
    await apiJSON("POST", `/api/items/${item.id}/later`);
    status(`${item.name}: later`);
    await next();
  });
}

function undo() {
  return act(async () => {
    const reply = await apiJSON("POST", "/api/undo");
    showProgress(reply.progress);
    if (reply.item === null) { status("Nothing to undo."); setState(state.item ? "ready" : "done"); return; }
    status(`Undone: ${reply.item.name} is back.`);
    await show(reply.item);
  });
}

// Class numbers: a key that can only be one class answers at once; one that may start a longer
// number (1 of 12) waits DIGIT_WAIT_MS for the next digit.
function digit(d) {
  clearTimeout(state.digitTimer);
  state.digits += d;
  const ids = state.classes.map(c => String(c.id));
  const exact = ids.includes(state.digits);
  const longer = ids.some(id => id.length > state.digits.length && id.startsWith(state.digits));
  const commit = () => { const n = Number(state.digits); state.digits = ""; if (exact) answer(n); };
  if (!exact && !longer) { state.digits = ""; status(`No class ${d}.`); return; }
  if (exact && !longer) { commit(); return; }
  state.digitTimer = setTimeout(commit, DIGIT_WAIT_MS);
}

document.addEventListener("keydown", event => {
  if (event.target instanceof HTMLInputElement || event.ctrlKey || event.metaKey || event.altKey) return;
  if ($("labeler").hidden) return;
  if (/^[0-9]$/.test(event.key)) { digit(event.key); event.preventDefault(); }
  else if (event.key === "l" || event.key === "L") { later(); event.preventDefault(); }
  else if (event.key === "u" || event.key === "U") { undo(); event.preventDefault(); }
});

$("later").addEventListener("click", later);
$("undo").addEventListener("click", undo);
$("show-suggestion").addEventListener("change", () => {
  localStorage.setItem(SUGGEST_KEY, $("show-suggestion").checked ? "1" : "0");
  showSuggestion();
});
$("login").addEventListener("submit", event => { event.preventDefault(); signIn($("token").value.trim()); });
$("logout").addEventListener("click", async () => {
  await api("POST", "/api/release").catch(() => {});
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin("Signed out.");
});
window.addEventListener("pagehide", () => {
  if (sessionToken()) fetch("/api/release", {method: "POST", keepalive: true,
                                              headers: {"Authorization": `Bearer ${sessionToken()}`}});
});

if (sessionToken()) signIn(sessionToken()); else showLogin("");
