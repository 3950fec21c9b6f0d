// The console's views. Data reaches the page only as text nodes (never as HTML).

import { ApiError, get, path } from "./api.js";
import { rejectionChart } from "./chart.js";
import { b64decode, hex, parseCheckpoint, verifyInclusion, verifyNote } from "./merkle.js";

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "onclick") node.addEventListener("click", value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child !== undefined && child !== null) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function show(target, ...nodes) {
  target.replaceChildren(...nodes.filter((node) => node !== null && node !== undefined));
}

function failure(target, error) {
  const text = error instanceof ApiError ? error.message : `Error: ${error.message || error}`;
  show(target, el("p", { class: "error", role: "alert" }, text));
}

function table(caption, headers, rows) {
  return el(
    "table",
    {},
    el("caption", {}, caption),
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c))))),
  );
}

function utc(value) {
  return value ? new Date(`${value}Z`).toISOString() : "";
}

function formParams(form) {
  return Object.fromEntries(new FormData(form).entries());
}

function json(value) {
  return el("details", {}, el("summary", {}, "ledger entry"), el("pre", {}, JSON.stringify(value, null, 2)));
}

// -- exchanges ---------------------------------------------------------------------------------------------

export async function searchExchanges(form, target, go) {
  const params = formParams(form);
  params.since = utc(params.since);
  params.until = utc(params.until);
  if (form.dataset.before) params.before = form.dataset.before;
  show(target, el("p", {}, "Searching…"));
  try {
    const found = await get("/v1/audit/exchanges", params);
    const rows = found.hits.map((hit) => [
      String(hit.index),
      hit.at || "",
      hit.event || "",
      hit.sender || "",
      hit.message_id || "",
      hit.type || "",
      (hit.recipients || []).join(", "),
      hit.code || "",
      el(
        "span",
        { class: "row-actions" },
        hit.message_id && hit.sender && hit.event !== "rejected"
          ? el("button", { type: "button", onclick: () => go.story(hit.sender, hit.message_id) }, "Story")
          : null,
        el("button", { type: "button", onclick: () => go.proof(hit.index) }, "Prove"),
      ),
    ]);
    const scanned = found.scanned_to > found.scanned_from ? `ledger entries ${found.scanned_from}–${found.scanned_to - 1}` : "no ledger entries";
    const scope = `searched ${scanned}${found.complete ? "" : " (older entries not searched yet)"}`;
    const more = found.complete
      ? null
      : el("button", { type: "button", onclick: () => searchOlder(form, target, go, found.scanned_from) }, "Search older");
    show(
      target,
      el("p", { class: "count" }, `${found.hits.length} result${found.hits.length === 1 ? "" : "s"}; ${scope}`),
      table("Matching ledger entries", ["Index", "At", "Event", "Sender", "Message id", "Type", "Recipients", "Code", ""], rows),
      more,
    );
  } catch (error) {
    failure(target, error);
  }
}

async function searchOlder(form, target, go, before) {
  form.dataset.before = String(before);
  await searchExchanges(form, target, go);
  delete form.dataset.before;
}

// -- story -------------------------------------------------------------------------------------------------

export async function showStory(form, target, go) {
  const { sender, message_id: messageId } = formParams(form);
  show(target, el("p", {}, "Reading the ledger…"));
  try {
    const story = await get(path("v1", "audit", "story", sender, messageId));
    const m = story.message;
    const header = el(
      "dl",
      { class: "facts" },
      el("dt", {}, "Message"), el("dd", {}, `${m.from} / ${m.message_id}`),
      el("dt", {}, "Type"), el("dd", {}, m.type),
      el("dt", {}, "To"), el("dd", {}, m.to.join(", ")),
      el("dt", {}, "Received"), el("dd", {}, m.received),
      el("dt", {}, "Evidence SHA-256"), el("dd", { class: "mono" }, m.evidence_sha256),
    );
    const steps = el(
      "ol",
      { class: "timeline", "aria-label": "Story steps in ledger order" },
      story.steps.map((s) =>
        el(
          "li",
          { class: `step step-${s.step}` },
          el("span", { class: "badge" }, s.step.replace("_", " ")),
          el("span", { class: "when" }, s.at || ""),
          el("span", { class: "who" }, describe(s)),
          el("button", { type: "button", onclick: () => go.proof(s.index) }, `Prove entry ${s.index}`),
          json(s.entry),
        ),
      ),
    );
    const note = story.complete ? null : el("p", { class: "hint" }, `Scanned up to ledger index ${story.scanned_to}.`);
    show(target, el("h3", {}, "Message"), header, el("h3", {}, `Story (${story.steps.length} ledger entries)`), steps, note);
  } catch (error) {
    failure(target, error);
  }
}

function describe(step) {
  const e = step.entry;
  switch (step.step) {
    case "accepted": return `accepted from ${e.caller} over ${e.adapter} for ${(e.to || []).join(", ")}`;
    case "forwarded": return `forwarded by ${e.sender} to ${(e.to || []).join(", ")} as ${e.message_id}`;
    case "delivered": return `delivered to ${e.recipient} (${e.endpoint}, attempt ${e.attempt})`;
    case "delivery_failed": return `push to ${e.recipient} failed: ${e.status} (${e.outcome})`;
    case "acknowledged": return `acknowledged by ${e.recipient}`;
    case "recalled": return `recalled from ${(e.withdrawn_from || []).join(", ")}`;
    case "port_update": return `port ${e.port} stream updated`;
    case "rejected": return `rejected: ${e.code} (${e.action || ""})`;
    default: return step.step;
  }
}

// -- checkpoint and proof -------------------------------------------------------------------------------------

let current = null; // {checkpoint, note, vkey}

export async function loadCheckpoint(target) {
  try {
    const [note, key] = await Promise.all([get("/v1/audit/checkpoint"), get("/v1/audit/key")]);
    const checkpoint = parseCheckpoint(note);
    const signed = await verifyNote(checkpoint, key.verifier_key);
    current = { checkpoint, note };
    const signature = signed === true ? "signature verified in this browser (Ed25519)"
      : signed === false ? "SIGNATURE INVALID" : "signature not checked (no Ed25519 in this browser's WebCrypto)";
    show(
      target,
      el("h3", {}, "Current checkpoint"),
      el(
        "dl",
        { class: "facts" },
        el("dt", {}, "Origin"), el("dd", {}, checkpoint.origin),
        el("dt", {}, "Tree size"), el("dd", { id: "checkpoint-size" }, String(checkpoint.size)),
        el("dt", {}, "Root hash"), el("dd", { class: "mono" }, hex(checkpoint.root)),
        el("dt", {}, "Signature"), el("dd", { class: signed === false ? "bad" : "" }, signature),
      ),
      el("details", {}, el("summary", {}, "signed note"), el("pre", {}, note)),
    );
    return current;
  } catch (error) {
    failure(target, error);
    return null;
  }
}

export async function fetchProof(form, text, verdict, checkpointTarget) {
  const index = Number(formParams(form).index);
  show(verdict, el("p", {}, "Fetching proof…"));
  try {
    const cp = (await loadCheckpoint(checkpointTarget)) || current;
    if (!cp) throw new Error("no checkpoint");
    const size = cp.checkpoint.size;
    const [entries, proof] = await Promise.all([
      get("/v1/audit/entries", { start: index, end: index + 1 }),
      get("/v1/audit/proof/inclusion", { index, size }),
    ]);
    if (!entries.entries.length) throw new Error(`no ledger entry ${index}`);
    text.value = JSON.stringify({ index, size, entry: entries.entries[0].data, path: proof.proof }, null, 2);
    await verifyText(text, verdict);
  } catch (error) {
    failure(verdict, error);
  }
}

export async function verifyText(text, verdict) {
  if (!current) {
    show(verdict, el("p", { class: "error", role: "alert" }, "Load a checkpoint first."));
    return;
  }
  let result;
  let proof;
  try {
    proof = JSON.parse(text.value);
    const path = proof.path.map(b64decode);
    result = await verifyInclusion(b64decode(proof.entry), proof.index, proof.size, path, current.checkpoint.root);
    if (proof.size !== current.checkpoint.size) result = { ok: false, reason: "the proof is for another tree size", leafHash: result.leafHash };
  } catch (error) {
    result = { ok: false, reason: `the proof cannot be read (${error.message})` };
  }
  const entryText = proof && typeof proof.entry === "string" ? safeText(proof.entry) : "";
  show(
    verdict,
    el(
      "div",
      { class: result.ok ? "ok" : "bad", id: "verdict", "data-verdict": result.ok ? "verified" : "failed" },
      el("p", { class: "headline" }, result.ok ? "✔ Inclusion VERIFIED in this browser" : "✘ Inclusion proof FAILED"),
      el("p", {}, result.reason),
      result.leafHash ? el("p", { class: "mono" }, `leaf hash ${hex(result.leafHash)}`) : null,
      result.computedRoot ? el("p", { class: "mono" }, `computed root ${hex(result.computedRoot)}`) : null,
      entryText ? el("details", {}, el("summary", {}, "entry"), el("pre", {}, entryText)) : null,
    ),
  );
}

function safeText(b64) {
  try {
    return new TextDecoder().decode(b64decode(b64));
  } catch {
    return "";
  }
}

// -- rejections ------------------------------------------------------------------------------------------------

export async function showRejections(form, target) {
  const params = formParams(form);
  params.since = utc(params.since);
  params.until = utc(params.until);
  show(target, el("p", {}, "Counting…"));
  try {
    const data = await get("/v1/audit/rejections", params);
    if (!data.buckets.length) {
      show(target, el("p", {}, `No rejections between ${data.since} and ${data.until}.`));
      return;
    }
    fillBuckets(data);
    const legend = el("ul", { class: "legend", "aria-hidden": "true" }, data.codes.map((code) =>
      el("li", {}, el("span", { class: `swatch c${data.codes.indexOf(code) % 8}` }), code)));
    const rows = data.buckets.filter((b) => Object.keys(b.counts).length)
      .map((b) => [b.start, ...data.codes.map((c) => String(b.counts[c] || 0))]);
    show(
      target,
      el("p", { class: "count" }, `${data.since} – ${data.until}${data.complete ? "" : " (ledger scan bounded)"}`),
      el("figure", {}, rejectionChart(data), el("figcaption", {}, "Rejections by code per bucket"), legend),
      table("Rejections by code (table)", ["Bucket start (UTC)", ...data.codes], rows),
    );
  } catch (error) {
    failure(target, error);
  }
}

// Every bucket of the window, with zero counts where nothing was rejected (at most 400 bars).
function fillBuckets(data) {
  const step = data.bucket_seconds * 1000;
  const first = Math.floor(Date.parse(data.since) / step) * step;
  const last = Date.parse(data.until);
  if ((last - first) / step > 400) return;
  const byStart = new Map(data.buckets.map((b) => [Date.parse(b.start), b]));
  const all = [];
  for (let t = first; t < last; t += step) {
    all.push(byStart.get(t) || { start: new Date(t).toISOString().replace(".000Z", "Z"), counts: {} });
  }
  data.buckets = all;
}

// -- dead letters, AEO, ports -------------------------------------------------------------------------------------

export async function showDeadLetters(form, target) {
  try {
    const data = await get("/v1/admin/dead-letters", formParams(form));
    const rows = data.items.map((d) => [String(d.cursor), d.recipient, d.from, d.message_id, String(d.attempts), d.last_status, d.updated]);
    show(target, data.items.length ? table("Dead letters", ["Cursor", "Recipient", "From", "Message id", "Attempts", "Last status", "Updated"], rows)
      : el("p", {}, "No dead letters."));
  } catch (error) {
    failure(target, error);
  }
}

export async function showRecognition(form, target) {
  try {
    const data = await get("/v1/aeo/recognition", formParams(form));
    const facts = Object.entries(data)
      .filter(([, v]) => typeof v !== "object" || v === null || Array.isArray(v))
      .map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") || "none" : v === null ? "—" : v]);
    show(
      target,
      el("dl", { class: "facts" }, facts.map(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))])),
      el("details", {}, el("summary", {}, "full record"), el("pre", {}, JSON.stringify(data, null, 2))),
    );
  } catch (error) {
    failure(target, error);
  }
}

export async function showPort(form, target) {
  const { locode } = formParams(form);
  try {
    const [snapshot, notices] = await Promise.all([
      get(path("v1", "ports", locode, "snapshot")),
      get(path("v1", "ports", locode, "notices"), { limit: 100 }),
    ]);
    const standing = snapshot.standings.map((s) => [s.transportDocumentNumber, s.containerNumber, s.status, String(s.version), String(s.seq), s.effectiveTime, `${s.from} / ${s.messageId}`]);
    const stream = notices.notices.map((n) => [String(n.seq), n.transportDocumentNumber, n.containerNumber, `${n.previous} → ${n.status}`, n.effectiveTime, n.reason || "", `${n.from} / ${n.messageId}`]);
    show(
      target,
      el("p", { class: "count" }, `Port ${snapshot.port}: snapshot at seq ${snapshot.seq}`),
      standing.length ? table("Decisions in force", ["B/L", "Container", "Status", "Version", "Seq", "Effective", "Message"], standing) : el("p", {}, "No open decisions."),
      stream.length ? table("Stream entries (oldest first)", ["Seq", "B/L", "Container", "Change", "Effective", "Reason", "Message"], stream) : el("p", {}, "No stream entries."),
    );
  } catch (error) {
    failure(target, error);
  }
}
