"""The audit console end to end in headless Chromium (Debian ``chromium`` driven by Playwright): it signs in with
an auditor's TLS client certificate, finds a message the test sent, shows its story, and shows an inclusion
proof as verified by the browser's own WebCrypto check, and as failed once the proof is tampered with.

Without Chromium the test is skipped, except where ``CGW_REQUIRE_BROWSER=1`` (``.ci/run`` sets it): there a
missing browser is a failure. ``CGW_CONSOLE_SCREENSHOTS=DIR`` writes a PNG of each view into DIR (the README's
screenshots come from ``adapters/rest/console/screenshots``).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.app.main import Gateway
from gateway.client.rest import GatewayClientError
from gateway.core.model import Tlp
from gateway.demo import releasesamples as portsamples
from gateway.demo.samples import cargo_manifest, to_bytes
from tests.integration.conftest import ClientFactory
from tests.shareddata import SHARED

CHROMIUM = os.environ.get("CGW_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
REQUIRED = os.environ.get("CGW_REQUIRE_BROWSER") == "1"
# Headless Chromium as root, offline: no sandbox (root), no GPU, nothing fetched in the background.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000


def _browser_missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.async_api  # noqa: F401, PLC0415 - only this test needs it
    except ImportError:
        return "Python Playwright is not installed (pip install -e '.[dev]')"
    return None


@pytest.fixture
async def page(gateway: Gateway, federation: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    missing = _browser_missing()
    if missing is not None:
        if REQUIRED:
            pytest.fail(f"CGW_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing)
    from playwright.async_api import async_playwright  # noqa: PLC0415 - optional dependency, checked above

    member = federation / "members" / "AUDIT-GACC"
    # Playwright presents the client certificate from its driver (Node.js), which must trust the gateway's dev CA.
    monkeypatch.setenv("NODE_EXTRA_CA_CERTS", str(federation / "ca" / "root-ca.crt"))
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,  # Playwright gives every launch a fresh throw-away profile
        )
        context = await browser.new_context(
            client_certificates=[
                {
                    "origin": gateway.url,
                    "certPath": str(member / "tls-client.crt"),
                    "keyPath": str(member / "tls-client.key"),
                }
            ],
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(TIMEOUT_MS)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: _unexpected(msg, errors))
        yield page
        await context.close()
        await browser.close()
    assert errors == []  # no script error, no CSP violation


def _unexpected(message: Any, errors: list[str]) -> None:
    """Chromium logs each HTTP error answer; the dead-letter view's 403 for an auditor is expected."""
    if message.type == "error" and "status of 403 (Forbidden)" not in message.text:
        errors.append(message.text)


async def _shot(page: Any, name: str) -> None:
    directory = os.environ.get("CGW_CONSOLE_SCREENSHOTS")
    if directory:  # Playwright creates the directory
        await page.screenshot(path=os.path.join(directory, f"{name}.png"), full_page=True)


def _flip_entry_byte(proof_json: str) -> str:
    proof = json.loads(proof_json)
    entry = bytearray(base64.b64decode(proof["entry"]))
    entry[10] ^= 0x01
    proof["entry"] = base64.b64encode(bytes(entry)).decode()
    return json.dumps(proof)


async def test_console_finds_a_message_shows_its_story_and_checks_proofs(
    gateway: Gateway, clients: ClientFactory, page: Any
) -> None:
    from playwright.async_api import expect  # noqa: PLC0415

    carrier, gacc = clients("CARRIER-COSCO"), clients("CN-GACC")
    schema = "cgw.v1.CargoManifest"
    await carrier.submit("manifest.cargo.v1", ["CN-GACC"], to_bytes(cargo_manifest("M-0")), schema=schema)
    sent = await carrier.submit("manifest.cargo.v1", ["CN-GACC"], to_bytes(cargo_manifest("M-1")), schema=schema)
    message_id, leaf = sent.body["message_id"], sent.body["ledger_index"]
    await gacc.ack([item["cursor"] for item in (await gacc.pull())["items"]])
    # rejections for the chart: a carrier may not file with a port; a bad container check digit; a conflict
    with pytest.raises(GatewayClientError):
        await carrier.submit("manifest.cargo.v1", ["PORT-NLRTM"], to_bytes(cargo_manifest("M-2")), schema=schema)
    bad, other = to_bytes(cargo_manifest("M-3", container="MSKU9070324")), to_bytes(cargo_manifest("M-1-altered"))
    with pytest.raises(GatewayClientError):
        await carrier.submit("manifest.cargo.v1", ["CN-GACC"], bad, schema=schema)
    with pytest.raises(GatewayClientError):
        await carrier.submit("manifest.cargo.v1", ["CN-GACC"], other, schema=schema, message_id=message_id)
    # a release decision in the port's stream
    notice = to_bytes(portsamples.release_notice("HOLD", 1, portsamples.CONTAINERS[:2], reason="document check"))
    to = ["PORT-NLRTM", "CARRIER-COSCO"]
    await gacc.submit("release.notice.v1", to, notice, schema="cgw.v1.ReleaseNotice", tlp=Tlp.GREEN)

    # signed in by the client certificate (mTLS), no token
    await page.goto(gateway.url + "/console/")
    session = "Signed in (client certificate) · ledger cgw.cn-gacc.example/ledger"
    await expect(page.locator("#session")).to_have_text(session)

    # accessible: every control has a label; the views are reached with the keyboard alone
    unlabelled = "[...document.querySelectorAll('input, select, textarea')].filter((e) => !e.labels.length).length"
    assert await page.evaluate(unlabelled) == 0
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    for _ in range(3):  # skip link, Exchanges, Message story, Checkpoint & proof
        await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Checkpoint & proof")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("#view-proof")).to_be_visible()
    await expect(page.get_by_role("heading", name="Checkpoint & inclusion proof")).to_be_focused()
    await page.get_by_role("link", name="Exchanges").click()

    # find the message by its id
    await page.get_by_label("Message id").first.fill(message_id)
    await page.get_by_role("button", name="Search").click()
    row = page.locator("#search-results tbody tr")
    await expect(row).to_have_count(2)  # newest first: the conflicting resubmission, then the acceptance
    await expect(row.nth(0)).to_contain_text("DUPLICATE_CONFLICT")
    await expect(row.nth(1)).to_contain_text(message_id)
    await expect(row.nth(1)).to_contain_text("accepted")
    await page.get_by_label("Message id").first.fill("")
    await page.get_by_label("Sender").first.fill("CARRIER-COSCO")
    await page.get_by_role("button", name="Search").click()
    await expect(page.locator("#search-results tbody tr")).to_have_count(5)  # two accepted, three rejected
    await _shot(page, "exchanges")

    # its story: accepted, then acknowledged by CN-GACC
    accepted = page.locator("#search-results tbody tr", has_text=message_id).filter(has_text="accepted")
    await accepted.get_by_role("button", name="Story").click()
    steps = page.locator("#story-results .timeline > li .badge")
    await expect(steps).to_have_text(["accepted", "acknowledged", "rejected"])
    await expect(page.locator("#story-results")).to_contain_text("acknowledged by CN-GACC")
    await _shot(page, "story")

    # the inclusion proof of the accepted leaf, verified by the browser
    await page.get_by_role("button", name=f"Prove entry {leaf}").click()
    verdict = page.locator("#verdict")
    await expect(verdict).to_have_attribute("data-verdict", "verified")
    await expect(verdict).to_contain_text("Inclusion VERIFIED in this browser")
    await expect(page.locator("#checkpoint")).to_contain_text("signature verified in this browser")
    await _shot(page, "proof-verified")

    # a tampered entry (one bit) fails in the browser, whatever the server says
    text = page.get_by_label("Proof to verify")
    await text.fill(_flip_entry_byte(await text.input_value()))
    await page.get_by_role("button", name="Verify with this proof").click()
    await expect(verdict).to_have_attribute("data-verdict", "failed")
    await expect(verdict).to_contain_text("computed root differs")
    await _shot(page, "proof-failed")

    # a tampered proof from the network (one audit-path byte flipped in transit) fails too
    async def tamper(route: Any) -> None:
        response = await route.fetch()
        body = await response.json()
        path = bytearray(base64.b64decode(body["proof"][0]))
        path[0] ^= 0x80
        body["proof"][0] = base64.b64encode(bytes(path)).decode()
        await route.fulfill(response=response, json=body)

    await page.route("**/v1/audit/proof/inclusion*", tamper)
    await page.get_by_role("button", name="Fetch proof and verify").click()
    await expect(verdict).to_have_attribute("data-verdict", "failed")
    await page.unroute("**/v1/audit/proof/inclusion*")

    # rejections by code: a chart and its table
    await page.get_by_role("link", name="Rejections").click()
    await page.get_by_role("button", name="Count").click()
    await expect(page.locator("#rejections-results svg[role=img]")).to_have_count(1)
    for code in ("POLICY_DENIED", "IDENTIFIER_INVALID", "DUPLICATE_CONFLICT"):
        await expect(page.locator("#rejections-results table")).to_contain_text(code)
    await _shot(page, "rejections")

    # the other views answer (an auditor reads port streams; dead letters are the home administration's)
    await page.get_by_role("link", name="Port stream").click()
    await page.get_by_label("Port (UN/LOCODE)").fill("NLRTM")
    await page.get_by_role("button", name="Show stream").click()
    await expect(page.locator("#port-results")).to_contain_text("Port NLRTM: snapshot at seq 2")
    await expect(page.locator("#port-results")).to_contain_text(portsamples.CONTAINERS[1])
    await _shot(page, "port")
    await page.get_by_role("link", name="AEO recognition").click()
    await page.get_by_label("Operator (EORI / USCC / AEO id)").fill("NL123456789")
    await page.get_by_role("button", name="Look up").click()
    await expect(page.locator("#aeo-results dl")).to_contain_text("recognisedfalse")
    await expect(page.locator("#aeo-results dl")).to_contain_text("reasonsunknown_operator")
    await _shot(page, "aeo")
    await page.get_by_role("link", name="Dead letters").click()
    await page.get_by_role("button", name="List").click()
    await expect(page.locator("#dead-results")).to_contain_text("POLICY_DENIED")
    await _shot(page, "dead-letters")


VECTORS = SHARED / "vectors" / "merkle" / "inclusion"

# Runs in the page: the console's own merkle.js against each case (leaf hash, index, size, path, root).
_VERIFY_IN_PAGE = """async ([cases, notes]) => {
  const m = await import("/console/merkle.js");
  const proofs = [];
  for (const c of cases) {
    let ok = false;
    try {
      const root = await m.rootFromInclusion(c.leafIdx, c.treeSize, m.b64decode(c.leafHash),
                                             (c.proof || []).map(m.b64decode));
      ok = root !== null && m.hex(root) === m.hex(m.b64decode(c.root));
    } catch (e) { ok = false; }
    proofs.push(ok);
  }
  const signatures = [];
  for (const [note, vkey] of notes) signatures.push(await m.verifyNote(m.parseCheckpoint(note), vkey));
  return [proofs, signatures];
}"""


async def test_the_console_verifier_agrees_with_the_rfc9162_vectors_and_checkpoint_signatures(
    gateway: Gateway, page: Any
) -> None:
    """The browser-side checks (console/merkle.js in Chromium's WebCrypto) against transparency-dev's inclusion
    vectors, and against checkpoints signed by our own code with random keys (whose base64 often holds '+')."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: PLC0415

    from gateway.core.checkpoint import Checkpoint, sign_checkpoint, verifier_key_string  # noqa: PLC0415

    # The vectors are ../shared data (absent in a fresh clone): then only the signature checks run.
    cases = [json.loads(p.read_text()) for p in sorted(VECTORS.rglob("*.json"))]
    if VECTORS.exists():
        assert len(cases) > 50 and any(c["wantErr"] for c in cases) and not all(c["wantErr"] for c in cases)
    origin = "cgw.cn-gacc.example/ledger"
    notes: list[tuple[str, str]] = []
    for size in range(1, 25):
        key = Ed25519PrivateKey.generate()
        note = sign_checkpoint(Checkpoint(origin, size, bytes([size]) * 32), origin, key).decode()
        notes.append((note, verifier_key_string(origin, key.public_key())))
    other = verifier_key_string(origin, Ed25519PrivateKey.generate().public_key())
    forged = notes[0][0].replace("\n1\n", "\n2\n", 1)
    notes += [(notes[1][0], other), (forged, notes[0][1])]

    await page.goto(gateway.url + "/console/")
    proofs, signatures = await page.evaluate(_VERIFY_IN_PAGE, [cases, notes])
    assert [not ok for ok in proofs] == [c["wantErr"] for c in cases]
    assert signatures == [True] * 24 + [None, False]  # another key: not checked; a changed size: invalid
