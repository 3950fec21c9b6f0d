"""Sample AEO data used by the demo, the tests and the benchmark (synthetic operators, real number formats).

- ``NLAEOF00001234``: Rotterdam Example Import B.V., EORI ``NL123456789`` (the consignee of the sample manifest),
  AEOF, active: China recognises it under the EU-China MRA (in force 1 Nov 2015).
- ``DEAEOS00005678``: Hamburg Example Trading GmbH, EORI ``DE987654321``, AEOS, active until a partner message
  suspends it.
- ``DEAEOC00004321``: an AEOC (customs simplifications only): not covered by the MRAs.
"""

from __future__ import annotations

import json
from copy import deepcopy
from datetime import date
from typing import Any

from gateway.demo.samples import cargo_manifest

RECOGNISED_EORI = "NL123456789"
RECOGNISED_AEO = "NLAEOF00001234"
SUSPENDABLE_EORI = "DE987654321"
SUSPENDABLE_AEO = "DEAEOS00005678"

EU_PARTNER_LIST_CSV = f"""number,type,status,valid_from,valid_until,status_since,holder,identifiers
{RECOGNISED_AEO},AEOF,active,2019-03-01,,,Rotterdam Example Import B.V.,EORI:{RECOGNISED_EORI}
{SUSPENDABLE_AEO},AEOS,active,2020-06-15,,,Hamburg Example Trading GmbH,EORI:{SUSPENDABLE_EORI}
DEAEOC00004321,AEOC,active,2021-01-01,,,Munich Example Simplified GmbH,EORI:DE111222333
FRAEOX1,AEOF,active,2021-01-01,,,A row with a malformed number,
"""


def manifest_to(consignee_eori: str, manifest_number: str) -> dict[str, Any]:
    """The sample cargo manifest with another consignee (identified by its EORI)."""
    document = deepcopy(cargo_manifest(manifest_number))
    consignee = document["consignments"][0]["consignee"]
    consignee["identifiers"] = [{"scheme": "EORI", "value": consignee_eori}]
    consignee["address"]["country"] = consignee_eori[:2]
    return document


def status_update(number: str, status: str, *, since: date, eori: str, type_: str = "AEOS") -> bytes:
    """An ``aeo.status.v1`` payload (proto3 JSON) reporting one authorisation's new status."""
    document = {
        "authorisations": [
            {
                "number": number,
                "type": type_,
                "status": status.upper(),
                "validFrom": "2020-06-15",
                "statusSince": since.isoformat(),
                "holder": "Hamburg Example Trading GmbH",
                "identifiers": [{"scheme": "EORI", "value": eori}],
            }
        ]
    }
    return json.dumps(document, separators=(",", ":")).encode()
