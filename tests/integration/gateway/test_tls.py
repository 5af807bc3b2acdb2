"""The same flows with TLS on every link: client → gateway, gateway → peers and orderer.

Peers are trusted through their organisations' TLS CAs in gateway.yaml, the orderer
through the TLS CA its organisation publishes in the channel configuration.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.integration.gateway.network import GatewayNetwork, gateway_network
from tests.support.peer import CHANNEL, PeerMaterial

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def network(
    material: PeerMaterial, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[GatewayNetwork]:
    folder = tmp_path_factory.mktemp("tls-network")
    async with gateway_network(material, folder, tls=True) as net:
        yield net


async def test_submit_evaluate_and_events_over_tls(network: GatewayNetwork) -> None:
    async with network.connect() as gateway:
        contract = gateway.network(CHANNEL).contract("asset")
        submitted = await contract.submit_async(
            "CreateAsset", "tls-1", "blue", "5", "Tomoko", "300"
        )
        status = await submitted.status()
        assert status.successful
        read = json.loads(await contract.evaluate("ReadAsset", "tls-1"))
        assert read["Owner"] == "Tomoko"
        async for block in gateway.network(CHANNEL).block_events(
            start_block=status.block_number
        ):
            assert block.header.number == status.block_number
            break
