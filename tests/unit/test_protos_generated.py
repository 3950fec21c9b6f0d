"""The checked-in generated code in gateway/wire/ matches protos/, and the annotations cover every rule."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from gateway.core import identifiers, payloads
from gateway.wire.cgw.v1 import common_pb2, options_pb2

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gen_protos.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_protos", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_check_mode_passes_on_the_checked_in_code() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout


def test_check_detects_edits_missing_and_stale_files(tmp_path: Path) -> None:
    gen = _script()
    fresh = tmp_path / "fresh"
    gen.generate(fresh)
    tampered = tmp_path / "tampered"
    shutil.copytree(fresh, tampered)
    assert gen.compare(fresh, tampered) == []
    release = tampered / "cgw" / "v1" / "release_pb2.py"
    release.write_text(release.read_text(encoding="utf-8") + "# hand edit\n", encoding="utf-8")
    (tampered / "cgw" / "v1" / "manifest_pb2.pyi").unlink()
    (tampered / "cgw" / "v1" / "old_pb2.py").write_text("", encoding="utf-8")
    problems = gen.compare(fresh, tampered)
    assert any(p.startswith("differs: gateway/wire/cgw/v1/release_pb2.py") for p in problems)
    assert "missing: gateway/wire/cgw/v1/manifest_pb2.pyi" in problems
    assert any(p.startswith("not generated from protos/ (stale?): gateway/wire/cgw/v1/old_pb2.py") for p in problems)


def test_imports_are_rewritten_into_the_package() -> None:
    gen = _script()
    assert gen.rewrite_imports("from cgw.v1 import common_pb2 as x\n") == (
        "from gateway.wire.cgw.v1 import common_pb2 as x\n"
    )
    assert gen.rewrite_imports("from google.protobuf import timestamp_pb2\n") == (
        "from google.protobuf import timestamp_pb2\n"
    )
    for path in (REPO / "gateway" / "wire").rglob("*.py*"):
        text = path.read_text(encoding="utf-8")
        assert "\nfrom cgw." not in text, path
        assert "\nimport cgw" not in text, path


def test_generated_classes_report_their_package_module() -> None:
    assert common_pb2.Party.__module__ == "gateway.wire.cgw.v1.common_pb2"


@pytest.mark.parametrize("kind", [v.number for v in options_pb2.IdentifierKind.DESCRIPTOR.values if v.number])
def test_every_identifier_kind_has_a_rule(kind: int) -> None:
    assert kind in payloads._IDENTIFIER_RULES or kind in payloads._LOCODE_RULES


def test_every_party_identifier_scheme_has_a_rule() -> None:
    schemes = {v.name for v in common_pb2.PartyIdentifier.Scheme.DESCRIPTOR.values if v.number}
    assert schemes == set(identifiers.SCHEME_RULES)
