// RFC 9162 inclusion proofs and C2SP checkpoints, checked in the browser with WebCrypto. Nothing here asks the
// server whether a proof is good: the leaf hash is computed from the entry bytes, the root from the audit path,
// and the result compared with the root the checkpoint states.

const subtle = window.crypto.subtle;

export function b64decode(text) {
  const raw = atob(text.trim());
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i += 1) out[i] = raw.charCodeAt(i);
  return out;
}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256(...parts) {
  const length = parts.reduce((n, p) => n + p.length, 0);
  const buffer = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    buffer.set(part, offset);
    offset += part.length;
  }
  return new Uint8Array(await subtle.digest("SHA-256", buffer));
}

const LEAF = Uint8Array.of(0x00);
const NODE = Uint8Array.of(0x01);

export const leafHash = (entry) => sha256(LEAF, entry);
const nodeHash = (left, right) => sha256(NODE, left, right);

function equal(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i += 1) diff |= a[i] ^ b[i];
  return diff === 0;
}

// RFC 9162 section 2.1.3.2: the root computed from a leaf hash and its audit path; null when the path's length
// does not fit (index, size).
export async function rootFromInclusion(index, size, leaf, path) {
  let fn = BigInt(index);
  let sn = BigInt(size) - 1n;
  if (fn < 0n || fn > sn || leaf.length !== 32) return null;
  let r = leaf;
  for (const p of path) {
    if (p.length !== 32 || sn === 0n) return null;
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n ? r : null;
}

// {ok, reason, leafHash, computedRoot}: the browser's own verdict on entry `entry` at `index` in the tree of
// `size` whose root is `root`.
export async function verifyInclusion(entry, index, size, path, root) {
  const leaf = await leafHash(entry);
  const computed = await rootFromInclusion(index, size, leaf, path);
  if (computed === null) return { ok: false, reason: "the audit path does not fit the index and tree size", leafHash: leaf };
  if (root.length !== 32 || !equal(computed, root)) return { ok: false, reason: "the computed root differs from the checkpoint's root", leafHash: leaf, computedRoot: computed };
  return { ok: true, reason: "the computed root equals the checkpoint's root", leafHash: leaf, computedRoot: computed };
}

// A C2SP signed note: origin, size, base64 root, blank line, signature lines.
export function parseCheckpoint(note) {
  const [body, signatures = ""] = note.split("\n\n");
  const lines = body.split("\n");
  if (lines.length < 3 || !/^[0-9]+$/.test(lines[1])) throw new Error("not a checkpoint note");
  return {
    origin: lines[0],
    size: Number(lines[1]),
    root: b64decode(lines[2]),
    body: new TextEncoder().encode(body + "\n"),
    signatures: signatures.split("\n").filter((l) => l.startsWith("\u2014 ")),
  };
}

// The checkpoint's Ed25519 signature by a verifier key `name+hash+base64(0x01 || key)`: true, false, or null when
// this browser has no Ed25519 in WebCrypto or no signature line names the key.
export async function verifyNote(checkpoint, vkey) {
  // the base64 key may itself contain "+": split at the first two only
  const first = vkey.indexOf("+");
  const second = vkey.indexOf("+", first + 1);
  if (first < 0 || second < 0) return false;
  const [name, keyHash, keyB64] = [vkey.slice(0, first), vkey.slice(first + 1, second), vkey.slice(second + 1)];
  const keyBytes = b64decode(keyB64 || "");
  if (keyBytes[0] !== 0x01 || keyBytes.length !== 33) return false;
  let publicKey;
  try {
    publicKey = await subtle.importKey("raw", keyBytes.slice(1), { name: "Ed25519" }, false, ["verify"]);
  } catch {
    return null;
  }
  for (const line of checkpoint.signatures) {
    const [, signer, sigB64] = line.split(" ");
    if (signer !== name) continue;
    const sig = b64decode(sigB64);
    if (hex(sig.slice(0, 4)) !== keyHash) continue;
    return subtle.verify({ name: "Ed25519" }, publicKey, sig.slice(4), checkpoint.body);
  }
  return null;
}
