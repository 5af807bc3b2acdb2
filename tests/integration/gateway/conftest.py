"""One network per module: crypto material, orderer, two peers and Hospital A's gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.integration.gateway.network import GatewayNetwork, gateway_network
from tests.support.peer import PeerMaterial, build_peer_material


@pytest.fixture(scope="session")
def material(tmp_path_factory: pytest.TempPathFactory) -> PeerMaterial:
    return build_peer_material(tmp_path_factory.mktemp("gateway-material"))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def network(
    material: PeerMaterial, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[GatewayNetwork]:
    async with gateway_network(material, tmp_path_factory.mktemp("network")) as net:
        yield net
