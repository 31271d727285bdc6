// The user's token lives in this tab's sessionStorage and travels as an Authorization header:
// no cookie, so no other site can make the browser label on the user's behalf.
"use strict";

const TOKEN_KEY = "deepmars-label-token";

function sessionToken() { return sessionStorage.getItem(TOKEN_KEY); }

async function api(method, url, body) {
  const headers = {"Accept": "application/json", "Authorization": `Bearer ${sessionToken() || ""}`};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
  if (!response.ok) {
    const data = await response.json().catch(() => ({}));
    const detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail || data);
    const error = new Error(`${response.status}: ${detail}`);
    error.status = response.status;
    throw error;
  }
  return response;
}

async function apiJSON(method, url, body) { return (await api(method, url, body)).json(); }
