#!/usr/bin/env python3
"""AEO recognition: checks per second from the in-memory index, enrichment per manifest, index rebuild time.

In process, no network. A synthetic registry of ``--eu`` EU authorisations (EORI crosswalk) and ``--cn`` China
ACE authorisations (customs code + USCC-free), built with the real parsers, and the shipped MRA table:

- ``check``: ``AeoIndex.check_recognition`` for a mix of operators (1/3 EU AEO numbers, 1/3 EORIs through the
  crosswalk, 1/6 China customs codes recognised by the EU, 1/6 unknown), recognising administration CN or EU;
- ``enrich``: ``Recognition.enrich`` of the sample manifest (2 parties, 1 consignment) as the pipeline calls it;
- ``rebuild``: building a new ``AeoIndex`` over the whole registry (start-up, a CLI import noticed);
- ``update``: ``AeoIndex.updated`` with one changed authorisation (what an ``aeo.status.v1`` update costs).

Rates are given per wall-clock second and per CPU second of this process (the second is the one to compare
on a shared machine).

    python bench/aeo_bench.py [--eu 20000] [--cn 5000] [--checks 200000] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from gateway.core.aeo import AeoIndex, Authorisation, OperatorId, Status  # noqa: E402
from gateway.core.aeolist import parse_authorisation, parse_list  # noqa: E402
from gateway.core.payloads import validate_payload  # noqa: E402
from gateway.demo.aeosamples import EU_PARTNER_LIST_CSV  # noqa: E402 - after the path set-up
from gateway.demo.samples import cargo_manifest, to_bytes  # noqa: E402
from gateway.features.aeo.recognition import Recognition  # noqa: E402
from gateway.infra.aeo_store import AeoStore, load_mra_table  # noqa: E402

EU_STATES = ("NL", "DE", "FR", "BE", "IT", "ES", "PL", "AT")


def registry(eu: int, cn: int) -> list[Authorisation]:
    out: list[Authorisation] = []
    for n in range(eu):
        state = EU_STATES[n % len(EU_STATES)]
        kind = ("AEOC", "AEOS", "AEOF")[n % 3]
        raw = {
            "number": f"{state}{kind}{n:08d}",
            "type": kind,
            "status": "suspended" if n % 50 == 0 else "active",
            "valid_from": "2016-01-01",
            "holder": f"EU operator {n}",
            "identifiers": [{"scheme": "EORI", "value": f"{state}{n:010d}"}],
        }
        out.append(parse_authorisation(raw, admin="EU", source="bench"))
    for n in range(cn):
        code = f"44039{6 + n % 3}{n:04d}"[:10]
        raw = {"number": f"AEOCN{code}", "type": "ACE", "status": "active", "valid_from": "2018-01-01", "holder": "x"}
        out.append(parse_authorisation(raw, admin="CN", source="bench"))
    return out


def operators(auths: list[Authorisation], count: int, rng: random.Random) -> list[tuple[OperatorId, str]]:
    eu = [a for a in auths if a.admin == "EU"]
    cn = [a for a in auths if a.admin == "CN"]
    out: list[tuple[OperatorId, str]] = []
    for i in range(count):
        pick = i % 6
        if pick in (0, 1):
            out.append((rng.choice(eu).identifiers[0], "CN"))  # the EU AEO number
        elif pick in (2, 3):
            out.append((rng.choice(eu).identifiers[1], "CN"))  # the EORI (crosswalk)
        elif pick == 4 and cn:
            out.append((OperatorId("CN_CUSTOMS_CODE", rng.choice(cn).number[5:]), "EU"))
        else:
            out.append((OperatorId("EORI", f"FR9{i:09d}"), "CN"))  # unknown
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eu", type=int, default=20_000)
    parser.add_argument("--cn", type=int, default=5_000)
    parser.add_argument("--checks", type=int, default=200_000)
    parser.add_argument("--manifests", type=int, default=20_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rng = random.Random(7)
    mras = load_mra_table(REPO / "policies")
    started = time.perf_counter()
    auths = registry(args.eu, args.cn)
    parse_s = time.perf_counter() - started

    started = time.perf_counter()
    index = AeoIndex(auths, mras)
    rebuild_s = time.perf_counter() - started
    change = [replace(auths[1], status=Status.SUSPENDED)]
    started = time.perf_counter()
    for _ in range(20):
        index.updated(change)
    update_s = (time.perf_counter() - started) / 20

    probes = operators(auths, args.checks, rng)
    on = date(2026, 11, 28)
    recognised = 0
    started, cpu = time.perf_counter(), time.process_time()
    for operator, admin in probes:
        recognised += index.check_recognition(operator, admin, on).recognised
    check_s, check_cpu = time.perf_counter() - started, time.process_time() - cpu

    with tempfile.TemporaryDirectory() as tmp:
        store = AeoStore.in_directory(Path(tmp))
        store.upsert(parse_list(EU_PARTNER_LIST_CSV.encode(), fmt="csv", admin="EU", source="b").authorisations)
        store.upsert(auths)
        service = Recognition(store, mras, home_member="CN-GACC", home_admin="CN")
        payload = validate_payload("manifest.cargo.v1", "application/json", to_bytes(cargo_manifest()))
        now = datetime.now(UTC)
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(args.manifests):
            service.enrich(payload, now)
        enrich_s, enrich_cpu = time.perf_counter() - started, time.process_time() - cpu
        service.close()

    report = {
        "authorisations": len(auths),
        "parse_rows_per_s": round(len(auths) / parse_s),
        "index_rebuild_ms": round(rebuild_s * 1000, 1),
        "one_update_ms": round(update_s * 1000, 2),
        "checks": args.checks,
        "checks_per_s": round(args.checks / check_s),
        "checks_per_cpu_s": round(args.checks / check_cpu),
        "recognised_share": round(recognised / args.checks, 3),
        "manifest_enrichments_per_s": round(args.manifests / enrich_s),
        "enrichments_per_cpu_s": round(args.manifests / enrich_cpu),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:28} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
