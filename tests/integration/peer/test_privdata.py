"""Private data between three hospitals' peers and a solo orderer, over real gRPC.

Method: peer0 of Hospitals A, B and C (fixed local ports, each knowing the others
through `gossip.peers`) and a solo orderer start in process and join medical-records.
A `_lifecycle` transaction defines the `pvt` chaincode (any member peer endorses)
with three collections of A and B: `AB` (requiredPeerCount 1), `AB2` (2) and
`ABopt` (0, at most one peer); each peer launches the tiny contract of
`privdata_contract`. A client of A sends the private value as transient data.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from common.channelconfig import ChannelConfig
from common.policies import from_string
from peer.ledger.ledger import ChannelLedger
from peer.ledger.pvtdata import list_missing
from peer.lifecycle import ChaincodeDefinition
from peer.lifecycle.definitions import signature_endorsement_policy
from peer.node import PeerNode
from peer.privdata.messages import sign_pull
from protos.common import common_pb2, policies_pb2
from protos.medledger.peer import privdata_pb2, privdata_pb2_grpc
from protos.peer import collection_pb2, proposal_response_pb2
from tests.support.orderer import broadcast, running_orderer
from tests.support.orderer import open_channel as open_orderer_channel
from tests.support.peer import (
    CHANNEL,
    HOSPITAL_A,
    HOSPITAL_B,
    HOSPITAL_C,
    TIMEOUT_S,
    PeerMaterial,
    build_peer_material,
    definition_envelope,
    open_channel,
    process_proposal,
    running_peer,
    signed_proposal,
    transaction,
    wait_for_height,
    write_peer_yaml,
)

PVT = "pvt"
PACKAGE_ID = "pvt_1.0:" + hashlib.sha256(b"private data test contract").hexdigest()
MARKER = b"MARKER-diagnosis-7f3c2a91e4"
HOSPITALS = (HOSPITAL_A, HOSPITAL_B, HOSPITAL_C)
SERVE = [
    sys.executable,
    "-m",
    "chaincode",
    "serve",
    "--module",
    "tests.integration.peer.privdata_contract",
]


def _collection(
    name: str, *, required: int, maximum: int
) -> collection_pb2.CollectionConfig:
    policy = from_string(f"OR('{HOSPITAL_A}.member', '{HOSPITAL_B}.member')")
    config = collection_pb2.CollectionConfig()
    static = config.static_collection_config
    static.name = name
    static.member_orgs_policy.signature_policy.CopyFrom(policy)
    static.required_peer_count = required
    static.maximum_peer_count = maximum
    return config


def pvt_definition() -> ChaincodeDefinition:
    package = collection_pb2.CollectionConfigPackage(
        config=[
            _collection("AB", required=1, maximum=1),
            _collection("AB2", required=2, maximum=2),
            _collection("ABopt", required=0, maximum=1),
        ]
    )
    anyone: policies_pb2.SignaturePolicyEnvelope = from_string(
        " ".join(["OR(", ", ".join(f"'{mspid}.peer'" for mspid in HOSPITALS), ")"])
    )
    return ChaincodeDefinition(
        name=PVT,
        version="1.0",
        sequence=1,
        endorsement_policy=signature_endorsement_policy(anyone),
        collections=package.SerializeToString(),
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ThreePeers:
    material: PeerMaterial
    folder: Path
    orderer: str
    configs: dict[str, Path]
    addresses: dict[str, str]
    nodes: dict[str, PeerNode] = field(default_factory=dict)
    stacks: dict[str, contextlib.AsyncExitStack] = field(default_factory=dict)

    def storage(self, mspid: str) -> Path:
        return self.folder / mspid / "data"

    async def start(self, mspid: str) -> PeerNode:
        stack = contextlib.AsyncExitStack()
        node, _ = await stack.enter_async_context(running_peer(self.configs[mspid]))
        self.nodes[mspid], self.stacks[mspid] = node, stack
        return node

    async def stop(self, mspid: str) -> None:
        del self.nodes[mspid]
        await self.stacks.pop(mspid).aclose()

    def ledger(self, mspid: str) -> ChannelLedger:
        return self.nodes[mspid].channels.require(CHANNEL).ledger

    async def order(self, envelope: bytes, *, on: tuple[str, ...] = HOSPITALS) -> None:
        """Broadcast one transaction; wait until the peers `on` committed it."""
        heights = [self.nodes[m].channels.require(CHANNEL).height() for m in on]
        async with open_orderer_channel(self.orderer) as channel:
            [answer] = await broadcast(channel, [envelope])
        assert answer.status == common_pb2.SUCCESS, answer.info
        for mspid in on:
            await wait_for_height(self.nodes[mspid], max(heights) + 1)

    async def endorse_on_a(
        self, collection: str, key: str, value: bytes
    ) -> tuple[proposal_response_pb2.ProposalResponse, bytes]:
        """A's endorsement of PutPrivate(collection, key) with `value` as transient data."""
        client = self.material.user(HOSPITAL_A, "dr-lee")
        signed, proposal = signed_proposal(
            client,
            ["PutPrivate", collection, key],
            chaincode=PVT,
            transient={"value": value},
        )
        async with open_channel(self.addresses[HOSPITAL_A]) as channel:
            response = await process_proposal(channel, signed)
        if response.response.status != 200:
            return response, b""
        return response, transaction(client, proposal, [response])


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> PeerMaterial:
    return build_peer_material(tmp_path_factory.mktemp("privdata-material"))


@pytest.fixture
async def network(material: PeerMaterial, tmp_path: Path) -> AsyncIterator[ThreePeers]:
    async with running_orderer(material.orderer, tmp_path / "orderer") as (_, orderer):
        addresses = {mspid: f"127.0.0.1:{_free_port()}" for mspid in HOSPITALS}
        genesis = ChannelConfig.from_block(material.genesis)
        anchors = {
            str(anchor): addresses[mspid]
            for mspid in HOSPITALS
            for anchor in genesis.application_orgs[mspid].anchor_peers
        }
        configs = {
            mspid: write_peer_yaml(
                tmp_path / mspid / "peer.yaml",
                material,
                mspid,
                storage=tmp_path / mspid / "data",
                orderer_address=orderer["grpc"],
                chaincodes={PVT: {"package_id": PACKAGE_ID, "launch": SERVE}},
                extra={
                    "listen": addresses[mspid],
                    "gossip": {
                        "peers": [
                            {"address": address, "mspid": other}
                            for other, address in addresses.items()
                            if other != mspid
                        ],
                        "address_overrides": anchors,
                        "push_timeout": "5s",
                        "pull_timeout": "2s",
                        "pull_attempts": 1,
                        "reconcile_interval": "100ms",
                    },
                },
            )
            for mspid in HOSPITALS
        }
        peers = ThreePeers(material, tmp_path, orderer["grpc"], configs, addresses)
        try:
            for mspid in HOSPITALS:
                node = await peers.start(mspid)
                await node.join(material.genesis)
            await peers.order(
                definition_envelope(
                    material, pvt_definition(), [HOSPITAL_A, HOSPITAL_B]
                )
            )
            yield peers
        finally:
            for mspid in list(peers.stacks):
                await peers.stop(mspid)


def _files(folder: Path) -> Iterator[Path]:
    return (path for path in sorted(folder.rglob("*")) if path.is_file())


def _holds(folder: Path, marker: bytes) -> list[Path]:
    return [path for path in _files(folder) if marker in path.read_bytes()]


async def test_marker_reaches_members_and_never_a_non_member(
    network: ThreePeers,
) -> None:
    """A's endorsement pushes to B; after the commit A and B hold the plaintext on disk,
        C and the orderer hold only the hash (every file scanned byte for byte); A answers
    B's pull of the write set and gives C's nothing."""
    response, envelope = await network.endorse_on_a("AB", "record-1", MARKER)
    assert response.response.status == 200, response.response.message
    await network.order(envelope)

    digest = hashlib.sha256(MARKER).digest()
    for mspid in (HOSPITAL_A, HOSPITAL_B):
        ledger = network.ledger(mspid)
        stored = ledger.get_private_data(PVT, "AB", "record-1")
        assert stored is not None, mspid
        assert stored.value == MARKER, mspid
        assert _holds(network.storage(mspid), MARKER), mspid
    ledger_c = network.ledger(HOSPITAL_C)
    assert ledger_c.get_private_data(PVT, "AB", "record-1") is None
    assert ledger_c.get_private_data_hash(PVT, "AB", "record-1") == digest
    assert list(_files(network.storage(HOSPITAL_C)))
    assert _holds(network.storage(HOSPITAL_C), MARKER) == []
    assert _holds(network.folder / "orderer", MARKER) == []

    height = network.nodes[HOSPITAL_A].channels.require(CHANNEL).height()
    digest_ab = privdata_pb2.PrivateDataDigest(
        block_num=height - 1, tx_num=0, namespace=PVT, collection="AB"
    )
    answers = {}
    for mspid in (HOSPITAL_B, HOSPITAL_C):
        request = sign_pull(
            network.material.peer_identity(mspid),
            channel_id=CHANNEL,
            digests=[digest_ab],
        )
        async with open_channel(network.addresses[HOSPITAL_A]) as channel:
            stub = privdata_pb2_grpc.PrivateDataServiceStub(channel)
            answers[mspid] = await stub.Pull(request, timeout=TIMEOUT_S)
    assert [e.rwset.count(MARKER) for e in answers[HOSPITAL_B].elements] == [1]
    assert list(answers[HOSPITAL_C].elements) == []


async def test_unmet_required_peer_count_fails_the_endorsement(
    network: ThreePeers,
) -> None:
    """AB2 needs two other member peers; only B is known: the endorsement fails and
    names the collection."""
    response, _ = await network.endorse_on_a("AB2", "record-2", b"needs two peers")
    assert response.response.status == 500
    assert "collection AB2" in response.response.message
    assert not response.HasField("endorsement")


async def test_stopped_member_gets_the_data_by_reconciliation(
    network: ThreePeers,
) -> None:
    """B is down while A writes (requiredPeerCount 0) and A is down while B catches up,
    so B commits without the plaintext and records it missing; once A is back, B's
    reconciliation job fetches it."""
    await network.stop(HOSPITAL_B)
    response, envelope = await network.endorse_on_a("ABopt", "record-3", MARKER)
    assert response.response.status == 200, response.response.message
    await network.order(envelope, on=(HOSPITAL_A, HOSPITAL_C))
    height = network.nodes[HOSPITAL_A].channels.require(CHANNEL).height()

    await network.stop(HOSPITAL_A)
    node_b = await network.start(HOSPITAL_B)
    await wait_for_height(node_b, height)
    ledger_b = network.ledger(HOSPITAL_B)
    assert ledger_b.get_private_data(PVT, "ABopt", "record-3") is None
    missing = list_missing(ledger_b.reader(), 10)
    assert [(m.block_num, m.ns, m.coll) for m in missing] == [
        (height - 1, PVT, "ABopt")
    ]

    await network.start(HOSPITAL_A)
    async with asyncio.timeout(TIMEOUT_S):
        await node_b.reconciler.wait_for(
            lambda: ledger_b.get_private_data(PVT, "ABopt", "record-3") is not None
        )
    stored = ledger_b.get_private_data(PVT, "ABopt", "record-3")
    assert stored is not None
    assert stored.value == MARKER
    assert list_missing(ledger_b.reader(), 10) == []
