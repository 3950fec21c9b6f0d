"""``customs-gateway --help``: every argument of every (sub)command says what it is, and its default when it has one."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from gateway.app.cli import _parser
from gateway.core.payloads import MESSAGE_TYPES


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_every_argument_has_help() -> None:
    missing = [
        f"{parser.prog} {'/'.join(action.option_strings) or action.dest}"
        for parser in _parsers(_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and not (action.help or "").strip()
    ]
    assert missing == []


def test_defaults_are_shown() -> None:
    parsers = {parser.prog: parser for parser in _parsers(_parser())}
    send = parsers["customs-gateway send"].format_help()
    assert "(default: AMBER)" in send and "(default: rest)" in send
    assert "(default: 30)" in parsers["customs-gateway init"].format_help()
    assert "(default: info)" in parsers["customs-gateway"].format_help()
    # no default worth showing: no "(default: None)" or "(default: False)"
    assert all(
        "(default: None)" not in p.format_help() and "(default: False)" not in p.format_help() for p in parsers.values()
    )


def test_send_help_lists_every_message_type_and_tlp() -> None:
    send = next(p for p in _parsers(_parser()) if p.prog == "customs-gateway send").format_help()
    assert all(f"\n  {name} " in send for name in MESSAGE_TYPES)
    assert "CLEAR, GREEN, AMBER, AMBER+STRICT, RED" in send
