"""The AEO registry's SQLite file: round trip, one row per (administration, number), change detection across
connections (how a running gateway notices a CLI import), and rows re-checked on load."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.core.aeo import Status
from gateway.core.aeolist import parse_list
from gateway.core.errors import Unavailable
from gateway.demo.aeosamples import EU_PARTNER_LIST_CSV
from gateway.infra.aeo_store import AeoStore, import_list_file, load_mra_table


def test_round_trip_and_upsert(tmp_path: Path) -> None:
    report = parse_list(EU_PARTNER_LIST_CSV.encode(), fmt="csv", admin="EU", source="t")
    store = AeoStore.in_directory(tmp_path)
    assert store.upsert(report.authorisations) == 3
    assert sorted(a.number for a in store.load()) == sorted(a.number for a in report.authorisations)
    assert store.load() == sorted(report.authorisations, key=lambda a: a.number)
    first = report.authorisations[0]
    store.upsert([replace(first, status=Status.REVOKED)])
    loaded = {a.number: a for a in store.load()}
    assert len(loaded) == 3
    assert loaded[first.number].status is Status.REVOKED
    store.close()


def test_another_connection_changes_the_data_version(tmp_path: Path) -> None:
    gateway_side = AeoStore.in_directory(tmp_path)
    before = gateway_side.data_version()
    listing = tmp_path / "list.csv"
    listing.write_text(EU_PARTNER_LIST_CSV)
    report = import_list_file(tmp_path, listing, issuer="eu")
    assert report.rejected == 1
    assert gateway_side.data_version() != before
    assert len(gateway_side.load()) == 3
    gateway_side.close()


def test_a_tampered_row_stops_the_load(tmp_path: Path) -> None:
    report = parse_list(EU_PARTNER_LIST_CSV.encode(), fmt="csv", admin="EU", source="t")
    store = AeoStore.in_directory(tmp_path)
    store.upsert(report.authorisations[:1])
    with sqlite3.connect(tmp_path / "aeo.db") as conn:
        conn.execute("UPDATE authorisations SET record = replace(record, '\"AEOF\"', '\"AEOX\"')")
    with pytest.raises(Unavailable, match="does not parse"):
        store.load()
    store.close()


def test_without_a_table_no_mra_applies(tmp_path: Path) -> None:
    assert load_mra_table(tmp_path).arrangements == ()
    (tmp_path / "mra.json").write_text("{not json")
    with pytest.raises(Unavailable):
        load_mra_table(tmp_path)
