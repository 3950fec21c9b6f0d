"""``gateway.core.forwarding.recalled_copies``: what a recall withdraws in a tree of forwards (issue 17 item 6)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.core.forwarding import MessageKey, recall_reaches_root, recalled_copies

MEMBERS = ("A", "B", "C", "D")


@st.composite
def trees(draw: st.DrawFn) -> tuple[MessageKey, list[tuple[MessageKey, MessageKey]]]:
    """A root sent by A and forwards in acceptance order, each below an earlier copy."""
    root: MessageKey = ("A", "m0")
    keys = [root]
    forwards: list[tuple[MessageKey, MessageKey]] = []
    for n in range(1, draw(st.integers(0, 8)) + 1):
        key = (draw(st.sampled_from(MEMBERS)), f"m{n}")
        forwards.append((key, draw(st.sampled_from(keys))))
        keys.append(key)
    return root, forwards


def downstream(forwards: list[tuple[MessageKey, MessageKey]], top: MessageKey) -> set[MessageKey]:
    below = {top}
    for key, parent in forwards:
        if parent in below:
            below.add(key)
    return below


def test_the_chain_of_the_issue() -> None:
    root, by_b, by_c = ("A", "x"), ("B", "f1"), ("C", "f2")
    chain = [(by_b, root), (by_c, by_b)]
    assert recalled_copies(root, chain, by_b, "B") == [by_b, by_c]
    assert recalled_copies(root, chain, root, "B") == [by_b, by_c]  # naming the root: still only B's part
    assert recalled_copies(root, chain, root, "A") == [root, by_b, by_c]
    assert recalled_copies(root, chain, by_c, "C") == [by_c]
    assert recalled_copies(root, chain, by_c, "H", whole_tree=True) == [root, by_b, by_c]
    assert recall_reaches_root(("home-customs-recalls", "originator-recalls"))
    assert not recall_reaches_root(("originator-recalls",))


@given(trees(), st.data())
def test_a_recall_withdraws_only_downstream_of_what_the_recaller_sent(
    tree: tuple[MessageKey, list[tuple[MessageKey, MessageKey]]], data: st.DataObject
) -> None:
    root, forwards = tree
    parents = dict(forwards)
    named = data.draw(st.sampled_from([root, *parents]))
    recaller = data.draw(st.sampled_from(MEMBERS))
    withdrawn = recalled_copies(root, forwards, named, recaller)
    assert set(withdrawn) <= downstream(forwards, named)
    assert (root in withdrawn) == (named == root and recaller == "A")  # only the originator reaches the root
    for key in withdrawn:  # each is the recaller's own, or below one of the recaller's own
        assert key[0] == recaller or parents[key] in withdrawn
    order = [root, *parents]
    assert withdrawn == sorted(withdrawn, key=order.index)
    # and nothing the recaller sent below the named copy is left out
    assert {k for k in downstream(forwards, named) if k[0] == recaller} <= set(withdrawn)
    assert recalled_copies(root, forwards, named, recaller, whole_tree=True) == order
