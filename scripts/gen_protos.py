#!/usr/bin/env python3
"""Generate the Python protobuf code in ``gateway/wire/`` from ``protos/``.

Usage::

    python scripts/gen_protos.py           # regenerate gateway/wire/ in place
    python scripts/gen_protos.py --check   # regenerate into a temp dir; exit 1 with a diff summary if different

Rule 1: ``protos/`` is the only source; ``gateway/wire/`` is generated output, checked in, never edited by hand.
Rule 2: protoc writes imports relative to the proto root (``from cgw.v1 import common_pb2``); they are rewritten
        to absolute imports inside this package (``from gateway.wire.cgw.v1 import common_pb2``), and so is the
        module name each generated class reports.
        The gRPC stubs (``*_pb2_grpc.py``, only for protos that define a service) get the same rewrite.
Rule 3: the output is a pure function of the .proto files and the grpcio-tools version, so ``--check`` in CI
        catches a proto change without regenerated code (and a hand edit of generated code).
"""

from __future__ import annotations

import argparse
import difflib
import re
import shutil
import sys
import tempfile
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

REPO = Path(__file__).resolve().parents[1]
PROTO_ROOT = REPO / "protos"
WIRE_PACKAGE = "gateway.wire"
WIRE_DIR = REPO / "gateway" / "wire"
GENERATED_SUFFIXES = (".py", ".pyi")
INIT_TEXT = '"""Generated protobuf code (scripts/gen_protos.py). Do not edit."""\n'

# The first dotted component of every package under protos/ (cgw.v1 -> cgw): imports of these are rewritten.
_LOCAL_ROOTS = ("cgw",)
_FROM_IMPORT = re.compile(rf"^from ((?:{'|'.join(_LOCAL_ROOTS)})(?:\.\w+)*) import ", re.MULTILINE)
_BUILDER_MODULE = re.compile(
    rf"(_builder\.BuildTopDescriptorsAndMessages\(DESCRIPTOR, ')((?:{'|'.join(_LOCAL_ROOTS)})\.)"
)

# A gRPC stub module that defines a service has a servicer class; the others are empty and are dropped.
_SERVICE_CLASS = re.compile(r"^class \w+Servicer\b", re.MULTILINE)


def _protoc_include() -> Path:
    """The directory of the well-known types (google/protobuf/*.proto) shipped with grpcio-tools."""
    return Path(grpc_tools.__file__).resolve().parent / "_proto"


def rewrite_imports(text: str) -> str:
    """Make protoc's root-relative imports resolve inside ``gateway.wire``."""
    text = _FROM_IMPORT.sub(lambda m: f"from {WIRE_PACKAGE}.{m.group(1)} import ", text)
    return _BUILDER_MODULE.sub(lambda m: f"{m.group(1)}{WIRE_PACKAGE}.{m.group(2)}", text)


def generate(out_dir: Path) -> list[Path]:
    """Run protoc over every .proto under ``protos/`` into ``out_dir``; return the written files (relative)."""
    sources = sorted(p.relative_to(PROTO_ROOT).as_posix() for p in PROTO_ROOT.rglob("*.proto"))
    if not sources:
        raise SystemExit(f"no .proto files under {PROTO_ROOT}")
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{_protoc_include()}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *sources,
    ]
    rc = protoc.main(args)
    if rc != 0:
        raise SystemExit(f"protoc failed with exit code {rc}")
    written: list[Path] = []
    for path in sorted(out_dir.rglob("*_pb2_grpc.py")):
        if _SERVICE_CLASS.search(path.read_text(encoding="utf-8")) is None:
            path.unlink()  # protoc-gen-grpc writes a stub module for every proto, with or without a service
    for path in sorted(out_dir.rglob("*")):
        if path.suffix in GENERATED_SUFFIXES and path.is_file():
            path.write_text(rewrite_imports(path.read_text(encoding="utf-8")), encoding="utf-8")
            written.append(path.relative_to(out_dir))
    # Every directory becomes a regular package so that mypy and setuptools find the modules.
    for directory in [out_dir, *sorted(p for p in out_dir.rglob("*") if p.is_dir())]:
        if "__pycache__" in directory.parts:
            continue
        init = directory / "__init__.py"
        init.write_text(INIT_TEXT, encoding="utf-8")
        written.append(init.relative_to(out_dir))
    return sorted(set(written))


def _tree(root: Path) -> dict[str, str]:
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix in GENERATED_SUFFIXES and "__pycache__" not in p.parts
    }


def compare(expected_root: Path, actual_root: Path) -> list[str]:
    """A human summary of how ``actual_root`` differs from ``expected_root``; empty when identical."""
    expected, actual = _tree(expected_root), _tree(actual_root)
    problems: list[str] = []
    for name in sorted(expected.keys() - actual.keys()):
        problems.append(f"missing: gateway/wire/{name}")
    for name in sorted(actual.keys() - expected.keys()):
        problems.append(f"not generated from protos/ (stale?): gateway/wire/{name}")
    for name in sorted(expected.keys() & actual.keys()):
        if expected[name] != actual[name]:
            diff = list(
                difflib.unified_diff(
                    actual[name].splitlines(),
                    expected[name].splitlines(),
                    f"checked-in/{name}",
                    f"generated/{name}",
                    lineterm="",
                    n=0,
                )
            )
            shown = "\n    ".join(diff[:12]) + ("\n    ..." if len(diff) > 12 else "")
            problems.append(f"differs: gateway/wire/{name} ({len(diff)} diff lines)\n    {shown}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if gateway/wire/ is not up to date")
    args = parser.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory(prefix="cgw-protos-") as tmp:
            generate(Path(tmp))
            problems = compare(Path(tmp), WIRE_DIR)
        if problems:
            print("gateway/wire/ is out of date; run: python scripts/gen_protos.py", file=sys.stderr)
            for line in problems:
                print("  " + line, file=sys.stderr)
            return 1
        print("gateway/wire/ is up to date")
        return 0
    with tempfile.TemporaryDirectory(prefix="cgw-protos-") as tmp:
        files = generate(Path(tmp))
        if WIRE_DIR.exists():
            shutil.rmtree(WIRE_DIR)
        shutil.copytree(tmp, WIRE_DIR, ignore=shutil.ignore_patterns("__pycache__"))
    print(f"wrote {len(files)} files into {WIRE_DIR.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
