"""CUSCAR message structure per directory: segment tables as data, one matcher, a tree of named groups.

Rule 1: the directory is the one UNH S009 names; CUSCAR D.95B, D.96B and D.21A or later (up to D.99, read as
        2021-2099) are known; any other type, directory or agency is refused (``UNH.type``, ``UNH.directory``).
Rule 2: each directory is a table (:data:`DIRECTORIES`) of segments and groups with status (M/C) and maximum
        repeats, taken from ../shared/reference/standards.md section 6.2 (D.95B: UNECE cuscar_d; D.21A+:
        pydifact d21a cuscar.xml; D.96B: the D.96A shape with NAD and TDT groups, as carrier samples show).
        Groups carry a semantic name (``transport``, ``equipment``, ``consignment``, ``document``, ``party``,
        ``goods``) so the converter reads every directory the same way.
Rule 3: matching is the standard greedy reading: a group starts at its trigger (its first segment); a missing
        mandatory segment (``STRUCTURE.mandatory``), a segment repeated beyond its maximum (``STRUCTURE.repeat``)
        and a segment where the table does not allow it (``STRUCTURE.unexpected``) are refused with its position.
        A segment that exceeds its group's maximum closes the group (the parent may start a new instance).
Rule 4: :data:`DIRECTORIES` are the directories' own tables (strict). Each has a place for a goods item's HS
        code: CST C246 (7361 the code, 3055 = ``1``: the Customs Co-operation Council, now WCO, keeper of the HS),
        where ``to_cuscar`` writes it, so its output passes the strict tables. Carrier filings are read with
        :data:`EXTENDED`: the same tables plus one gateway extension (README "EDIFACT"), ``PIA`` (7143 = ``HS``)
        after ``GID``, which earlier versions of the gateway wrote (and ``to_cuscar(hs_extension=True)`` still
        writes for partners that read only that).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from adapters.edifact.syntax import Message, Segment, refuse
from gateway.core.errors import EdifactInvalid


@dataclass(frozen=True, slots=True)
class Seg:
    tag: str
    mandatory: bool = False
    max: int = 1


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    entries: tuple[Seg | Group, ...]
    mandatory: bool = False
    max: int = 1

    @property
    def trigger(self) -> str:
        first = self.entries[0]
        assert isinstance(first, Seg)
        return first.tag


@dataclass(frozen=True, slots=True)
class Node:
    """A matched group instance: its own segments (in order) and its child groups (in order)."""

    name: str
    segments: tuple[Segment, ...]
    groups: tuple[Node, ...]

    @property
    def head(self) -> Segment:
        return self.segments[0]

    def all(self, tag: str) -> list[Segment]:
        return [s for s in self.segments if s.tag == tag]

    def first(self, tag: str) -> Segment | None:
        return next((s for s in self.segments if s.tag == tag), None)

    def children(self, name: str) -> list[Node]:
        return [g for g in self.groups if g.name == name]

    def parties(self) -> list[Segment]:
        """NAD segments of this node, directly or as heads of its ``party`` groups, in order."""
        found = [s for s in self.segments if s.tag == "NAD"] + [g.head for g in self.children("party")]
        return sorted(found, key=lambda s: s.position)


def M(tag: str, max: int = 1) -> Seg:
    return Seg(tag, True, max)


def C(tag: str, max: int = 1) -> Seg:
    return Seg(tag, False, max)


_CONTACT = Group("contact", (M("CTA"), C("COM", 9)), max=9)

D95B: Final = Group(
    "message",
    (
        M("UNH"),
        M("BGM"),
        C("DTM", 9),
        C("RFF", 9),
        C("NAD", 9),
        C("FTX", 9),
        Group("transport", (M("TDT"), C("LOC", 99), C("DTM", 99)), max=9),
        C("GIS", 9),
        Group(
            "equipment",
            (
                M("EQD"),
                C("TSR", 9),
                C("MEA", 9),
                C("DIM", 9),
                C("SEL", 9),
                C("NAD", 9),
                C("GIS", 9),
                Group("temperature", (M("TMP"), C("RNG")), max=9),
                C("LOC", 99),
            ),
            max=9999,
        ),
        C("CNT", 9),
        Group(
            "consignment",
            (
                M("CNI"),
                C("CNT", 9),
                Group(
                    "document",
                    (
                        M("RFF"),
                        C("CNT", 9),
                        C("MOA", 9),
                        C("LOC", 99),
                        C("GIS", 9),
                        C("CUX", 9),
                        C("CPI", 9),
                        Group("oncarriage", (M("TDT"), C("LOC", 9), C("DTM", 9), C("RFF", 9)), max=9),
                        Group("party", (M("NAD"), C("RFF", 9), _CONTACT), max=99),
                        Group("quantity", (M("QTY"), C("FTX", 9)), max=9),
                        Group(
                            "goods",
                            (
                                M("GID"),
                                C("PAC", 9),
                                C("HAN", 9),
                                C("FTX", 99),
                                C("MEA", 99),
                                C("MOA", 9),
                                C("SGP", 99),
                                C("DGS", 9),
                                C("PCI", 9),
                                C("CST"),
                                Group("goodsdoc", (M("GIS"), C("DOC", 9)), max=9),
                                Group("goodsqty", (M("QTY"), C("FTX")), max=9),
                            ),
                            mandatory=True,
                            max=9999,
                        ),
                    ),
                    mandatory=True,
                    max=9999,
                ),
            ),
            max=9999,
        ),
        Group("authentication", (M("AUT"), C("DTM", 9), C("RFF", 9))),
        M("UNT"),
    ),
)

# D.96B: D.95B with the message-level parties and transport as groups (NAD-CTA-COM, TDT-LOC-DTM).
_D96B_ENTRIES = list(D95B.entries)
_D96B_ENTRIES[4] = Group("party", (M("NAD"), _CONTACT), max=9)
D96B: Final = Group("message", tuple(_D96B_ENTRIES))

D21A: Final = Group(
    "message",
    (
        M("UNH"),
        M("BGM"),
        C("DTM", 9),
        C("LOC", 9),
        C("QTY", 9),
        Group("reference", (M("RFF"), C("DTM", 9)), max=99),
        Group("party", (M("NAD"), C("DTM", 9), _CONTACT), max=99),
        C("FTX", 9),
        Group("transport", (M("TDT"), C("LOC", 99), C("DTM", 99)), max=9),
        C("GEI", 9),
        Group(
            "equipment",
            (
                M("EQD"),
                C("TSR", 9),
                C("MEA", 9),
                C("DIM", 9),
                C("SEL", 9),
                C("NAD", 9),
                C("GEI", 9),
                C("LOC", 99),
                Group("temperature", (M("TMP"), C("RNG")), max=9),
            ),
            max=9999,
        ),
        C("CNT", 9),
        Group(
            "consignment",
            (
                M("CNI"),
                C("CNT", 9),
                Group(
                    "document",
                    (
                        M("RFF"),
                        C("CNT", 9),
                        C("MOA", 9),
                        C("LOC", 99),
                        C("GEI", 9),
                        C("CUX", 9),
                        C("CPI", 9),
                        Group(
                            "oncarriage",
                            (M("TDT"), C("LOC", 9), C("DTM", 9), Group("ref", (M("RFF"), C("TSR", 9)), max=9)),
                            max=9,
                        ),
                        Group("party", (M("NAD"), C("DTM", 9), C("RFF", 9), _CONTACT), max=99),
                        Group("quantity", (M("QTY"), C("FTX", 9)), max=9),
                        Group(
                            "goods",
                            (
                                M("GID"),
                                C("PAC", 9),
                                C("HAN", 9),
                                C("FTX", 99),
                                C("MEA", 99),
                                C("MOA", 9),
                                C("SGP", 99),
                                C("DGS", 9),
                                C("PCI", 9),
                                C("CST"),
                                C("LOC", 9),
                                C("TMD", 9),
                                Group("goodsdoc", (M("GEI"), C("DTM", 9), C("DOC", 9), C("PAC"), C("MEA", 9)), max=9),
                                Group("goodsqty", (M("QTY"), C("FTX")), max=9),
                            ),
                            mandatory=True,
                            max=9999,
                        ),
                    ),
                    mandatory=True,
                    max=9999,
                ),
            ),
            max=9999,
        ),
        Group("authentication", (M("AUT"), C("DTM", 9), C("RFF", 9))),
        M("UNT"),
    ),
)

DIRECTORIES: Mapping[str, Group] = MappingProxyType({"D.95B": D95B, "D.96B": D96B, "D.21A": D21A})
_LATER: Final = re.compile(r"D\.(2[1-9]|[3-9][0-9])[AB]")  # D.21A .. D.99B: the 2021+ directories

# The gateway extension (Rule 4): PIA right after GID, nothing else changed.
HS_EXTENSION: Final = C("PIA", 9)


def _extended(group: Group) -> Group:
    entries: list[Seg | Group] = []
    for entry in group.entries:
        entries.append(_extended(entry) if isinstance(entry, Group) else entry)
        if group.name == "goods" and isinstance(entry, Seg) and entry.tag == "GID":
            entries.append(HS_EXTENSION)
    return Group(group.name, tuple(entries), group.mandatory, group.max)


EXTENDED: Mapping[str, Group] = MappingProxyType({name: _extended(table) for name, table in DIRECTORIES.items()})


def table_for(message: Message, *, strict: bool = False) -> tuple[str, Group]:
    """The directory (``D.95B``, ``D.96B`` or ``D.21A`` for every later one) and its CUSCAR table: the directory's
    own (``strict``) or with the gateway's PIA extension (Rule 4)."""
    unh = message.segments[0]
    if message.type != "CUSCAR":
        raise unh.refuse("UNH.type", f"message type {message.type!r} is not accepted (CUSCAR only)")
    if message.agency != "UN":
        raise unh.refuse("UNH.directory", f"controlling agency {message.agency!r} is not UN")
    tables = DIRECTORIES if strict else EXTENDED
    directory = message.directory
    if directory in tables:
        return directory, tables[directory]
    if _LATER.fullmatch(directory):
        return "D.21A", tables["D.21A"]
    raise unh.refuse("UNH.directory", f"directory {directory!r} is not supported (D.95B, D.96B, D.21A or later)")


def match(message: Message, table: Group) -> Node:
    """Match the message's segments against ``table`` (Rule 3) and return the tree."""
    segments = message.segments
    node, index = _group(table, segments, 0)
    if index < len(segments):
        raise _unexpected(segments, index)
    return node


def _unexpected(segments: Sequence[Segment], index: int) -> EdifactInvalid:
    segment = segments[index]
    if index > 0 and segments[index - 1].tag == segment.tag:
        return segment.refuse("STRUCTURE.repeat", f"{segment.tag} repeats more often than the directory allows")
    return segment.refuse("STRUCTURE.unexpected", "segment not allowed here by the directory (order or group)")


def _group(group: Group, segments: Sequence[Segment], index: int) -> tuple[Node, int]:
    own: list[Segment] = []
    children: list[Node] = []
    for entry in group.entries:
        start_tag = entry.trigger if isinstance(entry, Group) else entry.tag
        count = 0
        while index < len(segments) and segments[index].tag == start_tag:
            if count == entry.max:
                break  # the parent may allow it (the next instance of this group); else match() refuses it
            if isinstance(entry, Group):
                child, index = _group(entry, segments, index)
                children.append(child)
            else:
                own.append(segments[index])
                index += 1
            count += 1
        if count == 0 and entry.mandatory:
            if start_tag == "UNT" and index < len(segments):
                raise _unexpected(segments, index)  # the message should end here: the segment is out of place
            at = segments[index] if index < len(segments) else segments[-1]
            raise refuse("STRUCTURE.mandatory", f"mandatory {_name(entry)} is missing", at.position, start_tag)
    return Node(group.name, tuple(own), tuple(children)), index


def _name(entry: Seg | Group) -> str:
    return f"group {entry.name} ({entry.trigger})" if isinstance(entry, Group) else f"segment {entry.tag}"
