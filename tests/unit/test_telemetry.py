"""The log writer: the lines of one event-loop iteration leave in one write, in order; none is lost."""

from __future__ import annotations

import asyncio
import io
import json

import structlog

from gateway.ops.telemetry import LineWriter, configure_logging


class CountingFile(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_lines_of_one_loop_iteration_leave_in_one_write_in_order() -> None:
    out = CountingFile()
    writer = LineWriter(out)

    async def main() -> None:
        for n in range(50):
            writer.msg(f"line {n}")
        assert out.getvalue() == ""  # not yet: at the end of this iteration
        await asyncio.sleep(0)
        assert out.writes == 1
        writer.msg("next iteration")
        await asyncio.sleep(0)

    asyncio.run(main())
    assert out.getvalue().splitlines() == [*(f"line {n}" for n in range(50)), "next iteration"]
    assert out.writes == 2


def test_a_line_outside_any_loop_is_written_at_once() -> None:
    out = CountingFile()
    writer = LineWriter(out)
    writer.msg("no loop here")
    assert out.getvalue() == "no loop here\n"


def test_configured_logging_writes_json_lines_through_it(capsys: object) -> None:
    configure_logging(level="info", json=True)
    try:
        log = structlog.get_logger("test.telemetry")

        async def main() -> None:
            log.info("exchange", decision="accepted", reason="OK")
            log.debug("hidden")

        asyncio.run(main())
        lines = capsys.readouterr().out.splitlines()  # type: ignore[attr-defined]
        assert [json.loads(line)["event"] for line in lines] == ["exchange"]
    finally:
        structlog.reset_defaults()


def test_lines_a_closed_loop_never_flushed_are_written_with_the_next_line() -> None:
    out = CountingFile()
    writer = LineWriter(out)
    loop = asyncio.new_event_loop()

    async def log_then_stop() -> None:
        writer.msg("logged as the loop stopped")
        asyncio.get_running_loop().stop()

    task = loop.create_task(log_then_stop())
    loop.run_forever()  # stops before the flush it scheduled can run
    assert task.done()
    loop.close()
    assert out.getvalue() == ""

    async def later() -> None:
        writer.msg("a later loop")
        await asyncio.sleep(0)

    asyncio.run(later())
    assert out.getvalue().splitlines() == ["logged as the loop stopped", "a later loop"]
