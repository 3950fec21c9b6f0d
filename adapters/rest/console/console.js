// Entry point: navigation between the views (hash routes, keyboard reachable links) and the form handlers.

import { get, setToken, token } from "./api.js";
import {
  fetchProof, loadCheckpoint, searchExchanges, showDeadLetters, showPort, showRecognition, showRejections,
  showStory, verifyText,
} from "./views.js";

const $ = (id) => document.getElementById(id);

function select(view, focus = true) {
  const known = document.querySelector(`[data-view-section="${view}"]`) ? view : "exchanges";
  for (const section of document.querySelectorAll("[data-view-section]")) {
    section.hidden = section.dataset.viewSection !== known;
  }
  for (const link of document.querySelectorAll("[data-view]")) {
    if (link.dataset.view === known) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (known === "proof") loadCheckpoint($("checkpoint"));
  if (focus) $(`h-${known === "dead-letters" ? "dead" : known}`)?.focus();
}

const go = {
  story(sender, messageId) {
    const form = $("story-form");
    form.elements.sender.value = sender;
    form.elements.message_id.value = messageId;
    window.location.hash = "#story";
    showStory(form, $("story-results"), go);
  },
  proof(index) {
    const form = $("proof-form");
    form.elements.index.value = String(index);
    window.location.hash = "#proof";
    fetchProof(form, $("proof-text"), $("proof-verdict"), $("checkpoint"));
  },
};

function on(formId, handler) {
  $(formId).addEventListener("submit", (event) => {
    event.preventDefault();
    handler(event.currentTarget);
  });
}

async function session() {
  const line = $("session");
  try {
    const key = await get("/v1/audit/key");
    const how = token() ? "bearer token" : "client certificate";
    line.textContent = `Signed in (${how}) · ledger ${key.origin}`;
    line.dataset.state = "signed-in";
  } catch (error) {
    line.textContent = error.status === 401
      ? "Not signed in: present a client certificate or use a bearer token (Sign in)."
      : `Ledger not readable: ${error.message}`;
    line.dataset.state = "signed-out";
  }
}

function start() {
  for (const heading of document.querySelectorAll("h2")) heading.tabIndex = -1;
  on("search-form", (form) => searchExchanges(form, $("search-results"), go));
  on("story-form", (form) => showStory(form, $("story-results"), go));
  on("proof-form", (form) => fetchProof(form, $("proof-text"), $("proof-verdict"), $("checkpoint")));
  on("proof-edit-form", () => verifyText($("proof-text"), $("proof-verdict")));
  on("rejections-form", (form) => showRejections(form, $("rejections-results")));
  on("dead-form", (form) => showDeadLetters(form, $("dead-results")));
  on("aeo-form", (form) => showRecognition(form, $("aeo-results")));
  on("port-form", (form) => showPort(form, $("port-results")));
  on("token-form", (form) => {
    setToken(form.elements.token.value.trim());
    form.elements.token.value = "";
    session();
  });
  $("token-clear").addEventListener("click", () => {
    setToken("");
    session();
  });
  window.addEventListener("hashchange", () => select(window.location.hash.slice(1)));
  select(window.location.hash.slice(1) || "exchanges", false);
  session();
}

start();
