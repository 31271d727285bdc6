"use strict";

async function loadDisagreements() {
  const status = document.getElementById("review-status");
  const body = document.querySelector("#disagreements tbody");
  try {
    const rows = await apiJSON("GET", "/api/disagreements");
    body.replaceChildren(...rows.map(row => el("tr", {"data-item": row.item_id},
      el("td", {text: row.item_id}), el("td", {text: row.name}),
      el("td", {text: Object.entries(row.labels).map(([user, name]) => `${user}: ${name}`).join(", ")}))));
    status.textContent = rows.length ? "" : "No disagreements.";
  } catch (error) {
    status.textContent = error.status === 401 ? "Sign in on the labeling page first." : String(error.message);
  }
}

loadDisagreements();
