"""What an operator can follow in the log after acceptance (issue 20): pulls, acks, pushes, recalls and policy
reloads each log one line, and a rejection's line names the field path. A real gateway on loopback."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway.app.main import Gateway
from gateway.client.rest import GatewayClient, GatewayClientError, MemberCredentials
from gateway.core.payloads import MESSAGE_TYPES
from gateway.demo.programsamples import intel_recall, rpm_alarm
from gateway.demo.samples import cargo_manifest, to_bytes
from tests.integration.conftest import ClientFactory
from tests.integration.test_push_delivery import Start, send_notices, start, wait_until  # noqa: F401

MANIFEST = "manifest.cargo.v1"


def lines(logs: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == event]


async def test_a_pull_and_an_ack_each_log_one_line(gateway: Gateway, clients: ClientFactory) -> None:
    carrier, gacc = clients("CARRIER-COSCO"), clients("CN-GACC")
    await carrier.submit(MANIFEST, ["CN-GACC"], to_bytes(cargo_manifest()), schema=MESSAGE_TYPES[MANIFEST].schema)
    with capture_logs() as logs:
        page = await gacc.pull()
        await gacc.ack([page["items"][0]["cursor"]])
        await gacc.pull()
    pulls, acks = lines(logs, "inbox pull"), lines(logs, "inbox ack")
    assert [(p["member"], p["after"], p["items"]) for p in pulls] == [("CN-GACC", 0, 1), ("CN-GACC", 0, 0)]
    assert pulls[0]["next_after"] == page["items"][0]["cursor"]
    assert [(a["member"], a["cursors"], a["acknowledged"]) for a in acks] == [("CN-GACC", 1, 1)]


async def test_a_rejection_line_carries_the_field_path(gateway: Gateway, clients: ClientFactory) -> None:
    bad = to_bytes(cargo_manifest(container="MSKU9070324"))  # a wrong ISO 6346 check digit
    with capture_logs() as logs, pytest.raises(GatewayClientError) as refused:
        await clients("CARRIER-COSCO").submit(MANIFEST, ["CN-GACC"], bad, schema=MESSAGE_TYPES[MANIFEST].schema)
    [line] = [e for e in lines(logs, "exchange") if e["decision"] == "rejected"]
    assert (line["reason"], line["field"]) == ("IDENTIFIER_INVALID", refused.value.field)
    assert line["field"] == "payload.consignments[0].goodsItems[0].containerNumbers[0]"


async def test_a_recall_logs_one_line_naming_what_it_withdrew(gateway: Gateway, clients: ClientFactory) -> None:
    port = clients("PORT-NLRTM")
    alarm = "megaport.rpm-alarm.v1"
    sent = await port.submit(
        alarm, ["US-CBP"], to_bytes(rpm_alarm()), schema=MESSAGE_TYPES[alarm].schema, program="MEGAPORT"
    )
    recall = to_bytes(intel_recall("PORT-NLRTM", sent.body["message_id"]))
    with capture_logs() as logs:
        done = await port.submit("intel.recall.v1", ["US-CBP"], recall, schema=MESSAGE_TYPES["intel.recall.v1"].schema)
    [line] = lines(logs, "recall")
    assert (line["sender"], line["message_id"], line["recalls"]) == (
        "PORT-NLRTM",
        done.body["message_id"],
        f"PORT-NLRTM/{sent.body['message_id']}",
    )
    assert (line["withdrawn"], line["holders"], line["ledger_index"]) == (1, ["US-CBP"], done.body["ledger_index"])


async def test_a_policy_reload_logs_one_line(gateway: Gateway, clients: ClientFactory) -> None:
    with capture_logs() as logs:
        body = await clients("CN-GACC").reload_policies()
    [line] = lines(logs, "policy reload")
    assert (line["trigger"], line["by"], line["accepted"]) == ("admin", "CN-GACC", True)
    assert line["new_digest"] == body["new_digest"]


async def test_a_push_logs_one_line_per_attempt(start: Start) -> None:  # noqa: F811
    gateway, receiver, fed = await start()
    receiver.statuses = [503]  # one retryable failure, then delivered
    with capture_logs() as logs:
        [message_id] = await send_notices(gateway, fed)

        async def delivered() -> bool:
            return any(e.get("outcome") == "delivered" for e in lines(logs, "delivery"))

        await wait_until(delivered)
    pushes = [(e["message_id"], e["attempt"], e["status"], e["outcome"]) for e in lines(logs, "delivery")]
    assert pushes == [(message_id, 1, "503", "retry"), (message_id, 2, "200", "delivered")]


async def test_the_status_shows_a_retried_push_with_its_next_attempt(start: Start) -> None:  # noqa: F811
    gateway, receiver, fed = await start(backoff_base_seconds=5.0, backoff_max_seconds=5.0)
    receiver.statuses = [503]

    [message_id] = await send_notices(gateway, fed)

    async def retried() -> bool:
        [state] = await gateway.store.recipient_states("CN-GACC", message_id)
        return state.delivery is not None

    await wait_until(retried)
    async with GatewayClient(gateway.url, MemberCredentials.from_federation(fed, "CN-GACC")) as gacc:
        [state] = (await gacc.status("CN-GACC", message_id))["recipients"]
    assert (state["member"], state["state"], state["settled"]) == ("PORT-NLRTM", "retrying", None)
    push = state["delivery"]
    assert (push["attempts"], push["outcome"], push["last_status"]) == (1, "retry", "503")
    assert push["next_attempt"] > push["updated"]
