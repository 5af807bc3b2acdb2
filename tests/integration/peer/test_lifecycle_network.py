"""The chaincode lifecycle on two hospitals' peers and a solo orderer, over real gRPC.

Method: an orderer and peer0 of Hospitals A and B start in process (no chaincode in
their peer.yaml) and join medical-records (members A, B and C; LifecycleEndorsement
is MAJORITY Endorsement). Each hospital's admin drives the lifecycle through
`network.lifecycle_client`: package a Python contract, install it, approve, check
readiness, commit endorsed by both peers; the peers then launch the installed package
and the chaincode answers. Refusals (sequence, approvals, admins) are checked on
their own network.
"""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from common.msp import SigningIdentity
from common.protoutil import parse_proposal_response
from network.lifecycle_client import (
    Definition,
    LifecycleCommandError,
    Target,
    approve,
    check_commit_readiness,
    commit,
    install,
    query_approved,
    query_committed,
    query_installed,
)
from peer.admin import AdminTarget, join_channel
from peer.lifecycle.package import build_package
from peer.node import PeerNode
from protos.common import common_pb2
from protos.peer.lifecycle import lifecycle_pb2 as lb
from tests.support.orderer import broadcast, running_orderer
from tests.support.orderer import open_channel as open_orderer_channel
from tests.support.peer import (
    CHANNEL,
    HOSPITAL_A,
    HOSPITAL_B,
    HOSPITAL_C,
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


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> PeerMaterial:
    return build_peer_material(tmp_path_factory.mktemp("lifecycle-material"))


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


@pytest.fixture
async def network(material: PeerMaterial, tmp_path: Path) -> AsyncIterator[Network]:
    """Orderer + peer0 of Hospitals A and B, both joined to medical-records."""
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


async def invoke(network: Network, args: list[str]) -> None:
    """Endorse on both peers, order, and wait until both committed it VALID."""
    client = network.material.user(HOSPITAL_A, "dr-lee")
    signed, proposal = signed_proposal(client, args, chaincode=RECORDS)
    height = network.height()
    responses = []
    for peer in (network.peer_a, network.peer_b):
        async with open_channel(peer.address) as channel:
            response = await process_proposal(channel, signed)
        assert response.response.status == 200, response.response.message
        responses.append(response)
    async with open_orderer_channel(network.orderer.address) as channel:
        [answer] = await broadcast(channel, [transaction(client, proposal, responses)])
    assert answer.status == common_pb2.SUCCESS, answer.info
    await network.synced(height + 1)


async def evaluate(peer: Target, network: Network, args: list[str]) -> str:
    client = network.material.user(HOSPITAL_A, "dr-lee")
    signed, _ = signed_proposal(client, args, chaincode=RECORDS)
    async with open_channel(peer.address) as channel:
        response = await process_proposal(channel, signed)
    assert response.response.status == 200, response.response.message
    parse_proposal_response(response)
    return response.response.payload.decode()


async def test_package_install_approve_commit_invoke_and_upgrade(
    network: Network,
) -> None:
    """Both hospitals install, approve and commit; the chaincode runs; sequence 2 upgrades."""
    package, label = records_package(network.folder, "1.0")
    package_id = await install_on_both(network, package)
    assert package_id.startswith(f"{label}:")
    installed = await query_installed(network.peer_a, network.admin(HOSPITAL_A))
    assert isinstance(installed, lb.QueryInstalledChaincodesResult)
    assert [(c.package_id, c.label) for c in installed.installed_chaincodes] == [
        (package_id, label)
    ]

    definition = Definition(name=RECORDS, version="1.0", sequence=1)
    await approve_both(network, definition, package_id)
    readiness = await check_commit_readiness(
        network.peer_a,
        network.admin(HOSPITAL_A),
        channel=CHANNEL,
        definition=definition,
    )
    assert readiness == {HOSPITAL_A: True, HOSPITAL_B: True, HOSPITAL_C: False}
    approved = await query_approved(
        network.peer_b, network.admin(HOSPITAL_B), channel=CHANNEL, name=RECORDS
    )
    assert (approved.sequence, approved.version) == (1, "1.0")
    assert approved.source.local_package.package_id == package_id

    await commit(
        [network.peer_a, network.peer_b],
        network.orderer,
        network.admin(HOSPITAL_A),
        channel=CHANNEL,
        definition=definition,
    )
    await network.synced()
    for peer, mspid in ((network.peer_a, HOSPITAL_A), (network.peer_b, HOSPITAL_B)):
        committed = await query_committed(
            peer, network.admin(mspid), channel=CHANNEL, name=RECORDS
        )
        assert isinstance(committed, lb.QueryChaincodeDefinitionResult)
        assert (committed.sequence, committed.version) == (1, "1.0")
        assert dict(committed.approvals) == readiness
    referenced = await query_installed(
        network.peer_a, network.admin(HOSPITAL_A), package_id
    )
    assert isinstance(referenced, lb.QueryInstalledChaincodeResult)
    assert [(c.name, c.version) for c in referenced.references[CHANNEL].chaincodes] == [
        (RECORDS, "1.0")
    ]

    await invoke(network, ["Put", "patient-17", "stable"])
    assert await evaluate(network.peer_b, network, ["Version"]) == "1.0"
    assert await evaluate(network.peer_a, network, ["Get", "patient-17"]) == "stable"

    package_2, _ = records_package(network.folder, "2.0")
    package_id_2 = await install_on_both(network, package_2)
    upgrade = Definition(name=RECORDS, version="2.0", sequence=2)
    await approve_both(network, upgrade, package_id_2)
    await commit(
        [network.peer_a, network.peer_b],
        network.orderer,
        network.admin(HOSPITAL_B),
        channel=CHANNEL,
        definition=upgrade,
    )
    await network.synced()
    assert await evaluate(network.peer_a, network, ["Version"]) == "2.0"
    assert await evaluate(network.peer_b, network, ["Get", "patient-17"]) == "stable"


async def test_wrong_sequences_missing_approvals_and_non_admins_are_refused(
    network: Network,
) -> None:
    """Each refusal names its reason; nothing is committed."""
    package, _ = records_package(network.folder, "1.0")
    with pytest.raises(LifecycleCommandError, match="not an admin under this MSP"):
        await install(
            network.peer_a, network.material.user(HOSPITAL_A, "dr-lee"), package
        )
    with pytest.raises(LifecycleCommandError, match="creator org unknown"):
        await install(network.peer_a, network.admin(HOSPITAL_B), package)
    package_id = await install_on_both(network, package)
    with pytest.raises(LifecycleCommandError, match="already successfully installed"):
        await install(network.peer_a, network.admin(HOSPITAL_A), package)

    too_far = Definition(name=RECORDS, version="1.0", sequence=2)
    with pytest.raises(
        LifecycleCommandError,
        match="requested sequence 2 is larger than the next available sequence number 1",
    ):
        await approve(
            network.peer_a,
            network.orderer,
            network.admin(HOSPITAL_A),
            channel=CHANNEL,
            definition=too_far,
            package_id=package_id,
        )

    definition = Definition(name=RECORDS, version="1.0", sequence=1)
    await approve(
        network.peer_a,
        network.orderer,
        network.admin(HOSPITAL_A),
        channel=CHANNEL,
        definition=definition,
        package_id=package_id,
    )
    with pytest.raises(
        LifecycleCommandError, match=r"not agreed to by this org \(HospitalBMSP\)"
    ):
        await commit(
            [network.peer_b, network.peer_a],
            network.orderer,
            network.admin(HOSPITAL_A),
            channel=CHANNEL,
            definition=definition,
        )
    with pytest.raises(
        LifecycleCommandError,
        match=r"approved by 1 of 3 organizations \(HospitalAMSP\); a commit needs a "
        r"majority \(2\); not approved by: HospitalBMSP, HospitalCMSP",
    ):
        await commit(
            [network.peer_a],
            network.orderer,
            network.admin(HOSPITAL_A),
            channel=CHANNEL,
            definition=definition,
        )
    with pytest.raises(LifecycleCommandError, match="namespace records is not defined"):
        await query_committed(
            network.peer_a, network.admin(HOSPITAL_A), channel=CHANNEL, name=RECORDS
        )
