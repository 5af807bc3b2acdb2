"""The official Python chaincode package (`fabric-chaincode-python` 2.5.4, PyPI) on
our network.

Method: a solo orderer and peer0 of Hospitals A and B start in this event loop. The
asset chaincode of tests/interop/chaincode-python/ (written against the package's
shim API) runs as a service in a child process on a free port, the package's only
mode (`server.start`, with `CHAINCODE_ID` and `CHAINCODE_SERVER_ADDRESS` in its
environment). The test waits until it accepts gRPC connections, then deploys it
through `_lifecycle`: both hospitals install the same ccaas package naming that
address and approve the definition (any one of A or B endorses), then one commit;
each peer dials the server. Hospital A's gateway then serves our Python gateway
client, which drives create, read, update, delete, a range over several query
batches, the creator's MSP id and a refused transaction.

Calls are strictly sequential: the package writes to its stream from parallel tasks
without a lock, so two transactions in flight on one peer's stream can fail with
GRPC_CALL_ERROR_TOO_MANY_OPERATIONS. Its other known gaps are not exercised:
`set_event` is accepted but the event never reaches the peer, and its stub has no
private-data calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from gateway.client import (
    Contract,
    EndorseError,
    Gateway,
    GatewayError,
    identity_from_msp,
    signer_from_msp,
)
from network.ports import free_ports
from peer.node import PeerNode
from tests.integration.gateway.network import running_gateway, write_gateway_yaml
from tests.support.ccaas import (
    OrgInstall,
    ccaas_package,
    deploy_ccaas,
    first_definition,
)
from tests.support.orderer import running_orderer
from tests.support.peer import (
    CHANNEL,
    HOSPITAL_A,
    HOSPITAL_B,
    PeerMaterial,
    build_peer_material,
    running_peer,
    write_peer_yaml,
)

pytestmark = [pytest.mark.interop, pytest.mark.asyncio(loop_scope="module")]

NAME = "pyasset"
LABEL = "pyasset_1.0"
HOSPITALS = (HOSPITAL_A, HOSPITAL_B)
LISTEN_TIMEOUT_S = 20.0
BULK = 230
"""More than two of the peer's query batches, so the shim asks QUERY_STATE_NEXT."""


@dataclass
class PythonNetwork:
    material: PeerMaterial
    gateway_address: str
    log: Path

    def connect(self, mspid: str = HOSPITAL_A, name: str = "dr-lee") -> Gateway:
        msp = self.material.orderer.user(mspid, name).msp_dir
        return Gateway.connect(
            self.gateway_address,
            identity_from_msp(msp, mspid),
            signer_from_msp(msp, mspid),
        )


async def wait_listening(address: str, process: asyncio.subprocess.Process) -> None:
    """Until `address` accepts a gRPC connection; fails if the process exits first."""
    options = [
        ("grpc.initial_reconnect_backoff_ms", 20),
        ("grpc.min_reconnect_backoff_ms", 20),
        ("grpc.max_reconnect_backoff_ms", 100),
    ]
    async with grpc.aio.insecure_channel(address, options=options) as channel:
        ready = asyncio.ensure_future(channel.channel_ready())
        exited = asyncio.ensure_future(process.wait())
        done, _ = await asyncio.wait(
            {ready, exited},
            timeout=LISTEN_TIMEOUT_S,
            return_when=asyncio.FIRST_COMPLETED,
        )
        ready.cancel()
        exited.cancel()
    assert ready in done, (
        f"the Python chaincode did not listen on {address} "
        f"(exit code {process.returncode})"
    )


@contextlib.asynccontextmanager
async def chaincode_server(
    script: Path, address: str, package_id: str, log: Path
) -> AsyncIterator[None]:
    """The fabric-chaincode-python server listening on `address` until the block ends."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CHAINCODE_", "CORE_"))
    }
    env |= {"CHAINCODE_ID": package_id, "CHAINCODE_SERVER_ADDRESS": address}
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            stdout=output,
            stderr=output,
            env=env,
        )
    try:
        await wait_listening(address, process)
        yield
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), 10)


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> PeerMaterial:
    return build_peer_material(tmp_path_factory.mktemp("python-chaincode-material"))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def network(
    material: PeerMaterial,
    python_chaincode: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[PythonNetwork]:
    folder = tmp_path_factory.mktemp("python-chaincode")
    server_address = f"127.0.0.1:{free_ports(1)[0]}"
    package = ccaas_package(server_address, folder / "package", LABEL)
    log = folder / "chaincode.log"
    async with contextlib.AsyncExitStack() as stack:
        _, orderer = await stack.enter_async_context(
            running_orderer(material.orderer, folder / "orderer")
        )
        await stack.enter_async_context(
            chaincode_server(python_chaincode, server_address, package[1], log)
        )
        nodes: list[PeerNode] = []
        peers: dict[str, str] = {}
        for mspid in HOSPITALS:
            config = write_peer_yaml(
                folder / mspid / "peer.yaml",
                material,
                mspid,
                storage=folder / mspid / "data",
                orderer_address=orderer["grpc"],
            )
            node, addresses = await stack.enter_async_context(running_peer(config))
            await node.join(material.genesis)
            nodes.append(node)
            peers[mspid] = addresses["grpc"]
        orgs = [OrgInstall(mspid, peers[mspid], package) for mspid in HOSPITALS]
        await deploy_ccaas(
            material, orderer["grpc"], orgs, first_definition(NAME), nodes
        )
        gateway_config = write_gateway_yaml(
            folder / "gateway" / "gateway.yaml",
            material,
            peers=[(peers[mspid], mspid) for mspid in HOSPITALS],
            orderer_address=orderer["grpc"],
        )
        _, gateway_address = await stack.enter_async_context(
            running_gateway(gateway_config)
        )
        yield PythonNetwork(material, gateway_address, log)


@pytest_asyncio.fixture(loop_scope="module")
async def contract(network: PythonNetwork) -> AsyncIterator[Contract]:
    async with network.connect() as gateway:
        yield gateway.network(CHANNEL).contract(NAME)


def asset(asset_id: str, color: str, owner: str) -> dict[str, str]:
    return {"id": asset_id, "color": color, "owner": owner}


async def test_create_read_update_delete(contract: Contract) -> None:
    created = await contract.submit("CreateAsset", "p1", "blue", "alice")
    assert json.loads(created) == asset("p1", "blue", "alice")
    assert json.loads(await contract.evaluate("ReadAsset", "p1")) == asset(
        "p1", "blue", "alice"
    )
    await contract.submit("UpdateAsset", "p1", "red", "bob")
    assert json.loads(await contract.evaluate("ReadAsset", "p1")) == asset(
        "p1", "red", "bob"
    )
    assert await contract.submit("DeleteAsset", "p1") == b""
    with pytest.raises(GatewayError) as missing:
        await contract.evaluate("ReadAsset", "p1")
    assert "chaincode response 500, asset p1 does not exist" in str(missing.value)


async def test_a_refused_transaction_is_a_clear_gateway_error(
    contract: Contract,
) -> None:
    with pytest.raises(GatewayError) as evaluated:
        await contract.evaluate("Fail", "no access to this record")
    assert evaluated.value.code == grpc.StatusCode.UNKNOWN
    assert "chaincode response 500, no access to this record" in str(evaluated.value)

    await contract.submit("CreateAsset", "p2", "green", "carol")
    with pytest.raises(EndorseError) as endorsed:
        await contract.submit("CreateAsset", "p2", "green", "carol")
    assert endorsed.value.code == grpc.StatusCode.ABORTED
    [detail] = endorsed.value.details
    assert detail.mspid in HOSPITALS
    assert "chaincode response 500, asset p2 already exists" in detail.message


async def test_a_range_over_several_query_batches(contract: Contract) -> None:
    assert await contract.submit("Fill", "bulk", str(BULK)) == str(BULK).encode()
    keys = json.loads(await contract.evaluate("AssetsInRange", "bulk", "bulk9"))
    assert keys == [f"bulk{number:04d}" for number in range(BULK)]
    some = json.loads(await contract.evaluate("AssetsInRange", "bulk0100", "bulk0103"))
    assert some == ["bulk0100", "bulk0101", "bulk0102"]


async def test_the_creator_msp_id_reaches_the_chaincode(
    network: PythonNetwork,
) -> None:
    for mspid, name in ((HOSPITAL_A, "dr-lee"), (HOSPITAL_B, "dr-garcia")):
        async with network.connect(mspid, name) as gateway:
            contract = gateway.network(CHANNEL).contract(NAME)
            who = json.loads(await contract.evaluate("WhoAmI"))
        assert who == {"mspid": mspid, "channel": CHANNEL, "has_certificate": True}
