"""signing.verify_compact with the header its caller already peeked: same answers, same refusals."""

from __future__ import annotations

import pytest
from _testpki import new_key

from gateway.core import signing
from gateway.core.errors import AlgorithmNotAllowed, SignatureRejected


def test_the_peeked_header_gives_the_same_result() -> None:
    key = new_key("ES256")
    token = signing.sign_compact(b"payload", key, headers={"typ": "test"})
    peeked = signing.peek_header(token)
    assert signing.verify_compact(token, key.public_key(), peeked=peeked) == signing.verify_compact(
        token, key.public_key()
    )


def test_a_bad_signature_is_refused_whatever_was_peeked() -> None:
    key = new_key("ES256")
    token = signing.sign_compact(b"payload", key, headers={"typ": "test"})
    header, _payload, signature = token.split(".")
    forged = f"{header}.{signing.sign_compact(b'other', key, headers={}).split('.')[1]}.{signature}"
    with pytest.raises(SignatureRejected):
        signing.verify_compact(forged, key.public_key(), peeked=signing.peek_header(token))
    other = new_key("ES256")
    with pytest.raises(SignatureRejected):
        signing.verify_compact(token, other.public_key(), peeked=signing.peek_header(token))


def test_the_peeked_alg_must_still_match_the_key() -> None:
    key = new_key("ES256")
    token = signing.sign_compact(b"payload", key, headers={})
    with pytest.raises(AlgorithmNotAllowed):
        signing.verify_compact(token, new_key("EdDSA").public_key(), peeked=signing.peek_header(token))
