"""Default `material` and `network` fixtures of this folder: the lifecycle network.

The test_lifecycle_* modules use these as they are: crypto material built once per
test module and a fresh two-hospital `lifecycle_network` for each test. Every other
module here that needs a different network defines its own `material`/`network`,
which takes precedence over these.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.peer.lifecycle_fixtures import Network, lifecycle_network
from tests.support.peer import PeerMaterial, build_peer_material


@pytest.fixture(scope="module")
def material(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> PeerMaterial:
    """The crypto material and genesis block, built once per test module."""
    module = request.module.__name__.rsplit(".", 1)[-1]
    return build_peer_material(tmp_path_factory.mktemp(f"{module}-material"))


@pytest.fixture
async def network(material: PeerMaterial, tmp_path: Path) -> AsyncIterator[Network]:
    """Orderer + peer0 of Hospitals A and B, both joined, fresh for each test."""
    async with lifecycle_network(material, tmp_path) as running:
        yield running
