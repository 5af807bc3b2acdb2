"""The scenario chaincode served over real gRPC to the fake peer, in either mode."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from chaincode import ChaincodeServer, ContractChaincode, serve_peer
from tests.unit.chaincode.fakepeer import FakePeer
from tests.unit.chaincode.scenario_contract import ScenarioContract

CHAINCODE_NAMES = ("scenario", "partner")
MODES = ("dial", "server")


@contextlib.asynccontextmanager
async def scenario_network(mode: str) -> AsyncIterator[FakePeer]:
    """A fake peer with the scenario contract registered as "scenario" and "partner".

    dial: the chaincode dials the peer's ChaincodeSupport/Register (Fabric's classic
    mode); server: the peer dials the chaincode's Chaincode/Connect (as a service).
    """
    chaincode = ContractChaincode([ScenarioContract()])
    async with FakePeer() as peer, asyncio.TaskGroup() as group:
        if mode == "dial":
            address = await peer.start_server()
            for name in CHAINCODE_NAMES:
                group.create_task(
                    serve_peer(
                        chaincode, peer_address=address, chaincode_id=f"{name}:1a2b"
                    )
                )
            for name in CHAINCODE_NAMES:
                await peer.wait_registered(name)
            try:
                yield peer
            finally:
                await peer.stop_server()
        else:
            servers = [
                ChaincodeServer(
                    chaincode, chaincode_id=f"{name}:1a2b", address="127.0.0.1:0"
                )
                for name in CHAINCODE_NAMES
            ]
            try:
                for server in servers:
                    await peer.connect(await server.start())
                yield peer
            finally:
                for server in servers:
                    await server.stop(0)
