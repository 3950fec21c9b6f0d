"""The README's "Running a gateway" commands work as written, in order, from an empty directory: real
``customs-gateway`` processes, the samples written by ``customs-gateway samples``. Only the ports 8443/8444 are
swapped for free ones (tests run side by side), and the saved checkpoint the last ``audit verify`` names is the
one the gateway published (``data/checkpoint.note``)."""

from __future__ import annotations

import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.integration.test_cli import free_port, wait_until_ready

README = Path(__file__).resolve().parents[2] / "README.md"
CGW = str(Path(sys.executable).with_name("customs-gateway"))


def readme_commands() -> list[str]:
    """The commands of the README's "Running a gateway" block, continuations joined, comments dropped."""
    block = README.read_text(encoding="utf-8").split("### Running a gateway", 1)[1]
    script = block.split("```sh\n", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    return [line.split("#", 1)[0].strip() for line in script.splitlines() if line.split("#", 1)[0].strip()]


def test_the_readme_commands_run_in_order(tmp_path: Path) -> None:
    commands = readme_commands()
    assert [c.split()[1] for c in commands][:5] == ["init", "init", "crl", "serve", "samples"]
    rest, grpc = free_port(), free_port()
    serve: subprocess.Popen[str] | None = None
    log = tmp_path / "serve.log"
    try:
        for command in commands:
            argv = shlex.split(command.replace(":8443", f":{rest}").replace(":8444", f":{grpc}"))
            assert argv[0] == "customs-gateway", command
            if argv[1] == "serve":
                config = tmp_path / "federation" / "gateway.toml"
                text = re.sub(r"rest_port = \d+", f"rest_port = {rest}", config.read_text())
                config.write_text(re.sub(r"grpc_port = \d+", f"grpc_port = {grpc}", text))
                with log.open("w") as out:
                    serve = subprocess.Popen([CGW, *argv[1:]], cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
                wait_until_ready(f"https://127.0.0.1:{rest}", tmp_path / "federation", serve, log)
                continue
            if "--checkpoint" in argv:
                shutil.copy(tmp_path / "federation" / "data" / "checkpoint.note", tmp_path / argv[-1])
            result = subprocess.run(
                [CGW, *argv[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
            )
            assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    finally:
        if serve is not None:
            serve.send_signal(signal.SIGTERM)
            assert serve.wait(timeout=30) == 0, log.read_text()
