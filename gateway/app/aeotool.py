"""``customs-gateway aeo``: the operator's side of the AEO registry.

    customs-gateway aeo import FILE --issuer EU --config gateway.toml [--format csv|json]
    customs-gateway aeo check OPERATOR --config gateway.toml [--admin CN] [--date YYYY-MM-DD]

``import`` stores every good row of a partner's list file (or the home administration's own list, with
``--issuer`` = the home administration) and prints the per-row report as JSON; a running gateway picks the
change up within a second and records the reload in its ledger. ``check`` answers from the same store and MRA
table as the gateway, offline.

Exit codes: 0 every row imported / recognised, 1 some rows rejected / not recognised, 2 usage or file error.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.app.settings import load_settings
from gateway.core.aeo import AeoIndex, administration_of, parse_date, utc_date
from gateway.core.aeolist import infer_operator, parse_admin
from gateway.core.errors import BadRequest
from gateway.infra.aeo_store import AeoStore, import_list_file, load_mra_table
from gateway.infra.files import load_trust


def add_parser(commands: Any) -> None:
    aeo = commands.add_parser("aeo", help="AEO registry: import partner lists, check recognition")
    sub = aeo.add_subparsers(dest="aeo_command", required=True)
    imp = sub.add_parser("import", help="import a partner's AEO list (CSV or JSON) with a per-row report")
    imp.add_argument("file", type=Path, help="the partner's list: CSV (see the README) or JSON")
    imp.add_argument("--issuer", required=True, help="issuing administration: ISO alpha-2 or EU")
    imp.add_argument("--config", type=Path, required=True, help="the gateway's config (its data_dir)")
    imp.add_argument("--format", choices=["csv", "json"], help="default: from the file suffix")
    check = sub.add_parser("check", help="is OPERATOR an AEO the administration recognises on the date?")
    check.add_argument("operator", help="SCHEME:value or a bare EORI / USCC / AEO number")
    check.add_argument("--config", type=Path, required=True, help="the gateway's config (its data_dir)")
    check.add_argument("--admin", help="recognising administration (default: the home administration)")
    check.add_argument("--date", help="YYYY-MM-DD (default: today, UTC)")


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    if args.aeo_command == "import":
        report = import_list_file(settings.data_dir, args.file, issuer=args.issuer, fmt=args.format)
        print(json.dumps(report.record(), indent=2))
        return 0 if report.rejected == 0 else 1
    store = AeoStore.in_directory(settings.data_dir)
    try:
        index = AeoIndex(store.load(), load_mra_table(settings.policies_dir))
    finally:
        store.close()
    if args.admin:
        admin = parse_admin(args.admin, "admin")
    else:
        registry = load_trust(settings.trust_anchors, settings.trust_crl, settings.trust_registry).registry
        home = registry.get(settings.member_id)
        admin = administration_of(home.country) if home else settings.member_id[:2]
    try:
        on = parse_date(args.date, "date") if args.date else utc_date(datetime.now(UTC))
    except ValueError:
        raise BadRequest("--date must be YYYY-MM-DD", field="date") from None
    result = index.check_recognition(infer_operator(args.operator), admin, on)
    print(json.dumps(result.record(), indent=2))
    return 0 if result.recognised else 1
