"""Reading the policy bundle and its test cases from a directory (``policies/`` by default).

Rule 1: the bundle is every ``*.cedar`` file directly in the directory, in file-name order, joined by a
        newline, plus exactly one schema file: ``schema.cedarschema`` (Cedar syntax) or
        ``schema.cedarschema.json`` (JSON). Both present, or neither, is refused.
Rule 2: every problem (missing or oversized file, bad UTF-8, bad JSON) is ``Unavailable`` naming the file:
        without a readable bundle the gateway fails closed.
Rule 3: policy tests are every ``*.json`` file in ``<directory>/tests``, in file-name order; each holds a list
        of cases (see :func:`gateway.core.policy.parse_policy_tests`).
Rule 4: ``programs.json`` (the programme table, :mod:`gateway.core.programs`) sits beside the policies; an
        absent file means no programmes. It is part of the bundle (``PolicyBundle.data``) and of its digest:
        a changed lane or member changes the digest decisions record. ``sample-registry.json`` is the sample
        federation the policy tests assume (registry format, see :mod:`gateway.core.registry`), so they run the
        same on every deployment.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gateway.core import programs as program_rules
from gateway.core.errors import GatewayError, Unavailable
from gateway.core.model import Registry
from gateway.core.policy import (
    MAX_POLICY_TEXT_CHARS,
    MAX_SCHEMA_CHARS,
    PolicyBundle,
    parse_bundle,
)
from gateway.core.policycase import PolicyTestCase, parse_policy_tests
from gateway.core.programs import Programs
from gateway.core.registry import parse_registry

SCHEMA_FILE = "schema.cedarschema"
SCHEMA_JSON_FILE = "schema.cedarschema.json"
TESTS_DIRECTORY = "tests"
PROGRAMS_FILE = "programs.json"
SAMPLE_REGISTRY_FILE = "sample-registry.json"
# More policy files than this is a packaging mistake (or a directory that is not ours).
MAX_POLICY_FILES = 64
# A test file larger than this is not hand-written; refuse rather than read it into memory.
MAX_TEST_FILE_BYTES = 4 * 1024 * 1024
# The programme table and the sample registry are hand-written too (a thousand lanes is ~60 KiB).
MAX_DATA_FILE_BYTES = 4 * 1024 * 1024


def _read_text(path: Path, limit: int) -> str:
    try:
        if path.stat().st_size > limit:
            raise Unavailable(f"{path.name} is larger than {limit} bytes", field=str(path))
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise Unavailable(f"cannot read {path.name}: {exc.strerror}", field=str(path)) from None
    except UnicodeDecodeError:
        raise Unavailable(f"{path.name} is not UTF-8", field=str(path)) from None


def _read_schema(directory: Path) -> str | dict[str, Any]:
    cedar, as_json = directory / SCHEMA_FILE, directory / SCHEMA_JSON_FILE
    if cedar.is_file() == as_json.is_file():
        raise Unavailable(
            f"expected exactly one of {SCHEMA_FILE} and {SCHEMA_JSON_FILE} in {directory}",
            field=str(directory),
        )
    if cedar.is_file():
        return _read_text(cedar, MAX_SCHEMA_CHARS)
    try:
        schema = json.loads(_read_text(as_json, MAX_SCHEMA_CHARS))
    except json.JSONDecodeError as exc:
        raise Unavailable(f"{as_json.name} is not JSON: {exc.msg} at line {exc.lineno}", field=str(as_json)) from None
    if not isinstance(schema, dict):
        raise Unavailable(f"{as_json.name} must hold a JSON object", field=str(as_json))
    return schema


def load_bundle(directory: Path) -> PolicyBundle:
    """The policy bundle in ``directory`` (Rule 1). Syntax and schema validation happen in ``Authorizer``."""
    if not directory.is_dir():
        raise Unavailable(f"policy directory {directory} does not exist", field=str(directory))
    files = sorted(p for p in directory.glob("*.cedar") if p.is_file())
    if not files:
        raise Unavailable(f"no *.cedar files in {directory}", field=str(directory))
    if len(files) > MAX_POLICY_FILES:
        raise Unavailable(f"more than {MAX_POLICY_FILES} policy files in {directory}", field=str(directory))
    text = "\n".join(_read_text(path, MAX_POLICY_TEXT_CHARS) for path in files)
    programs = directory / PROGRAMS_FILE
    data = [(PROGRAMS_FILE, _read_text(programs, MAX_DATA_FILE_BYTES))] if programs.exists() else []
    return parse_bundle(text, _read_schema(directory), data)


def load_policy_tests(directory: Path) -> list[PolicyTestCase]:
    """All policy test cases under ``directory/tests`` (Rule 3); an absent tests directory yields none."""
    tests = directory / TESTS_DIRECTORY
    if not tests.is_dir():
        return []
    cases: list[PolicyTestCase] = []
    for path in sorted(p for p in tests.glob("*.json") if p.is_file()):
        try:
            data = json.loads(_read_text(path, MAX_TEST_FILE_BYTES))
        except json.JSONDecodeError as exc:
            raise Unavailable(f"{path.name} is not JSON: {exc.msg} at line {exc.lineno}", field=str(path)) from None
        cases.extend(parse_policy_tests(data, source=path.name))
    names = [c.name for c in cases]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise Unavailable(f"duplicate policy test names across files {duplicates}", field=str(tests))
    return cases


def _read_json(path: Path) -> object:
    try:
        return json.loads(_read_text(path, MAX_DATA_FILE_BYTES))
    except json.JSONDecodeError as exc:
        raise Unavailable(f"{path.name} is not JSON: {exc.msg} at line {exc.lineno}", field=str(path)) from None


def bundle_programs(bundle: PolicyBundle, known_types: Iterable[str]) -> Programs:
    """The programme table the bundle was loaded with (and digested over); none when it had no programs.json."""
    text = bundle.data_file(PROGRAMS_FILE)
    if text is None:
        return program_rules.EMPTY
    try:
        return program_rules.parse_programs(json.loads(text), known_types)
    except json.JSONDecodeError as exc:
        raise Unavailable(f"{PROGRAMS_FILE} is not JSON: {exc.msg} at line {exc.lineno}", field=PROGRAMS_FILE) from None
    except GatewayError as exc:
        raise Unavailable(f"{PROGRAMS_FILE}: {exc.detail}", field=f"{PROGRAMS_FILE}:{exc.field or ''}") from None


def load_programs(directory: Path, known_types: Iterable[str]) -> Programs:
    """The programme table in ``directory/programs.json`` (Rule 4); none when the file is absent."""
    return bundle_programs(load_bundle(directory), known_types)


def load_sample_registry(directory: Path) -> Registry:
    """The sample federation the policy tests assume (Rule 4)."""
    path = directory / SAMPLE_REGISTRY_FILE
    try:
        return parse_registry(_read_json(path))
    except GatewayError as exc:
        raise Unavailable(f"{path.name}: {exc.detail}", field=f"{path.name}:{exc.field or ''}") from None
