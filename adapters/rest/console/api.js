// The console's only way to the gateway: same-origin fetches of the JSON endpoints, authenticated by the
// browser's TLS client certificate or, when one was given, a bearer token kept in this tab's sessionStorage.

const TOKEN_KEY = "cgw-console-token";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(status, problem) {
    const detail = problem && typeof problem === "object" ? `${problem.code || ""} ${problem.detail || problem.title || ""}` : "";
    super(`HTTP ${status}: ${detail.trim() || "request failed"}`);
    this.status = status;
    this.problem = problem;
  }
}

export async function get(path, params = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
  }
  const headers = { Accept: "application/json, text/plain" };
  const bearer = token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const response = await fetch(url, { headers, credentials: "same-origin", cache: "no-store" });
  const type = response.headers.get("Content-Type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

export const path = (...parts) => "/" + parts.map(encodeURIComponent).join("/");
