"""In-process cost of the EDIFACT translator: CUSCAR bytes -> checked manifest JSON, and manifest -> CUSCAR.

Usage: python bench/edifact_translate.py [consignments ...]   (default: 1 10 100 1000)
Prints one JSON line per size: interchange bytes, segments, and the median of 5 runs for translate (syntax +
envelope + structure + identifiers + JSON) and for validate_payload on the result, in milliseconds.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from datetime import UTC, datetime
from typing import Any

from adapters.edifact import EdifactTranslator, to_cuscar
from gateway.core.identifiers import iso6346_check_digit
from gateway.core.payloads import validate_payload
from gateway.demo.samples import cargo_manifest


def manifest(consignments: int) -> dict[str, Any]:
    document = cargo_manifest()
    template = document["consignments"][0]
    document["consignments"] = []
    for index in range(consignments):
        serial = f"{index:06d}"
        number = "MSKU" + serial + str(iso6346_check_digit("MSKU" + serial))
        consignment = json.loads(json.dumps(template))
        consignment["transportDocumentNumber"] = f"COSU{index:010d}"
        consignment["goodsItems"][0]["containerNumbers"] = [number]
        consignment["containers"] = [{"number": number, "seals": ["CN1234567"], "sizeType": "45G1"}]
        document["consignments"].append(consignment)
    return document


def median_ms(call: Any) -> float:
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        call()
        runs.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(runs), 2)


def main(sizes: list[int]) -> None:
    translator = EdifactTranslator()
    for size in sizes:
        document = manifest(size)
        data = to_cuscar(
            document, sender="COSU", recipient="CNGACC", control_reference="B1", prepared=datetime.now(UTC)
        )
        translation = translator.translate(data)
        row = {
            "consignments": size,
            "bytes": len(data),
            "segments": data.count(b"'\n") - 1,
            "write_ms": median_ms(
                lambda d=document: to_cuscar(
                    d, sender="COSU", recipient="CNGACC", control_reference="B1", prepared=datetime.now(UTC)
                )
            ),
            "translate_ms": median_ms(lambda d=data: translator.translate(d)),
            "validate_ms": median_ms(
                lambda t=translation: validate_payload("manifest.cargo.v1", "application/json", t.payload)
            ),
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1, 10, 100, 1000])
