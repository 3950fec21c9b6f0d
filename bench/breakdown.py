"""Step costs of the submit path, in process: what each pure step of the pipeline costs per message.

Usage: ``taskset -c 0 python bench/breakdown.py [--messages 2000]``

No network and no store: a dev federation is created in a temporary directory, ``--messages`` distinct manifests
are signed, and each step the gateway runs per message is timed over all of them with ``perf_counter``
(the same functions the pipeline calls, in its order). The chain-validation cache is warmed first, as it is
in a running gateway. The output is a table of median and mean microseconds per step, to read next to the
end-to-end figures of ``bench/run.py`` (which add TLS, HTTP, the store's thread hops and fsync, and logging).

Rule 1: every step gets fresh inputs (a distinct message) so no step is measured on a cached answer that a
        real gateway would not have; caches that a real gateway does keep (chain validation) stay warm.
Rule 2: steps are timed one at a time over all messages (not interleaved), so each number is that step's own
        steady-state cost.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.app.main import load_state
from gateway.app.settings import load_settings
from gateway.client.rest import MemberCredentials, sign_message
from gateway.core.audit import AuditEvent, EventKind
from gateway.core.envelope import VerifiedEnvelope, verify_envelope
from gateway.core.payloads import MESSAGE_TYPES, validate_payload
from gateway.core.policy import Authorizer
from gateway.core.policyrequests import submit_request
from gateway.core.receipt import make_receipt
from gateway.demo.samples import cargo_manifest, to_bytes
from gateway.exchange.pipeline import evidence_digest
from gateway.infra.devpki import create_federation
from gateway.infra.files import load_trust
from gateway.infra.policyfiles import load_bundle
from gateway.interfaces.config import default_policies_dir

SENDER = "CARRIER-COSCO"
RECIPIENT = "CN-GACC"
MESSAGE_TYPE = "manifest.cargo.v1"
SCHEMA = "cgw.v1.CargoManifest"
# Enough for stable medians; signing the corpus dominates the run time beyond this.
MAX_MESSAGES = 50_000


def timed(name: str, inputs: Sequence[Any], step: Callable[[Any], Any]) -> tuple[dict[str, Any], list[Any]]:
    """Run ``step`` on each input; return its cost summary (microseconds) and the outputs."""
    costs: list[float] = []
    outputs: list[Any] = []
    for item in inputs:
        began = time.perf_counter()
        outputs.append(step(item))
        costs.append(time.perf_counter() - began)
    row = {
        "step": name,
        "median_us": round(statistics.median(costs) * 1e6, 1),
        "mean_us": round(statistics.fmean(costs) * 1e6, 1),
    }
    return row, outputs


def measure(count: int, work: Path) -> list[dict[str, Any]]:
    config = create_federation(work)
    settings = load_settings(config)
    state = load_state(settings)
    trust = load_trust(settings.trust_anchors, settings.trust_crl, settings.trust_registry)
    authorizer = Authorizer(load_bundle(default_policies_dir()), trust.registry, MESSAGE_TYPES)
    credentials = MemberCredentials.from_federation(work, SENDER)
    messages = []
    for i in range(count):
        payload = to_bytes(cargo_manifest(f"BREAKDOWN-{i:07d}"))
        messages.append((sign_message(credentials, MESSAGE_TYPE, [RECIPIENT], payload, schema=SCHEMA), payload))
    now = datetime.now(UTC)
    caller_member = trust.registry.members[SENDER]
    recipients = [trust.registry.members[RECIPIENT]]

    def verify(item: tuple[str, bytes]) -> VerifiedEnvelope:
        return verify_envelope(item[0], item[1], validator=trust, registry=trust.registry, now=now, caller=None)

    verify(messages[0])  # warm the chain cache as a running gateway has it
    rows: list[dict[str, Any]] = []
    row, verified = timed("verify_envelope (JWS, cached chain, header, digest)", messages, verify)
    rows.append(row)
    row, digests = timed("evidence_digest", verified, lambda v: evidence_digest(v.jws, v.payload))
    rows.append(row)
    row, _ = timed(
        "validate_payload (schema + identifiers)",
        verified,
        lambda v: validate_payload(v.header.type, v.header.payload.media, v.payload, schema=v.header.payload.schema),
    )
    rows.append(row)
    row, _ = timed(
        "authorize (Cedar submit decision)",
        verified,
        lambda v: authorizer.authorize(
            submit_request(caller_member, v.header.type, v.header.program, v.header.tlp.value, recipients)
        ),
    )
    rows.append(row)

    def event(pair: tuple[VerifiedEnvelope, str]) -> bytes:
        v, digest = pair
        fields = {"message_id": v.header.id, "sender": v.header.sender, "evidence_sha256": digest, "to": [RECIPIENT]}
        return AuditEvent(EventKind.ACCEPTED, now, fields).canonical()

    row, _ = timed("audit event canonical bytes (JCS)", list(zip(verified, digests, strict=True)), event)
    rows.append(row)

    def receipt(pair: tuple[VerifiedEnvelope, str]) -> bytes:
        v, digest = pair
        return make_receipt(
            message_id=v.header.id,
            sender=v.header.sender,
            recipients=v.header.to,
            message_type=v.header.type,
            evidence_sha256=digest,
            leaf_index=1,
            received_at=now,
            gateway=RECIPIENT,
            policy_digest="0" * 64,
            signer=state.receipt_signer,
        )

    row, _ = timed("make_receipt (JCS + ES256 sign)", list(zip(verified, digests, strict=True)), receipt)
    rows.append(row)
    rows.append(
        {
            "step": "total of the steps above",
            "median_us": round(sum(r["median_us"] for r in rows), 1),
            "mean_us": round(sum(r["mean_us"] for r in rows), 1),
        }
    )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if not 1 <= args.messages <= MAX_MESSAGES:
        parser.error(f"--messages must be within 1..{MAX_MESSAGES}")
    with tempfile.TemporaryDirectory(prefix="cgw-breakdown-") as tmp:
        rows = measure(args.messages, Path(tmp))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["step"]) for r in rows)
    print(f"{'step'.ljust(width)}  median us  mean us")
    for r in rows:
        print(f"{r['step'].ljust(width)}  {r['median_us']:9.1f}  {r['mean_us']:7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
