"""Forward and recall rules that are not access decisions (those are Cedar's: policies/tlp.cedar, programs.cedar).

Rule 1: a forward is the forwarder's OWN signed envelope over the ORIGINAL payload bytes: same message type,
        TLP label, programme and payload digest as the original; only ``id``, ``from``, ``to`` and the times
        are the forwarder's. The original's signed evidence is delivered beside it, unchanged.
Rule 2: an ``intel.recall.v1`` names the message it withdraws in its payload (original sender + id); the
        recall's header ``program`` and ``tlp`` are the recall's own.
Rule 3: the lane of a payload is its ``origin_port`` and ``destination_port`` (UN/LOCODE, current codes),
        written ``"CNYTN-NLRTM"``; a payload without both has no lane (``""``).
Rule 4: the copies of a message form a tree: the root original, and every forward below the copy it forwards
        (its PARENT: the message the forwarder received and named). A copy is DOWNSTREAM of X when X is on its
        path to the root (X itself included). A recall by member M naming X withdraws
        (a) X and everything downstream of X when M sent X (only the root's originator withdraws the root);
        (b) otherwise only the copies M itself sent downstream of X, and everything downstream of those;
        (c) the whole tree from the root when the recall was permitted by :data:`HOME_RECALL_POLICY` (the home
            customs administration withdraws anything that passed through its gateway).
        A forward stored before parents were recorded counts as a child of the root (it withdraws less, never
        more).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

from gateway.core.envelope import parse_header
from gateway.core.errors import HeaderInvalid, Internal, Invalid
from gateway.core.model import Header
from gateway.core.payloads import ValidatedPayload
from gateway.core.programs import lane_key
from gateway.core.signing import parse_json_object

RECALL_TYPE = "intel.recall.v1"
# The Cedar policy (policies/programs.cedar) whose permit lets a recall withdraw the whole tree (Rule 4c).
HOME_RECALL_POLICY = "home-customs-recalls"

MessageKey = tuple[str, str]  # (sender, message_id)


def stored_header(jws: str) -> Header:
    """The header of evidence this gateway verified when it accepted it (stored, so trusted as parsed)."""
    try:
        segment = jws.split(".")[1]
        signed = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (IndexError, binascii.Error, ValueError):
        raise Internal("stored evidence is not a JWS compact string") from None
    return parse_header(parse_json_object(signed, error=HeaderInvalid))


def check_forward(original: Header, forward: Header) -> None:
    """Rule 1: the forward repeats what the original said about itself; ``Invalid`` naming the header field."""
    for field, mine, theirs in (
        ("type", forward.type, original.type),
        ("tlp", forward.tlp, original.tlp),
        ("program", forward.program, original.program),
        ("payload.sha256", forward.payload.sha256, original.payload.sha256),
    ):
        if mine != theirs:
            raise Invalid(f"a forward keeps the original's {field} ({theirs!s})", field=field)


def lane_of(payload: ValidatedPayload) -> str:
    """Rule 3."""
    ports = {port.role: port.code for port in payload.ports}
    origin, destination = ports.get("origin_port"), ports.get("destination_port")
    return lane_key(origin, destination) if origin and destination else ""


def recall_reaches_root(policy_ids: Sequence[str]) -> bool:
    """Rule 4c: the recall's permit was determined by the home administration's recall policy."""
    return HOME_RECALL_POLICY in policy_ids


def recalled_copies(
    root: MessageKey,
    forwards: Sequence[tuple[MessageKey, MessageKey]],
    named: MessageKey,
    recaller: str,
    *,
    whole_tree: bool = False,
) -> list[MessageKey]:
    """Rule 4: the copies a recall withdraws, in acceptance order.

    ``forwards`` are the root's forwards in acceptance order, each as (forward, parent), so a parent always
    comes before its children; ``named`` is the message the recall names (in the tree)."""
    top = root if whole_tree else named
    below = {top}  # downstream of what the recall names
    taken = {top} if whole_tree or top[0] == recaller else set()
    for key, parent in forwards:
        if parent in below:
            below.add(key)
            if parent in taken or key[0] == recaller:
                taken.add(key)
    return [key for key in (root, *(key for key, _ in forwards)) if key in taken]
