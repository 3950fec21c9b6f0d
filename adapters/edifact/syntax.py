"""UN/EDIFACT syntax (ISO 9735) and the interchange envelope: bytes -> :class:`Interchange` of frozen segments.

pydifact tokenizes each segment (separators, release characters); everything it does not check is checked here,
each failure an :class:`EdifactInvalid` whose ``field`` is ``segment[<n>].<TAG>`` (n counts the interchange's
segments from UNB = 1; UNA is not a segment) and whose detail starts with the rule id, e.g. ``UNT.count: ...``.

Rule 1: bounds first: the byte size (:data:`MAX_INTERCHANGE_BYTES`), the segment count (:data:`MAX_SEGMENTS`)
        and the elements per segment (:data:`MAX_ELEMENTS`) are checked before any further work.
Rule 2: ``UNA`` when present is exactly 9 characters; the six service characters are distinct and none is a
        letter or a digit (``UNA.syntax``). Without ``UNA`` the ISO 9735 defaults ``:+.? '`` apply.
Rule 3: the character set is the one UNB names (UNOA/UNOB ASCII, UNOC..UNOF ISO 8859-1/2/5/7, UNOW UTF-8); bytes
        outside it are refused (``UNB.charset``).
Rule 4: a release character escapes exactly one service character (``SYNTAX.release``); every segment ends with
        the terminator: text after the last terminator means a truncated interchange (``SYNTAX.truncated``;
        pydifact would drop it silently); tags are three upper-case letters (``SYNTAX.tag``).
Rule 5: envelope: UNB first (``UNB.missing``), UNZ last (``UNZ.missing``), no UNG groups (``UNG.unsupported``),
        every message UNH..UNT with UNT's segment count (UNH and UNT included, ``UNT.count``) and reference
        (``UNT.reference``), UNZ's message count (``UNZ.count``) and control reference (``UNZ.reference``).
Rule 6: dates and times are real calendar values (:func:`calendar_value`): exactly the layout's digits, a month
        1-12, a day that month has (29 February in leap years only), hours 00-23, minutes and seconds 00-59.
        UNB S004 (YYMMDD, CCYYMMDD in syntax version 4, and HHMM) is refused otherwise (``UNB.datetime``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Final

from pydifact.control.characters import Characters
from pydifact.exceptions import EDISyntaxError
from pydifact.parser import Parser
from pydifact.segments import Segment as PydifactSegment
from pydifact.serializer import Serializer
from pydifact.tokenizer import Tokenizer

from gateway.core.errors import EdifactInvalid, GatewayError, LimitExceeded

# A CUSCAR for a large container vessel (thousands of bills of lading) is well under 2 MiB; pydifact tokenizes in
# pure Python (~1 s per MiB), so this bounds the work one submission can cause.
MAX_INTERCHANGE_BYTES: Final = 2 * 1024 * 1024
# Segments per interchange: ~40 000 for the largest real manifests; the bound keeps lists of frozen segments small.
MAX_SEGMENTS: Final = 100_000
# Data elements per segment: the widest CUSCAR segment (NAD) has 10; composites have at most 10 components.
MAX_ELEMENTS: Final = 40
MAX_COMPONENTS: Final = 20
# UNB 0020 / UNH 0062 are an..14 (ISO 9735).
MAX_REFERENCE_CHARS: Final = 14
# interchange_header reads UNB, UNH and BGM from this many bytes: UNB is at most ~250 bytes, UNH ~100, BGM ~150.
HEAD_BYTES: Final = 4096

DEFAULT_SERVICE: Final = ":+.? '"  # ISO 9735 level A defaults, in UNA order
_ENCODINGS: Mapping[str, str] = MappingProxyType(
    {
        "UNOA": "ascii",
        "UNOB": "ascii",
        "UNOC": "iso-8859-1",
        "UNOD": "iso-8859-2",
        "UNOE": "iso-8859-5",
        "UNOF": "iso-8859-7",
        "UNOW": "utf-8",
        "UNOY": "utf-8",
    }
)
_TAG: Final = re.compile(r"[A-Z]{3}")
_REFERENCE: Final = re.compile(r"[A-Za-z0-9 ./_-]{1,14}")
_REFERENCE_PARTY: Final = re.compile(r"[A-Za-z0-9 ./_-]{1,35}")  # UNB 0004 / 0010 are an..35
_DOCUMENT: Final = re.compile(r"[^\x00-\x1f\x7f]{1,35}")  # BGM 1004 is an..35 (printable, any character set)
# Date/time layouts (ISO 9735 S004, UNCL 2379) -> the strptime format of the same fields. strptime alone accepts
# unpadded fields ("2024111" is 2024-11-01 under %Y%m%d), so calendar_value first requires exactly the layout's
# digits; then every field has its fixed width and strptime only checks the ranges and the calendar.
_LAYOUTS: Mapping[str, str] = MappingProxyType(
    {
        "YYMMDD": "%y%m%d",
        "CCYYMMDD": "%Y%m%d",
        "HHMM": "%H%M",
        "CCYYMMDDHHMM": "%Y%m%d%H%M",
        "CCYYMMDDHHMMSS": "%Y%m%d%H%M%S",
    }
)
_UNB_SYNTAX: Final = re.compile(rb"UNB.(UNO[A-Z])")


def calendar_value(value: str, layout: str) -> datetime | None:
    """``value`` read in ``layout`` (a key of :data:`_LAYOUTS`, e.g. ``CCYYMMDD``) when it is exactly that many
    ASCII digits and a real date and time (Rule 6), else None. YY is read as strptime's %y (69-99 -> 19YY)."""
    if len(value) != len(layout) or not (value.isascii() and value.isdigit()):
        return None
    try:
        return datetime.strptime(value, _LAYOUTS[layout])
    except ValueError:
        return None


def where(position: int, tag: str) -> str:
    return f"segment[{position}].{tag}"


def refuse(rule: str, detail: str, position: int, tag: str) -> EdifactInvalid:
    return EdifactInvalid(f"{rule}: {detail}", field=where(position, tag))


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment: its position in the interchange (UNB = 1), tag, and data elements as component tuples."""

    position: int
    tag: str
    elements: tuple[tuple[str, ...], ...]

    @property
    def where(self) -> str:
        return where(self.position, self.tag)

    def get(self, element: int, component: int = 0) -> str:
        """Element ``element`` (0-based, after the tag), component ``component``; '' when absent."""
        if element >= len(self.elements):
            return ""
        parts = self.elements[element]
        return parts[component] if component < len(parts) else ""

    def refuse(self, rule: str, detail: str) -> EdifactInvalid:
        return refuse(rule, detail, self.position, self.tag)


@dataclass(frozen=True, slots=True)
class Message:
    """One UNH..UNT message with its identifier (UNH S009) and all its segments, UNH and UNT included."""

    reference: str
    type: str  # e.g. CUSCAR
    version: str  # D
    release: str  # e.g. 95B
    agency: str  # UN
    segments: tuple[Segment, ...]

    @property
    def directory(self) -> str:
        return f"{self.version}.{self.release}"


@dataclass(frozen=True, slots=True)
class Interchange:
    syntax: str  # UNOC
    syntax_version: str  # 3
    sender: str
    recipient: str
    control_reference: str  # UNB 0020, the correlation key of the answer
    messages: tuple[Message, ...]
    service: str  # the six service characters in UNA order


# -- entry point ------------------------------------------------------------------------------------------


def parse_interchange(data: bytes) -> Interchange:
    """Tokenize and check the envelope of one interchange (Rules 1-5)."""
    if len(data) > MAX_INTERCHANGE_BYTES:
        raise LimitExceeded(f"EDIFACT interchange larger than {MAX_INTERCHANGE_BYTES} bytes", field="payload")
    service, body_start = _service_characters(data)
    text = _decode(data[body_start:])
    segments = tuple(_segments(text, service))
    return _envelope(segments, service)


@dataclass(frozen=True, slots=True)
class InterchangeHead:
    """What a (possibly broken) interchange says about itself in its first segments; '' for what is unreadable."""

    reference: str  # UNB 0020
    sender: str  # UNB S002 0004
    document: str  # BGM 1004 of the first message (the manifest number), when UNH and BGM open it


def interchange_header(data: bytes) -> InterchangeHead:
    """Best effort, from the first :data:`HEAD_BYTES`: the UNB control reference and sender and the first
    message's BGM document number of a (possibly broken) interchange. Never raises (used to answer refused
    filings): the first three segments are tokenized as usual, anything unreadable is ''."""
    try:
        service, start = _service_characters(data[:16])
    except EdifactInvalid:
        return InterchangeHead("", "", "")
    head = data[start : start + HEAD_BYTES]
    found = _UNB_SYNTAX.match(head)
    encoding = _ENCODINGS.get(found.group(1).decode("ascii") if found else "UNOA", "latin-1")
    segments: list[Segment] = []
    try:
        for segment in _segments(head.decode(encoding, "replace"), service):
            segments.append(segment)
            if len(segments) == 3:
                break
    except GatewayError:
        pass  # the head ends inside a segment, or one is broken: keep what was read before it
    tags = [segment.tag for segment in segments]
    if tags[:1] != ["UNB"]:
        return InterchangeHead("", "", "")
    unb = segments[0]
    reference, sender = unb.get(4), unb.get(1)
    document = segments[2].get(1) if tags == ["UNB", "UNH", "BGM"] else ""
    return InterchangeHead(
        reference if _REFERENCE.fullmatch(reference) else "",
        sender if _REFERENCE_PARTY.fullmatch(sender) else "",
        document if _DOCUMENT.fullmatch(document) else "",
    )


def _service_characters(data: bytes) -> tuple[str, int]:
    if not data.startswith(b"UNA"):
        return DEFAULT_SERVICE, 0
    chars = data[3:9].decode("latin-1")
    if len(chars) != 6 or len(set(chars)) != 6 or any(c.isalnum() for c in chars):
        raise refuse("UNA.syntax", "UNA must be followed by 6 distinct, non-alphanumeric service characters", 0, "UNA")
    if chars[2] not in ".,":
        raise refuse("UNA.syntax", "the decimal mark must be '.' or ','", 0, "UNA")
    start = 9
    while data[start : start + 1] in (b"\r", b"\n"):
        start += 1
    return chars, start


def _decode(body: bytes) -> str:
    found = _UNB_SYNTAX.match(body)
    syntax = found.group(1).decode("ascii") if found else "UNOA"
    encoding = _ENCODINGS.get(syntax)
    if encoding is None:
        raise refuse("UNB.syntax", f"unknown syntax identifier {syntax}", 1, "UNB")
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as exc:
        raise refuse("UNB.charset", f"byte {exc.start} is not in the {syntax} character set", 1, "UNB") from None


def _segments(text: str, service: str) -> Iterable[Segment]:
    component, element, release, terminator = service[0], service[1], service[3], service[5]
    rel, term = re.escape(release), re.escape(terminator)
    one_segment = re.compile(rf"(?:{rel}.|[^{rel}{term}])*{term}[\r\n]*", re.DOTALL)
    released = re.compile(rf"{rel}(.?)", re.DOTALL)  # non-overlapping: "??" is one escaped release character
    service_chars = frozenset({component, element, release, terminator})
    characters = Characters.from_str("UNA" + service)
    parser = Parser(characters=characters)
    position = 0
    offset = 0
    while offset < len(text):
        found = one_segment.match(text, offset)
        if found is None:
            raise refuse("SYNTAX.truncated", "the interchange ends inside a segment (no terminator)", position + 1, "")
        position += 1
        if position > MAX_SEGMENTS:
            raise LimitExceeded(f"more than {MAX_SEGMENTS} segments", field=where(position, ""))
        raw = found.group().rstrip("\r\n")
        offset = found.end()
        if any(m.group(1) not in service_chars for m in released.finditer(raw[:-1])):
            raise refuse("SYNTAX.release", "a release character must precede a service character", position, raw[:3])
        yield _segment(raw, position, parser, characters)


def _segment(raw: str, position: int, parser: Parser, characters: Characters) -> Segment:
    try:
        tokens = list(Tokenizer().get_tokens(raw, characters))
        elements = next(iter(parser.convert_tokens_to_raw_segments(tokens)))
    except (EDISyntaxError, StopIteration) as exc:
        raise refuse("SYNTAX.segment", f"not a segment: {str(exc)[:80]}", position, raw[:3]) from None
    tag = elements[0] if isinstance(elements[0], str) else ""
    if not _TAG.fullmatch(tag):
        raise refuse("SYNTAX.tag", "a segment tag is three upper-case letters", position, "")
    if len(elements) > MAX_ELEMENTS + 1:
        raise LimitExceeded(f"more than {MAX_ELEMENTS} data elements", field=where(position, tag))
    parts: list[tuple[str, ...]] = []
    for item in elements[1:]:
        value = (item,) if isinstance(item, str) else tuple(item)
        if len(value) > MAX_COMPONENTS:
            raise LimitExceeded(f"more than {MAX_COMPONENTS} components", field=where(position, tag))
        parts.append(value)
    return Segment(position, tag, tuple(parts))


# -- the envelope -----------------------------------------------------------------------------------------


def _envelope(segments: Sequence[Segment], service: str) -> Interchange:
    if not segments or segments[0].tag != "UNB":
        first = segments[0] if segments else Segment(1, "", ())
        raise first.refuse("UNB.missing", "an interchange starts with UNB")
    unb = segments[0]
    last = segments[-1]
    if last.tag != "UNZ":
        raise refuse("UNZ.missing", "the interchange does not end with UNZ (truncated?)", last.position + 1, "UNZ")
    syntax, version = unb.get(0, 0), unb.get(0, 1)
    if syntax not in _ENCODINGS or version not in {"1", "2", "3", "4"}:
        raise unb.refuse("UNB.syntax", "syntax identifier must be UNOA..UNOF/UNOW/UNOY with version 1-4")
    date_layout = "CCYYMMDD" if version == "4" else "YYMMDD"
    date, time = unb.get(3, 0), unb.get(3, 1)
    if calendar_value(date, date_layout) is None or calendar_value(time, "HHMM") is None:
        detail = f"date and time of preparation {date[:14]!r}:{time[:6]!r} is not a real {date_layout}:HHMM"
        raise unb.refuse("UNB.datetime", detail)
    sender, recipient, control = unb.get(1), unb.get(2), unb.get(4)
    if not sender or not recipient:
        raise unb.refuse("UNB.party", "sender and recipient identifications are required")
    if not _REFERENCE.fullmatch(control):
        raise unb.refuse("UNB.reference", f"the control reference is 1-{MAX_REFERENCE_CHARS} characters")
    messages = tuple(_messages(segments[1:-1]))
    if last.get(0) != str(len(messages)):
        raise last.refuse(
            "UNZ.count", f"interchange control count is {last.get(0)!r}, the interchange has {len(messages)}"
        )
    if last.get(1) != control:
        raise last.refuse("UNZ.reference", f"UNZ reference {last.get(1)!r} differs from UNB reference {control!r}")
    return Interchange(syntax, version, sender, recipient, control, messages, service)


def _messages(body: Sequence[Segment]) -> Iterable[Message]:
    index = 0
    while index < len(body):
        unh = body[index]
        if unh.tag in ("UNG", "UNE"):
            raise unh.refuse("UNG.unsupported", "functional groups (UNG..UNE) are not supported")
        if unh.tag != "UNH":
            raise unh.refuse("UNH.missing", "a message starts with UNH")
        reference = unh.get(0)
        if not _REFERENCE.fullmatch(reference):
            raise unh.refuse("UNH.reference", f"the message reference is 1-{MAX_REFERENCE_CHARS} characters")
        end = index + 1
        while end < len(body) and body[end].tag not in ("UNT", "UNH"):
            end += 1
        if end == len(body) or body[end].tag != "UNT":
            raise refuse("UNT.missing", "the message has no UNT", body[end - 1].position + 1, "UNT")
        unt = body[end]
        count = end - index + 1
        if unt.get(0) != str(count):
            raise unt.refuse("UNT.count", f"segment count is {unt.get(0)!r}, the message has {count} (UNH..UNT)")
        if unt.get(1) != reference:
            raise unt.refuse("UNT.reference", f"UNT reference {unt.get(1)!r} differs from UNH reference {reference!r}")
        yield Message(
            reference, unh.get(1, 0), unh.get(1, 1), unh.get(1, 2), unh.get(1, 3), tuple(body[index : end + 1])
        )
        index = end + 1


# -- writing ----------------------------------------------------------------------------------------------

Element = str | Sequence[str]


def serialize(
    segments: Iterable[tuple[str, Sequence[Element]]], *, encoding: str, service: str = DEFAULT_SERVICE
) -> bytes:
    """``(tag, elements)`` pairs -> interchange bytes with UNA, one segment per line (pydifact escapes).

    ``encoding`` must be the one the UNB syntax identifier names (see :func:`encoding_of`)."""
    characters = Characters.from_str("UNA" + service)
    built = [
        PydifactSegment(tag, *[e if isinstance(e, str) else list(e) for e in _trim(elements)])
        for tag, elements in segments
    ]
    text = Serializer(characters).serialize(built, with_una_header=True, break_lines=True)
    return text.encode(encoding)


def encoding_of(syntax: str) -> str:
    return _ENCODINGS[syntax]


def _trim(elements: Sequence[Element]) -> list[Element]:
    """Trailing empty elements are omitted (ISO 9735 truncation)."""
    out = list(elements)
    while out and (out[-1] == "" or (not isinstance(out[-1], str) and not any(out[-1]))):
        out.pop()
    return out
