"""Port release streams over the existing push delivery (issue 8; ``[ports] push_streams``): PORT-NLRTM has a
webhook endpoint; each batch of its stream arrives as a gateway-signed ``port.stream.v1`` CloudEvent whose entries
carry the dense sequence numbers, so the port applies them in order and detects a gap."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509

from gateway.app.main import Gateway, running_gateway
from gateway.app.settings import load_settings
from gateway.client.rest import GatewayClient, MemberCredentials
from gateway.core.model import Tlp
from gateway.core.pushevent import read_push_event
from gateway.core.release import PortView, Status, parse_stream_update
from gateway.demo import releasesamples as portsamples
from gateway.demo.samples import to_bytes
from tests.integration.webhook_receiver import WebhookReceiver, push_federation

A, B, C = portsamples.CONTAINERS


@pytest.fixture
async def pushed(federation: Path, tmp_path: Path) -> AsyncIterator[tuple[Gateway, WebhookReceiver, Path]]:
    receiver = await WebhookReceiver(federation).start()
    fed = push_federation(federation, tmp_path / "fed", member="PORT-NLRTM", url=receiver.url)
    overrides = {
        "gateway.rest_port": 0,
        "gateway.grpc_port": 0,
        "gateway.data_dir": str(tmp_path / "data"),
        "delivery.poll_interval_seconds": 0.05,
        "ports.push_streams": True,
    }
    try:
        async with running_gateway(load_settings(fed / "gateway.toml", overrides=overrides)) as gateway:
            yield gateway, receiver, fed
    finally:
        await receiver.stop()


async def test_stream_batches_are_pushed_as_signed_cloudevents(pushed: tuple[Gateway, WebhookReceiver, Path]) -> None:
    gateway, receiver, fed = pushed
    async with GatewayClient(gateway.url, MemberCredentials.from_federation(fed, "CN-GACC")) as gacc:
        for decision, version, containers in (("HOLD", 1, (A, B)), ("RELEASED", 2, (A,)), ("HOLD", 1, (B,))):
            notice = to_bytes(portsamples.release_notice(decision, version, containers))
            await gacc.submit("release.notice.v1", ["PORT-NLRTM"], notice, schema="cgw.v1.ReleaseNotice", tlp=Tlp.GREEN)
    # 3 notices + 2 stream batches (the last notice is a duplicate: nothing appended, nothing pushed)
    got = await receiver.wait_for(5)
    key = x509.load_pem_x509_certificate((fed / "gateway" / "signing.crt").read_bytes()).public_key()
    events = [read_push_event(r.body, r.signature, key) for r in got]
    batches = [e for e in events if e.type == "org.cgw.message.port.stream.v1"]
    assert len(batches) == 2 and all(e.data["from"] == "CN-GACC" for e in batches)
    entries = [
        entry
        for e in sorted(batches, key=lambda e: e.data["ledger_index"])
        for entry in parse_stream_update("application/json", base64.b64decode(e.data["payload"]))
    ]
    view = PortView("NLRTM").apply_all(entries)  # raises StreamGap on a missing seq
    assert view.seq == 3
    assert view.decisions() == {(portsamples.BL, A): (Status.RELEASED, 2), (portsamples.BL, B): (Status.HOLD, 1)}
    snapshot = await gateway.ports.streams.snapshot("NLRTM") if gateway.ports else (0, [])
    assert snapshot[0] == view.seq
    ledger = [json.loads(x.data) for x in await gateway.store.ledger_entries(0, await gateway.store.ledger_size())]
    assert [e["seqs"] for e in ledger if e["event"] == "accepted" and e["type"] == "port.stream.v1"] == [[1, 2], [3]]
