"""Issue 3 end to end over HTTPS/mTLS: programme exchanges, TLP, forward, recall and policy hot reload.

Each programme: an allowed exchange is delivered; a non-member, a wrong message type, a TLP violation and a
forward of RED content are refused with stable codes and audited with the deciding policy ids.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.app.main import Gateway, running_gateway
from gateway.app.settings import load_settings
from gateway.client.rest import GatewayClient, GatewayClientError, MemberCredentials
from gateway.core.forwarding import stored_header
from gateway.core.model import Tlp
from gateway.core.payloads import MESSAGE_TYPES
from gateway.demo import programsamples as samples
from gateway.demo.samples import cargo_manifest, to_bytes
from gateway.interfaces.config import default_policies_dir
from tests.integration.conftest import ClientFactory


async def ledger(gateway: Gateway) -> list[dict[str, Any]]:
    size = await gateway.store.ledger_size()
    return [json.loads(e.data) for e in await gateway.store.ledger_entries(0, size)]


async def send(client: GatewayClient, message_type: str, to: list[str], document: dict[str, Any], **kw: Any) -> Any:
    return await client.submit(message_type, to, to_bytes(document), schema=MESSAGE_TYPES[message_type].schema, **kw)


async def refused(gateway: Gateway, call: Any, code: str = "POLICY_DENIED") -> dict[str, Any]:
    """Run ``call``, expect ``code``; return the ledger's rejection event (it carries the deciding policy ids)."""
    with pytest.raises(GatewayClientError) as caught:
        await call
    assert caught.value.code == code, caught.value
    return (await ledger(gateway))[-1]


async def inbox(client: GatewayClient) -> list[dict[str, Any]]:
    return list((await client.pull())["items"])


async def test_sstl_exchange_on_a_listed_lane(gateway: Gateway, clients: ClientFactory) -> None:
    gacc, douane, cbp = clients("CN-GACC"), clients("NL-DOUANE"), clients("US-CBP")
    sent = await send(gacc, "sstl.security-data.v1", ["NL-DOUANE"], samples.sstl_security_data(), program="SSTL")
    assert sent.status == 201
    [item] = await inbox(douane)
    assert item["message_id"] == sent.body["message_id"] and item["type"] == "sstl.security-data.v1"
    await send(douane, "sstl.control-result.v1", ["CN-GACC"], samples.sstl_control_result(), program="SSTL")
    # off the listed lanes
    off_lane = samples.sstl_security_data(origin="CNYTN", destination="DEHAM")
    event = await refused(gateway, send(gacc, "sstl.security-data.v1", ["NL-DOUANE"], off_lane, program="SSTL"))
    assert event["event"] == "rejected" and event["policy"] == ["sstl-listed-lanes-only"]
    # a non-member sends SSTL data
    data = samples.sstl_security_data()
    event = await refused(gateway, send(cbp, "sstl.security-data.v1", ["NL-DOUANE"], data, program="SSTL"))
    assert event["policy"] == ["programme-members-only"]
    # a non-member recipient
    event = await refused(gateway, send(gacc, "sstl.security-data.v1", ["US-CBP"], data, program="SSTL"))
    assert event["policy"] == ["program-messages-to-program-members-only"]
    # a CSI type from an SSTL-only member, under SSTL
    request = samples.csi_examination_request()
    event = await refused(gateway, send(douane, "csi.examination-request.v1", ["CN-GACC"], request, program="SSTL"))
    assert "program-types-travel-in-their-program" in event["policy"]
    # TLP: GREEN outside the programme community
    event = await refused(gateway, send(gacc, "sstl.security-data.v1", ["US-CBP"], data, program="SSTL", tlp=Tlp.GREEN))
    assert "tlp-green-within-program-community" in event["policy"]


async def test_csi_request_answered_by_host_customs(gateway: Gateway, clients: ClientFactory) -> None:
    gacc, cbp, douane = clients("CN-GACC"), clients("US-CBP"), clients("NL-DOUANE")
    request = await send(
        cbp, "csi.examination-request.v1", ["CN-GACC"], samples.csi_examination_request(), program="CSI"
    )
    [item] = await inbox(gacc)
    assert item["message_id"] == request.body["message_id"]
    answer = samples.csi_examination_result()
    result = await send(
        gacc, "csi.examination-result.v1", ["US-CBP"], answer, program="CSI", correlation=request.body["message_id"]
    )
    assert result.status == 201
    assert [i["type"] for i in await inbox(cbp)] == ["csi.examination-result.v1"]
    # only CBP refers containers; a non-member recipient; a non-member sender
    event = await refused(
        gateway,
        send(gacc, "csi.examination-request.v1", ["US-CBP"], samples.csi_examination_request(), program="CSI"),
    )
    assert event["policy"] == []  # default deny: no permit matches
    event = await refused(
        gateway,
        send(cbp, "csi.examination-request.v1", ["NL-DOUANE"], samples.csi_examination_request(), program="CSI"),
    )
    assert event["policy"] == ["program-messages-to-program-members-only"]
    event = await refused(gateway, send(douane, "csi.examination-result.v1", ["US-CBP"], answer, program="CSI"))
    assert event["policy"] == ["programme-members-only"]


async def test_megaport_alarm_forward_and_tlp(gateway: Gateway, clients: ClientFactory) -> None:
    port, cbp, douane, gacc = clients("PORT-NLRTM"), clients("US-CBP"), clients("NL-DOUANE"), clients("CN-GACC")
    alarm = to_bytes(samples.rpm_alarm())
    schema = MESSAGE_TYPES["megaport.rpm-alarm.v1"].schema

    async def alarm_to(to: list[str], tlp: Tlp) -> Any:
        return await port.submit("megaport.rpm-alarm.v1", to, alarm, schema=schema, program="MEGAPORT", tlp=tlp)

    event = await refused(gateway, alarm_to(["CN-GACC"], Tlp.AMBER))
    assert event["policy"] == ["program-messages-to-program-members-only"]
    amber = await alarm_to(["US-CBP"], Tlp.AMBER)
    red = await alarm_to(["US-CBP"], Tlp.RED)
    strict = await alarm_to(["US-CBP"], Tlp.AMBER_STRICT)

    def forward(original: Any, to: list[str], tlp: Tlp) -> Any:
        jws = cbp.sign("megaport.rpm-alarm.v1", to, alarm, schema=schema, program="MEGAPORT", tlp=tlp)
        return cbp.forward_signed("PORT-NLRTM", original.body["message_id"], jws)

    # RED and AMBER+STRICT are never forwarded; AMBER only to programme members
    event = await refused(gateway, forward(red, ["NL-DOUANE"], Tlp.RED))
    assert event["action"] == "forward" and event["policy"] == ["tlp-red-never-forwarded"]
    event = await refused(gateway, forward(strict, ["NL-DOUANE"], Tlp.AMBER_STRICT))
    assert event["policy"] == ["tlp-amber-strict-stays-in-recipient-org"]
    event = await refused(gateway, forward(amber, ["CN-GACC"], Tlp.AMBER))
    assert "tlp-amber-forward-need-to-know-in-program" in event["policy"]
    # a forward must repeat the original's TLP label
    event = await refused(gateway, forward(amber, ["NL-DOUANE"], Tlp.GREEN), code="SCHEMA_INVALID")
    assert event["field"] == "tlp"
    # only a recipient forwards (others do not even see the message)
    jws = douane.sign("megaport.rpm-alarm.v1", ["US-CBP"], alarm, schema=schema, program="MEGAPORT")
    await refused(gateway, douane.forward_signed("PORT-NLRTM", amber.body["message_id"], jws), code="NOT_FOUND")

    forwarded = await forward(amber, ["NL-DOUANE"], Tlp.AMBER)
    assert forwarded.status == 201 and forwarded.receipt["from"] == "US-CBP"
    [item] = await inbox(douane)
    assert item["from"] == "US-CBP" and item["payload"] == alarm
    original = item["forward_of"]
    assert original["from"] == "PORT-NLRTM" and original["message_id"] == amber.body["message_id"]
    status = await port.status("PORT-NLRTM", amber.body["message_id"])
    assert original["envelope"] == (await gateway.store.find_message("PORT-NLRTM", amber.body["message_id"])).jws
    assert status["evidence_sha256"] == hashlib.sha256(original["envelope"].encode() + b"." + alarm).hexdigest()
    for envelope in (original["envelope"], item["envelope"]):  # both signatures bind the same payload bytes
        assert stored_header(envelope).payload.sha256 == hashlib.sha256(alarm).hexdigest()
    accepted = [e for e in await ledger(gateway) if e.get("action") == "forward" and e["event"] == "accepted"]
    assert accepted[-1]["forward_of"] == {"sender": "PORT-NLRTM", "message_id": amber.body["message_id"]}
    assert accepted[-1]["policy_ids"] == ["program-members-forward-within-program"]
    assert await inbox(gacc) == []


async def test_recall_follows_every_forward(gateway: Gateway, clients: ClientFactory) -> None:
    port, cbp, douane = clients("PORT-NLRTM"), clients("US-CBP"), clients("NL-DOUANE")
    alarm = to_bytes(samples.rpm_alarm())
    schema = MESSAGE_TYPES["megaport.rpm-alarm.v1"].schema
    sent = await port.submit("megaport.rpm-alarm.v1", ["US-CBP"], alarm, schema=schema, program="MEGAPORT")
    alarm_id = sent.body["message_id"]
    [received] = await inbox(cbp)
    await cbp.ack([received["cursor"]])  # read already: the recall still reaches it
    jws = cbp.sign("megaport.rpm-alarm.v1", ["NL-DOUANE"], alarm, schema=schema, program="MEGAPORT")
    forwarded = await cbp.forward_signed("PORT-NLRTM", alarm_id, jws)
    # only the originator (or the home customs) recalls
    recall = samples.intel_recall("PORT-NLRTM", alarm_id)
    event = await refused(gateway, send(cbp, "intel.recall.v1", ["NL-DOUANE"], recall))
    assert event["policy"] == []
    await refused(
        gateway, send(cbp, "intel.recall.v1", ["NL-DOUANE"], samples.intel_recall("US-CBP", alarm_id)), "NOT_FOUND"
    )
    withdrawn = await send(port, "intel.recall.v1", ["US-CBP"], recall)
    assert withdrawn.status == 201
    for client in (cbp, douane):
        items = await inbox(client)
        assert [(i["type"], i["from"]) for i in items] == [("intel.recall.v1", "PORT-NLRTM")]
        assert json.loads(items[0]["payload"])["messageId"] == alarm_id
    events = await ledger(gateway)
    recalled = [e for e in events if e["event"] == "recalled"]
    assert {(e["sender"], e["message_id"]) for e in recalled} == {
        ("PORT-NLRTM", alarm_id),
        ("US-CBP", forwarded.body["message_id"]),
    }
    accepted = next(e for e in events if e.get("message_id") == withdrawn.body["message_id"])
    assert accepted["recalls"] == {"sender": "PORT-NLRTM", "message_id": alarm_id}
    assert accepted["policy_ids"] == ["originator-recalls"]


async def test_a_forwarders_recall_never_reaches_the_originators_message(
    gateway: Gateway, clients: ClientFactory
) -> None:
    """Issue 17 item 6 (what a recall withdraws, ``gateway.core.forwarding``): A sends to B, B forwards to C, C forwards
    to D. B's recall of its forward withdraws C's and D's copies but not B's own copy from A (nor A's message anywhere);
    A's recall withdraws everything."""
    a, b, c, d = (clients(m) for m in ("CARRIER-COSCO", "NL-DOUANE", "US-CBP", "CN-GACC"))
    manifest = to_bytes(cargo_manifest())
    schema = MESSAGE_TYPES["manifest.cargo.v1"].schema
    sent = await a.submit("manifest.cargo.v1", ["NL-DOUANE"], manifest, schema=schema, tlp=Tlp.CLEAR)
    root = ("CARRIER-COSCO", sent.body["message_id"])
    chain = [root]
    for holder, member, to in ((b, "NL-DOUANE", "US-CBP"), (c, "US-CBP", "CN-GACC")):
        jws = holder.sign("manifest.cargo.v1", [to], manifest, schema=schema, tlp=Tlp.CLEAR)
        forwarded = await holder.forward_signed(*chain[-1], jws)
        chain.append((member, forwarded.body["message_id"]))

    async def pending(client: GatewayClient) -> list[tuple[str, str]]:
        return [(i["from"], i["message_id"]) for i in await inbox(client)]

    assert await pending(b) == [root] and await pending(c) == [chain[1]] and await pending(d) == [chain[2]]
    by_b = await send(b, "intel.recall.v1", ["US-CBP"], samples.intel_recall(*chain[1]))
    recall_b = ("NL-DOUANE", by_b.body["message_id"])
    assert await pending(b) == [root]  # B's own copy from A is not B's to withdraw
    assert await pending(c) == [recall_b] and await pending(d) == [recall_b]
    recalled = [e for e in await ledger(gateway) if e["event"] == "recalled"]
    assert [(e["sender"], e["message_id"]) for e in recalled] == chain[1:]

    by_a = await send(a, "intel.recall.v1", ["NL-DOUANE"], samples.intel_recall(*root))
    recall_a = ("CARRIER-COSCO", by_a.body["message_id"])
    assert await pending(b) == [recall_a]
    assert await pending(c) == [recall_b, recall_a] and await pending(d) == [recall_b, recall_a]
    recalled = [e for e in await ledger(gateway) if e["event"] == "recalled"]
    assert [(e["sender"], e["message_id"]) for e in recalled] == [*chain[1:], *chain]
    accepted = next(e for e in await ledger(gateway) if e.get("message_id") == recall_a[1])
    assert accepted["policy_ids"] == ["originator-recalls"]


# -- policy hot reload --------------------------------------------------------------------------------------


@pytest.fixture
async def own_policies(federation: Path, tmp_path: Path) -> AsyncIterator[tuple[Gateway, Path]]:
    policies = tmp_path / "policies"
    shutil.copytree(default_policies_dir(), policies)
    settings = load_settings(
        federation / "gateway.toml",
        overrides={
            "gateway.rest_port": 0,
            "gateway.grpc_port": 0,
            "gateway.data_dir": str(tmp_path / "data"),
            "gateway.policies_dir": str(policies),
        },
    )
    async with running_gateway(settings) as running:
        yield running, policies


async def test_reload_checks_then_swaps_and_every_reload_is_audited(
    own_policies: tuple[Gateway, Path], federation: Path
) -> None:
    gateway, policies = own_policies
    assert gateway.policies is not None
    old = gateway.state.require_authorizer().digest
    async with (
        GatewayClient(gateway.url, MemberCredentials.from_federation(federation, "CN-GACC")) as gacc,
        GatewayClient(gateway.url, MemberCredentials.from_federation(federation, "NL-DOUANE")) as douane,
    ):
        with pytest.raises(GatewayClientError) as caught:
            await douane.reload_policies()
        assert caught.value.code == "POLICY_DENIED"
        # a policy that breaks a test case is refused; the old set keeps serving
        tlp = policies / "tlp.cedar"
        tlp.write_text(tlp.read_text().replace('context.tlp == "RED"', 'context.tlp == "NOT-RED"'))
        refused = await gacc.reload_policies()
        assert refused["accepted"] is False and refused["code"] == "UNAVAILABLE"
        assert "RED is never forwarded" in refused["detail"]
        assert refused["old_digest"] == old and refused["new_digest"] not in ("", old)
        assert gateway.state.require_authorizer().digest == old
        # a policy that does not parse is refused too
        tlp.write_text("permit (principal, action, resource")
        assert (await gacc.reload_policies())["accepted"] is False
        # a good set (a comment changes the digest) goes live
        shutil.copy(default_policies_dir() / "tlp.cedar", tlp)
        tlp.write_text(tlp.read_text() + "\n// reviewed\n")
        accepted = await gacc.reload_policies()
        assert accepted["accepted"] is True and accepted["cases"] > 100
        assert gateway.state.require_authorizer().digest == accepted["new_digest"] != old
    by_sighup = await gateway.policies.reload("sighup")
    assert by_sighup.accepted and by_sighup.old_digest == by_sighup.new_digest == accepted["new_digest"]
    reloads = [e for e in await ledger(gateway) if e["event"] == "policy_reloaded"]
    assert [(e["trigger"], e["accepted"]) for e in reloads] == [
        ("admin", False),
        ("admin", False),
        ("admin", True),
        ("sighup", True),
    ]
    assert reloads[2]["old_digest"] == old
    denied = [e for e in await ledger(gateway) if e["event"] == "rejected" and e.get("action") == "admin"]
    assert denied[0]["caller"] == "NL-DOUANE"


@pytest.mark.parametrize(
    ("program", "message_type", "sender", "receiver", "sample"),
    [
        ("SSTL", "sstl.control-result.v1", "NL-DOUANE", "CN-GACC", samples.sstl_control_result),
        ("CSI", "csi.examination-request.v1", "US-CBP", "CN-GACC", samples.csi_examination_request),
        ("MEGAPORT", "megaport.adjudication.v1", "US-CBP", "PORT-NLRTM", samples.alarm_adjudication),
    ],
)
async def test_red_and_amber_strict_content_is_never_forwarded(
    gateway: Gateway,
    clients: ClientFactory,
    program: str,
    message_type: str,
    sender: str,
    receiver: str,
    sample: Any,
) -> None:
    source, holder = clients(sender), clients(receiver)
    payload = to_bytes(sample())
    schema = MESSAGE_TYPES[message_type].schema
    for tlp, policy_id in (
        (Tlp.RED, "tlp-red-never-forwarded"),
        (Tlp.AMBER_STRICT, "tlp-amber-strict-stays-in-recipient-org"),
    ):
        sent = await source.submit(message_type, [receiver], payload, schema=schema, program=program, tlp=tlp)
        jws = holder.sign(message_type, [sender], payload, schema=schema, program=program, tlp=tlp)
        event = await refused(gateway, holder.forward_signed(sender, sent.body["message_id"], jws))
        assert event["action"] == "forward" and event["policy"] == [policy_id]
