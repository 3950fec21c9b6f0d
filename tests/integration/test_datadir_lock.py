"""One gateway process per data_dir (``<data_dir>/gateway.lock``, gateway/infra/datadir.py): a second ``serve``
on the same directory exits at once with a one-line error and exit code 2, creating nothing; a gateway killed
with SIGKILL never blocks its own restart (the kernel releases the flock)."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
from pathlib import Path

from tests.integration.serveprocess import CLI
from tests.integration.test_crash_safety import Served, free_port


def _listing(directory: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in directory.iterdir()}


async def test_a_second_serve_on_one_data_dir_refuses_and_a_killed_one_never_blocks_a_restart(
    federation: Path, tmp_path: Path
) -> None:
    fed = tmp_path / "fed"
    shutil.copytree(federation, fed, ignore=shutil.ignore_patterns("data"))
    first = Served(fed)
    await first.start()
    try:
        second_config = fed / "gateway-second.toml"  # another port, the same data_dir ("data" beside the config)
        text = re.sub(r"rest_port = \d+", f"rest_port = {free_port()}", first.config.read_text())
        second_config.write_text(text)
        before = _listing(fed / "data")
        second = await asyncio.create_subprocess_exec(
            *CLI,
            "serve",
            "--config",
            str(second_config),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(30):
            _, stderr = await second.communicate()
        assert second.returncode == 2
        lines = stderr.decode().strip().splitlines()
        assert len(lines) == 1, stderr.decode()
        assert lines[0].startswith("error: UNAVAILABLE: ")
        assert f"data_dir {fed / 'data'} is in use by another gateway process (pid {first.process.pid})" in lines[0]
        assert _listing(fed / "data") == before  # the refused process created and changed nothing

        assert first.process is not None
        first.process.send_signal(signal.SIGKILL)
        await first.killed()
        await first.start()  # kill -9 left the lock file; the kernel released the lock: the restart is ready
    finally:
        await first.stop()
