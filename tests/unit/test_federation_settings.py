"""``[federation]`` settings: the optional gateway client certificate towards peers (issue 19)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.app.federationsettings import parse_federation_settings
from gateway.core.errors import Unavailable

BASE = {"directory": "f/directory.jws", "operator_key": "f/operator.pub", "witness_key": "g/witness.key"}


def test_client_certificate_paths_are_relative_to_the_config() -> None:
    raw = BASE | {"client_cert": "g/relay-client.pem", "client_key": "g/relay-client.key"}
    settings = parse_federation_settings(raw, Path("/etc/cgw"), "CN-GACC")
    assert settings is not None
    assert settings.client_cert == Path("/etc/cgw/g/relay-client.pem")
    assert settings.client_key == Path("/etc/cgw/g/relay-client.key")


def test_without_a_client_certificate_both_are_none() -> None:
    settings = parse_federation_settings(BASE, Path("/etc/cgw"), "CN-GACC")
    assert settings is not None
    assert (settings.client_cert, settings.client_key) == (None, None)


@pytest.mark.parametrize("raw", [{"client_cert": "g/c.pem"}, {"client_key": "g/c.key"}])
def test_the_certificate_and_its_key_go_together(raw: dict[str, str]) -> None:
    with pytest.raises(Unavailable, match="go together"):
        parse_federation_settings(BASE | raw, Path("/etc/cgw"), "CN-GACC")


def test_a_client_certificate_path_must_be_a_string() -> None:
    with pytest.raises(Unavailable) as caught:
        parse_federation_settings(BASE | {"client_cert": 7, "client_key": "k"}, Path("/etc/cgw"), "CN-GACC")
    assert caught.value.field == "federation.client_cert"
