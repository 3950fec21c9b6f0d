"""The operator commands (gateway/app/operatortool.py) as a user runs them: ``customs-gateway`` processes against a
real gateway on loopback (mTLS, real signatures), asserting what the gateway did."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.app.main import Gateway
from gateway.client.rest import GatewayClient, GatewayClientError, MemberCredentials
from gateway.core.payloads import MESSAGE_TYPES
from gateway.demo.programsamples import rpm_alarm
from gateway.demo.releasesamples import BL, CONTAINERS, release_notice
from gateway.demo.samples import cargo_manifest, to_bytes
from gateway.infra.devpki import create_federation
from tests.integration.test_port_redis import pair  # noqa: F401
from tests.integration.test_push_delivery import PORT, Start, send_notices, start, wait_until  # noqa: F401

CLI = str(Path(sys.executable).parent / "customs-gateway")
ALARM = "megaport.rpm-alarm.v1"
COMMAND_SECONDS = 60  # one command, including the interpreter start


async def cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        CLI, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), COMMAND_SECONDS)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def who(gateway: Gateway, fed: Path, member: str) -> list[str]:
    return ["--url", gateway.url, "--federation", str(fed), "--as", member]


async def cli_json(*args: str) -> Any:
    code, out, err = await cli(*args, "--json")
    assert code == 0, out + err
    return json.loads(out)


def client(gateway: Gateway, fed: Path, member: str) -> GatewayClient:
    return GatewayClient(gateway.url, MemberCredentials.from_federation(fed, member))


def states(status: dict[str, Any]) -> dict[str, str]:
    return {r["member"]: r["state"] for r in status["recipients"]}


async def test_inbox_pull_ack_and_status_follow_a_message(gateway: Gateway, federation: Path) -> None:
    manifest = federation.parent / "op-manifest.json"
    manifest.write_bytes(to_bytes(cargo_manifest()))
    carrier, gacc = who(gateway, federation, "CARRIER-COSCO"), who(gateway, federation, "CN-GACC")
    code, out, err = await cli("send", *carrier, "--type", "manifest.cargo.v1", "--to", "CN-GACC", str(manifest))
    assert code == 0, out + err
    message_id = json.loads(out)["message_id"]

    status = await cli_json("status", *carrier, "CARRIER-COSCO", message_id)
    assert states(status) == {"CN-GACC": "pending"} and status["recipients"][0]["settled"] is None
    page = await cli_json("inbox", "pull", *gacc)
    [item] = [i for i in page["items"] if i["message_id"] == message_id]
    assert item["from"] == "CARRIER-COSCO" and item["type"] == "manifest.cargo.v1"
    code, out, _ = await cli("inbox", "pull", *gacc)  # human output: one line per item
    assert code == 0 and f"CARRIER-COSCO/{message_id}  manifest.cargo.v1" in out

    code, out, err = await cli("inbox", "ack", *gacc, str(item["cursor"]))
    assert (code, out.strip()) == (0, "acknowledged 1 of 1"), err

    assert [i for i in (await cli_json("inbox", "pull", *gacc))["items"] if i["message_id"] == message_id] == []
    status = await cli_json("status", *carrier, "CARRIER-COSCO", message_id)
    [state] = status["recipients"]
    assert (state["member"], state["state"], state["cursor"]) == ("CN-GACC", "acknowledged", item["cursor"])
    assert state["settled"] is not None and state["delivery"] is None
    # the same status over gRPC GetStatus
    assert gateway.grpc_target is not None
    grpc_who = ["--url", gateway.grpc_target, "--federation", str(federation), "--as", "CARRIER-COSCO"]
    assert await cli_json("status", *grpc_who, "--transport", "grpc", "CARRIER-COSCO", message_id) == status
    code, out, _ = await cli("status", *carrier, "CARRIER-COSCO", message_id)
    assert "CN-GACC" in out and "acknowledged" in out
    # an unknown message is refused with the gateway's code, exit 1
    code, out, err = await cli("status", *carrier, "CARRIER-COSCO", "no-such-id")
    assert code == 1 and "NOT_FOUND" in err


async def test_inbox_follow_prints_each_arrival_and_stops_on_ctrl_c(gateway: Gateway, federation: Path) -> None:
    gacc = who(gateway, federation, "CN-GACC")
    async with client(gateway, federation, "CN-GACC") as reader:  # start from an empty inbox
        items = (await reader.pull())["items"]
        if items:
            await reader.ack([i["cursor"] for i in items])
    follow = await asyncio.create_subprocess_exec(
        CLI, "inbox", "follow", *gacc, "--ack", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert follow.stdout is not None
    try:
        await asyncio.sleep(1.5)  # the command is long-polling now
        async with client(gateway, federation, "CARRIER-COSCO") as carrier:
            schema = MESSAGE_TYPES["manifest.cargo.v1"].schema
            sent = [
                (await carrier.submit("manifest.cargo.v1", ["CN-GACC"], to_bytes(cargo_manifest()), schema=schema))
                for _ in range(2)
            ]
        lines = [(await asyncio.wait_for(follow.stdout.readline(), 20)).decode() for _ in sent]
    finally:
        follow.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(follow.wait(), 20)
    assert [s.body["message_id"] in line for s, line in zip(sent, lines, strict=True)] == [True, True]
    assert code == 130  # Ctrl-C ends it
    async with client(gateway, federation, "CN-GACC") as reader:
        assert (await reader.pull())["items"] == []  # --ack acknowledged what it printed


async def test_forward_then_recall_show_in_the_status(gateway: Gateway, federation: Path) -> None:
    async with client(gateway, federation, "PORT-NLRTM") as port:
        sent = await port.submit(
            ALARM, ["US-CBP"], to_bytes(rpm_alarm()), schema=MESSAGE_TYPES[ALARM].schema, program="MEGAPORT"
        )
    alarm = sent.body["message_id"]
    port_who, cbp = who(gateway, federation, "PORT-NLRTM"), who(gateway, federation, "US-CBP")

    forwarded = await cli_json("forward", *cbp, "PORT-NLRTM", alarm, "--to", "NL-DOUANE")
    assert forwarded["receipt_claims"]["status"] == "accepted"
    forward_id = forwarded["message_id"]

    status = await cli_json("status", *port_who, "PORT-NLRTM", alarm)
    assert states(status) == {"US-CBP": "pending"}
    assert [(f["from"], f["message_id"], f["to"]) for f in status["forwards"]] == [
        ("US-CBP", forward_id, ["NL-DOUANE"])
    ]
    assert states(await cli_json("status", *cbp, "US-CBP", forward_id)) == {"NL-DOUANE": "pending"}

    code, out, err = await cli("recall", *port_who, "PORT-NLRTM", alarm, "--reason", "ERROR")
    assert code == 0 and "recalled" in out, out + err

    status = await cli_json("status", *port_who, "PORT-NLRTM", alarm)
    [recipient] = status["recipients"]
    assert recipient["state"] == "withdrawn" and recipient["withdrawn_by"]["from"] == "PORT-NLRTM"
    recall_id = recipient["withdrawn_by"]["message_id"]
    assert states(await cli_json("status", *cbp, "US-CBP", forward_id)) == {"NL-DOUANE": "withdrawn"}
    douane = await cli_json("inbox", "pull", *who(gateway, federation, "NL-DOUANE"))
    assert [(i["type"], i["message_id"]) for i in douane["items"]] == [("intel.recall.v1", recall_id)]


async def test_a_recipient_sees_only_its_own_entry_and_forwards(gateway: Gateway, federation: Path) -> None:
    async with client(gateway, federation, "PORT-NLRTM") as port:
        sent = await port.submit(
            ALARM,
            ["US-CBP", "NL-DOUANE"],
            to_bytes(rpm_alarm()),
            schema=MESSAGE_TYPES[ALARM].schema,
            program="MEGAPORT",
        )
    alarm = sent.body["message_id"]
    assert set(states(await cli_json("status", *who(gateway, federation, "PORT-NLRTM"), "PORT-NLRTM", alarm))) == {
        "US-CBP",
        "NL-DOUANE",
    }
    assert states(await cli_json("status", *who(gateway, federation, "US-CBP"), "PORT-NLRTM", alarm)) == {
        "US-CBP": "pending"
    }


async def test_ports_gate_out_notices_and_snapshot(gateway: Gateway, federation: Path) -> None:
    released, inspected, _ = CONTAINERS
    schema = MESSAGE_TYPES["release.notice.v1"].schema
    async with client(gateway, federation, "CN-GACC") as gacc:
        for decision, version, container in (("RELEASED", 1, released), ("INSPECT", 2, inspected)):
            body = to_bytes(release_notice(decision, version, (container,)))
            await gacc.submit("release.notice.v1", ["PORT-NLRTM"], body, schema=schema)
        before = (await gacc.pull())["items"]
        if before:
            await gacc.ack([i["cursor"] for i in before])
    port, gacc_who = who(gateway, federation, "PORT-NLRTM"), who(gateway, federation, "CN-GACC")
    snapshot = await cli_json("ports", "snapshot", *port, "NLRTM")
    assert {s["containerNumber"]: s["status"] for s in snapshot["standings"]} == {
        released: "RELEASED",
        inspected: "INSPECT",
    }

    for container in (released, inspected):
        code, out, err = await cli("ports", "gate-out", *port, "NLRTM", container, "--bl", BL)
        assert code == 0 and "gate-out of" in out, out + err

    notices = await cli_json("ports", "notices", *port, "NLRTM", "--after", str(snapshot["seq"]))
    assert [(n["containerNumber"], n["status"]) for n in notices["notices"]] == [(released, "GATED_OUT")]
    alerts = [i for i in (await cli_json("inbox", "pull", *gacc_who))["items"] if i["type"] == "alert.gate-out.v1"]
    [alert] = alerts
    assert alert["from"] == "CN-GACC"  # signed by the gateway for the home administration
    snapshot = await cli_json("ports", "snapshot", *port, "NLRTM")
    assert {s["containerNumber"]: s["status"] for s in snapshot["standings"]} == {inspected: "INSPECT"}


async def test_dead_letters_list_and_redrive_against_a_failing_webhook(start: Start) -> None:  # noqa: F811
    gateway, receiver, fed = await start()
    receiver.statuses = [410]  # a permanent refusal: a dead letter at once
    [message_id] = await send_notices(gateway, fed)
    gacc = who(gateway, fed, "CN-GACC")

    async def dead() -> bool:
        return await gateway.store.dead_letter_count() == 1

    await wait_until(dead)
    listing = await cli_json("dead-letters", "list", *gacc)
    [letter] = listing["items"]
    assert (letter["message_id"], letter["recipient"], letter["last_status"]) == (message_id, PORT, "410")
    code, out, _ = await cli("dead-letters", "list", *gacc)
    assert message_id in out and "410" in out
    status = await cli_json("status", *gacc, "CN-GACC", message_id)
    [state] = status["recipients"]
    assert (state["state"], state["delivery"]["attempts"], state["delivery"]["last_status"]) == (
        "dead-lettered",
        1,
        "410",
    )
    code, out, err = await cli("dead-letters", "list", *who(gateway, fed, "CARRIER-COSCO"))
    assert code == 1 and "POLICY_DENIED" in err  # the admin API is the home administration's

    assert await cli_json("dead-letters", "redrive", *gacc, str(letter["cursor"])) == {"redriven": 1}

    async def delivered() -> bool:
        [s] = await gateway.store.recipient_states("CN-GACC", message_id)
        return s.settled_at is not None

    await wait_until(delivered)
    [state] = (await cli_json("status", *gacc, "CN-GACC", message_id))["recipients"]
    assert (state["state"], state["delivery"]["attempts"], state["delivery"]["last_status"]) == ("delivered", 1, "200")
    assert (await cli_json("dead-letters", "list", *gacc))["items"] == []


async def test_audit_show_decodes_one_entry_and_verifies_its_inclusion(
    gateway: Gateway, federation: Path, tmp_path: Path
) -> None:
    async with client(gateway, federation, "CARRIER-COSCO") as carrier:
        schema = MESSAGE_TYPES["manifest.cargo.v1"].schema
        sent = await carrier.submit("manifest.cargo.v1", ["CN-GACC"], to_bytes(cargo_manifest()), schema=schema)
    message_id, index = sent.body["message_id"], sent.body["ledger_index"]
    auditor = who(gateway, federation, "AUDIT-GACC")

    shown = await cli_json("audit", "show", *auditor, f"CARRIER-COSCO/{message_id}")

    assert shown["index"] == index
    assert (shown["event"]["event"], shown["event"]["message_id"]) == ("accepted", message_id)
    assert shown["inclusion"]["verified"] is True and shown["inclusion"]["checkpoint_size"] > index
    code, out, err = await cli("audit", "show", *auditor, str(index))
    assert code == 0, out + err
    assert f"entry {index}  leaf {shown['leaf_hash']}" in out and "inclusion proof OK" in out
    assert f'"message_id": "{message_id}"' in out  # the canonical JSON event, not base64
    # a federation whose checkpoint key is not the gateway's: the checkpoint does not verify, exit 1
    other = tmp_path / "other"
    create_federation(other)
    forged = tmp_path / "forged"
    shutil.copytree(federation, forged, ignore=shutil.ignore_patterns("data"))
    for name in ("checkpoint.key", "checkpoint.pub", "checkpoint.keys"):
        if (other / "gateway" / name).exists():
            shutil.copy(other / "gateway" / name, forged / "gateway" / name)
    code, out, err = await cli("audit", "show", *who(gateway, forged, "AUDIT-GACC"), str(index))
    assert code == 1 and "FAILED: SIGNATURE_INVALID" in err, out + err
    # only auditors read the ledger
    code, _, err = await cli("audit", "show", *who(gateway, federation, "CARRIER-COSCO"), str(index))
    assert code == 1 and "POLICY_DENIED" in err


async def test_audit_search_filters_client_side_and_names_its_bound(gateway: Gateway, federation: Path) -> None:
    schema = MESSAGE_TYPES["manifest.cargo.v1"].schema
    async with client(gateway, federation, "CARRIER-COSCO") as carrier, client(gateway, federation, "CN-GACC") as gacc:
        sent = await carrier.submit("manifest.cargo.v1", ["CN-GACC"], to_bytes(cargo_manifest()), schema=schema)
        bad = to_bytes(cargo_manifest(container="MSKU9070324"))  # a wrong ISO 6346 check digit
        with pytest.raises(GatewayClientError):
            await carrier.submit("manifest.cargo.v1", ["CN-GACC"], bad, schema=schema)
        items = (await gacc.pull())["items"]
        await gacc.ack([i["cursor"] for i in items])
    message_id = sent.body["message_id"]
    auditor = who(gateway, federation, "AUDIT-GACC")

    found = await cli_json("audit", "search", *auditor, "--message-id", message_id)
    assert [(m["index"], m["event"]["event"]) for m in found["matches"]] == [(sent.body["ledger_index"], "accepted")]
    assert found["complete"] is True
    rejected = await cli_json("audit", "search", *auditor, "--event", "rejected", "--sender", "CARRIER-COSCO")
    [refusal] = rejected["matches"]
    assert (refusal["event"]["code"], refusal["event"]["field"]) == (
        "IDENTIFIER_INVALID",
        "payload.consignments[0].goodsItems[0].containerNumbers[0]",
    )
    acks = await cli_json("audit", "search", *auditor, "--event", "acknowledged", "--recipient", "CN-GACC")
    assert acks["matches"] and all(m["event"]["recipient"] == "CN-GACC" for m in acks["matches"])
    at = datetime.fromisoformat(found["matches"][0]["event"]["at"])
    window = ["--since", (at - timedelta(seconds=1)).isoformat(), "--until", (at + timedelta(seconds=1)).isoformat()]
    in_window = await cli_json("audit", "search", *auditor, "--type", "manifest.cargo.v1", *window)
    assert message_id in {m["event"].get("message_id") for m in in_window["matches"]}
    assert (await cli_json("audit", "search", *auditor, "--message-id", message_id, "--until", "2000-01-01T00:00:00Z"))[
        "matches"
    ] == []
    bounded = await cli_json("audit", "search", *auditor, "--scan", "2")
    assert (bounded["scanned"], bounded["complete"], len(bounded["matches"])) == ([0, 2], False, 2)
    _, out, _ = await cli("audit", "search", *auditor, "--scan", "2")
    assert "resume with --start 2" in out


async def test_status_on_a_shared_redis_store_across_two_gateways(
    pair: tuple[Gateway, Gateway],  # noqa: F811
    federation: Path,
    tmp_path: Path,
) -> None:
    """Forward, ack and recall through one process; the other reports the same per-recipient states."""
    first, second = pair
    async with client(first, federation, "PORT-NLRTM") as port:
        sent = await port.submit(
            ALARM, ["US-CBP"], to_bytes(rpm_alarm()), schema=MESSAGE_TYPES[ALARM].schema, program="MEGAPORT"
        )
    alarm = sent.body["message_id"]
    saved = tmp_path / "saved"
    pulled = await cli_json("inbox", "pull", *who(first, federation, "US-CBP"), "--ack", "--save", str(saved))
    assert pulled["acknowledged"] == 1 and (saved / f"PORT-NLRTM_{alarm}.payload").exists()
    forwarded = await cli_json(
        "forward", *who(first, federation, "US-CBP"), "PORT-NLRTM", alarm, "--to", "NL-DOUANE", "--saved", str(saved)
    )

    status = await cli_json("status", *who(second, federation, "PORT-NLRTM"), "PORT-NLRTM", alarm)
    [cbp] = status["recipients"]
    assert (cbp["member"], cbp["state"]) == ("US-CBP", "acknowledged")
    assert [f["message_id"] for f in status["forwards"]] == [forwarded["message_id"]]

    await cli_json("recall", *who(second, federation, "PORT-NLRTM"), "PORT-NLRTM", alarm)
    after = await cli_json("status", *who(first, federation, "PORT-NLRTM"), "PORT-NLRTM", alarm)
    [cbp_after] = after["recipients"]
    assert cbp_after["state"] == "withdrawn" and cbp_after["settled"] == cbp["settled"]  # read before the recall
    forward_status = await cli_json("status", *who(second, federation, "US-CBP"), "US-CBP", forwarded["message_id"])
    assert [(r["member"], r["state"], r["settled"] is not None) for r in forward_status["recipients"]] == [
        ("NL-DOUANE", "withdrawn", True)
    ]
