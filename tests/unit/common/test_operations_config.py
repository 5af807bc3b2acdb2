"""The optional `operations:` key of peer.yaml, orderer.yaml and gateway.yaml.

Method: each node config module's own test file already holds a complete file; the
key is appended to it, read back, and left out (None) or mistyped (an error naming
the file and key).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import pytest

from common.errors import ConfigError
from common.operations import OperationsSettings
from gateway.config import load_gateway_config
from orderer.config import load_orderer_config
from peer.config import load_peer_config
from tests.unit.gateway.test_config import GOOD as GATEWAY_YAML
from tests.unit.orderer.test_config import FULL as ORDERER_YAML
from tests.unit.peer.test_peer_config import MINIMAL as PEER_YAML


class _NodeConfig(Protocol):
    @property
    def operations(self) -> OperationsSettings | None: ...


Loader = Callable[[Path], _NodeConfig]
NODES: list[tuple[str, str, Loader]] = [
    ("peer.yaml", PEER_YAML, load_peer_config),
    ("orderer.yaml", ORDERER_YAML, load_orderer_config),
    ("gateway.yaml", GATEWAY_YAML, load_gateway_config),
]
IDS = [name for name, _, _ in NODES]


@pytest.mark.parametrize(("name", "text", "load"), NODES, ids=IDS)
def test_operations_listen_is_read(
    tmp_path: Path, name: str, text: str, load: Loader
) -> None:
    path = tmp_path / name
    path.write_text(text.rstrip("\n") + "\noperations: {listen: 127.0.0.1:9443}\n")
    assert load(path).operations == OperationsSettings("127.0.0.1:9443")


@pytest.mark.parametrize(("name", "text", "load"), NODES, ids=IDS)
def test_absent_operations_is_disabled(
    tmp_path: Path, name: str, text: str, load: Loader
) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert load(path).operations is None


@pytest.mark.parametrize(("name", "text", "load"), NODES, ids=IDS)
def test_a_bad_operations_address_names_the_key(
    tmp_path: Path, name: str, text: str, load: Loader
) -> None:
    path = tmp_path / name
    path.write_text(text.rstrip("\n") + "\noperations: {listen: 9443}\n")
    with pytest.raises(ConfigError, match=rf"{name}.*operations\.listen"):
        load(path)
