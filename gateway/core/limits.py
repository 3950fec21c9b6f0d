"""The bounds of payload validation: one value each, read by every path that validates a payload.

A payload is validated by more than one engine (the reference path of :mod:`gateway.core.payloads`, the one-pass
walk of :mod:`gateway.core.jsonwalk` and the Structs :mod:`gateway.core.jsonstructs` derives from it); each of
them reads its bounds here, so a bound changed here changes for all of them at once, and a payload refused by one
is refused by the others with the same detail.

Why: these values were written out twice (in payloads and in jsonwalk, with a comment asking to keep them equal);
two copies drift, and a drift would make the answer depend on which engine happened to read the document.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from google.protobuf.descriptor import FieldDescriptor

# The largest payload accepted. A CUSCAR for one vessel call with thousands of bills of lading converts to a
# few MiB of JSON; parsing costs roughly ten times the input in memory (JSON objects, then protobuf), so this
# keeps one message under ~100 MiB at worst. Adapters' body limits must be at least this plus the envelope.
MAX_PAYLOAD_BYTES = 8 * 1024 * 1024
# The deepest cgw.v1 payload nests 7 JSON levels (manifest > consignments > party > identifiers); 16 leaves
# room for new types and keeps the parser far from Python's recursion limit.
MAX_JSON_DEPTH = 16
# List and text bounds for fields whose annotation does not give one.
DEFAULT_MAX_ITEMS = 1000
DEFAULT_MAX_TEXT_CHARS = 512
# Longest JSON key echoed in an error detail (keys are attacker-chosen).
MAX_KEY_ECHO = 40

# The values each protobuf integer type holds (by C++ type, as descriptors give it); a JSON number outside is
# refused with its path before the protobuf runtime would refuse it without one.
INTEGER_RANGES: Mapping[int, tuple[int, int]] = MappingProxyType(
    {
        FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
        FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
        FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
        FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
    }
)
# An integer written as a JSON string (proto3 JSON writes 64-bit integers so): 20 digits hold every uint64.
DECIMAL = re.compile(r"-?[0-9]{1,20}")
