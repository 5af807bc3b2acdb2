"""Shared pieces of the lifecycle tests: two hospitals' peers and an orderer, a contract.

`lifecycle_network` starts a solo orderer and peer0 of Hospitals A and B in process
(no chaincode in their peer.yaml) joined to medical-records; `records_package` packages
a small Python contract whose `Version` answers the version it was packaged as.

The fixtures every lifecycle test module uses: `material`, the crypto material and
genesis block, built once per module, and `network`, a fresh `lifecycle_network` for
each test. A module takes them by naming them at module level
(`network = lifecycle_fixtures.network`).
"""

from __future__ import annotations

import asyncio
import contextlib
import textwrap
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from common.msp import SigningIdentity
from common.protoutil import parse_proposal_response, transaction_filter
from network.cli import main
from network.lifecycle_client import Definition, Target, approve, commit, install
from peer.admin import AdminTarget, join_channel
from peer.lifecycle.package import build_package
from peer.node import PeerNode
from protos.common import common_pb2
from protos.peer import transaction_pb2
from tests.support.orderer import broadcast, running_orderer
from tests.support.orderer import open_channel as open_orderer_channel
from tests.support.peer import (
    CHANNEL,
    HOSPITAL_A,
    HOSPITAL_B,
    PeerMaterial,
    build_peer_material,
    open_channel,
    process_proposal,
    running_peer,
    signed_proposal,
    transaction,
    wait_for_height,
    write_peer_yaml,
)

RECORDS = "records"
CONTRACT = """
from chaincode.contract import Context, Contract, query, transaction


class Records(Contract):
    def __init__(self) -> None:
        super().__init__("Records")

    @transaction
    async def Put(self, ctx: Context, key: str, value: str) -> None:
        await ctx.stub.put_state(key, value.encode())

    @query
    async def Get(self, ctx: Context, key: str) -> str:
        return (await ctx.stub.get_state(key)).decode()

    @query
    async def Version(self, ctx: Context) -> str:
        return "{version}"


contracts = [Records()]
"""


@dataclass
class Network:
    material: PeerMaterial
    orderer: Target
    peer_a: Target
    peer_b: Target
    nodes: tuple[PeerNode, PeerNode]
    folder: Path

    def admin(self, mspid: str) -> SigningIdentity:
        return self.material.user(mspid, "Admin")

    def height(self) -> int:
        return max(node.channels.require(CHANNEL).height() for node in self.nodes)

    async def synced(self, height: int | None = None) -> None:
        """Wait until both peers hold `height` blocks (default: the taller one's)."""
        target = self.height() if height is None else height
        for node in self.nodes:
            await wait_for_height(node, target)


@contextlib.asynccontextmanager
async def lifecycle_network(
    material: PeerMaterial, tmp_path: Path
) -> AsyncIterator[Network]:
    """Orderer + peer0 of Hospitals A and B (no chaincode configured), both joined."""
    async with running_orderer(material.orderer, tmp_path / "orderer") as (_, orderer):
        configs = [
            write_peer_yaml(
                tmp_path / name / "peer.yaml",
                material,
                mspid,
                storage=tmp_path / name / "data",
                orderer_address=orderer["grpc"],
                extra={"chaincodes": {"startup_timeout": "20s"}},
            )
            for name, mspid in (("a", HOSPITAL_A), ("b", HOSPITAL_B))
        ]
        async with (
            running_peer(configs[0]) as (node_a, addresses_a),
            running_peer(configs[1]) as (node_b, addresses_b),
        ):
            for mspid, addresses in (
                (HOSPITAL_A, addresses_a),
                (HOSPITAL_B, addresses_b),
            ):
                await join_channel(
                    AdminTarget(address=addresses["grpc"]),
                    signer=material.user(mspid, "Admin"),
                    genesis_block=material.genesis.SerializeToString(),
                )
            yield Network(
                material,
                Target(address=orderer["grpc"]),
                Target(address=addresses_a["grpc"]),
                Target(address=addresses_b["grpc"]),
                (node_a, node_b),
                tmp_path,
            )


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


def records_package(folder: Path, version: str) -> tuple[bytes, str]:
    """A Python package of the records contract answering `Version` with `version`."""
    source = folder / f"records-{version}" / RECORDS
    source.mkdir(parents=True)
    (source / "__init__.py").write_text(
        textwrap.dedent(CONTRACT).format(version=version)
    )
    package, _ = build_package(label=f"records_{version}", kind="python", source=source)
    return package, f"records_{version}"


async def install_on_both(network: Network, package: bytes) -> str:
    result_a = await install(network.peer_a, network.admin(HOSPITAL_A), package)
    result_b = await install(network.peer_b, network.admin(HOSPITAL_B), package)
    assert result_a.package_id == result_b.package_id
    return result_a.package_id


async def approve_both(
    network: Network, definition: Definition, package_id: str
) -> None:
    for mspid, peer in ((HOSPITAL_A, network.peer_a), (HOSPITAL_B, network.peer_b)):
        await approve(
            peer,
            network.orderer,
            network.admin(mspid),
            channel=CHANNEL,
            definition=definition,
            package_id=package_id,
        )
    await network.synced()


async def commit_both(
    network: Network, definition: Definition, *, mspid: str = HOSPITAL_A
) -> None:
    """Commit as `mspid`'s admin, endorsed by both peers; wait until both have it."""
    await commit(
        [network.peer_a, network.peer_b],
        network.orderer,
        network.admin(mspid),
        channel=CHANNEL,
        definition=definition,
    )
    await network.synced()


async def invoke(
    network: Network, args: list[str], *, chaincode: str = RECORDS
) -> None:
    """Endorse on both peers, order, and check that both committed it VALID."""
    envelope = await endorse(network, args, chaincode=chaincode)
    assert await order(network, envelope) == transaction_pb2.VALID


async def endorse(
    network: Network,
    args: list[str],
    *,
    chaincode: str = RECORDS,
    peers: Sequence[Target] | None = None,
) -> bytes:
    """The signed transaction of a proposal endorsed by `peers` (default: both)."""
    client = network.material.user(HOSPITAL_A, "dr-lee")
    signed, proposal = signed_proposal(client, args, chaincode=chaincode)
    responses = []
    for peer in peers or (network.peer_a, network.peer_b):
        async with open_channel(peer.address) as channel:
            response = await process_proposal(channel, signed)
        assert response.response.status == 200, response.response.message
        responses.append(response)
    return transaction(client, proposal, responses)


async def order(network: Network, envelope: bytes) -> int:
    """Broadcast one transaction; its validation code once both peers committed it."""
    height = network.height()
    async with open_orderer_channel(network.orderer.address) as channel:
        [answer] = await broadcast(channel, [envelope])
    assert answer.status == common_pb2.SUCCESS, answer.info
    await network.synced(height + 1)
    codes = [
        transaction_filter(
            node.channels.require(CHANNEL).ledger.block_store.block_by_number(height)
        )
        for node in network.nodes
    ]
    assert codes[0] == codes[1], codes
    [code] = codes[0]
    return code


async def evaluate(
    peer: Target, network: Network, args: list[str], *, chaincode: str = RECORDS
) -> str:
    client = network.material.user(HOSPITAL_A, "dr-lee")
    signed, _ = signed_proposal(client, args, chaincode=chaincode)
    async with open_channel(peer.address) as channel:
        response = await process_proposal(channel, signed)
    assert response.response.status == 200, response.response.message
    parse_proposal_response(response)
    return response.response.payload.decode()


async def medledger(
    capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    """Run the console command in a worker thread; (status, stdout, stderr)."""
    capsys.readouterr()
    status = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return status, out, err
