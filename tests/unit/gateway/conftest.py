"""Shared material for gateway unit tests: the example consortium and its channel config."""

from __future__ import annotations

import pytest

from common.channelconfig import ChannelConfig
from tests.support.peer import PeerMaterial, build_peer_material


@pytest.fixture(scope="session")
def material(tmp_path_factory: pytest.TempPathFactory) -> PeerMaterial:
    return build_peer_material(tmp_path_factory.mktemp("gateway-unit-material"))


@pytest.fixture(scope="session")
def channel_config(material: PeerMaterial) -> ChannelConfig:
    return ChannelConfig.from_block(material.genesis)
