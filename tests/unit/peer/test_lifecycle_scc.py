"""`_lifecycle` on a real simulator over a real channel ledger, committed by the real committer.

Method: Hospital A's peer storage joins medical-records from the example's genesis
block (no processes, no gRPC). Each call signs a proposal as a given identity and runs
the system chaincode (as the peer of A or B) on a simulator of the channel;
`submit` turns the simulation into a transaction endorsed by the named hospitals'
peers, orders it into a block signed as orderer0 and commits it, returning the
validation code. Approvals' plaintext reaches the private store through the transient
store, as an endorsing peer's does.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import Message

from common.msp import Msp, MspManager, SigningIdentity, load_signing_identity
from common.policies import from_string
from common.protoutil import (
    ChaincodeResponse,
    block_header_hash,
    create_proposal,
    parse_signed_proposal,
    sign_proposal,
)
from network.bench_peer import endorser_transaction, orderer_block
from peer.channels import Channels, PeerChannel
from peer.lifecycle.definitions import (
    LIFECYCLE_CHAINCODE_VERSION,
    LIFECYCLE_NAMESPACE,
    signature_endorsement_policy,
)
from peer.lifecycle.package import build_package
from peer.lifecycle.scc import LifecycleSystemChaincode
from peer.lifecycle.store import PackageStore
from peer.scc import SccInvocation
from peer.simulator import SimulationResults
from protos.peer import collection_pb2, transaction_pb2
from protos.peer.lifecycle import lifecycle_pb2 as lb
from protos.transientstore import transientstore_pb2
from tests.support.peer import (
    CHANNEL,
    HOSPITAL_A,
    HOSPITAL_B,
    HOSPITAL_C,
    PeerMaterial,
    build_peer_material,
)

NAME = "records"
PACKAGE_1 = "records_1:" + "1" * 64
PACKAGE_2 = "records_2:" + "2" * 64
VALID = transaction_pb2.VALID


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> PeerMaterial:
    return build_peer_material(tmp_path_factory.mktemp("lifecycle-scc"))


@dataclass
class Harness:
    material: PeerMaterial
    channel: PeerChannel
    store: PackageStore

    def admin(self, mspid: str = HOSPITAL_A) -> SigningIdentity:
        return self.material.user(mspid, "Admin")

    def scc(self, mspid: str = HOSPITAL_A) -> LifecycleSystemChaincode:
        """`_lifecycle` as the peer of `mspid` runs it."""
        layout = self.material.peer_layout(mspid)
        return LifecycleSystemChaincode(
            mspid=mspid,
            local_msp=Msp.from_folder(layout.msp_dir, mspid=mspid),
            store=self.store,
            channels=_OneChannel(self.channel),
        )

    async def call(
        self,
        signer: SigningIdentity,
        function: str,
        request: Message | bytes,
        *,
        peer: str = HOSPITAL_A,
        channel: str = CHANNEL,
        extra_args: Sequence[bytes] = (),
    ) -> tuple[ChaincodeResponse, SimulationResults | None, bytes]:
        """Run one proposal; (response, simulation results when OK, nonce)."""
        data = request if isinstance(request, bytes) else request.SerializeToString()
        created = create_proposal(
            channel_id=channel,
            chaincode_name=LIFECYCLE_NAMESPACE,
            args=[function.encode(), data, *extra_args],
            creator=signer.serialized,
        )
        proposal = parse_signed_proposal(
            sign_proposal(created.proposal_bytes, signer.sign)
        )
        scc = self.scc(peer)
        if not channel:
            local = MspManager([scc._local_msp])
            invocation = SccInvocation(
                proposal, local.deserialize_identity(signer.serialized)
            )
            return await scc.invoke(invocation), None, proposal.nonce
        creator = self.channel.config.msp_manager.deserialize_identity(
            signer.serialized
        )
        simulator = self.channel.open_simulator(proposal.tx_id)
        try:
            response = await scc.invoke_simulated(
                SccInvocation(proposal, creator), simulator
            )
            results = simulator.results() if response.status == 200 else None
        finally:
            simulator.done()
        return response, results, proposal.nonce

    async def ok(
        self,
        signer: SigningIdentity,
        function: str,
        request: Message,
        *,
        peer: str = HOSPITAL_A,
        channel: str = CHANNEL,
    ) -> bytes:
        response, _, _ = await self.call(
            signer, function, request, peer=peer, channel=channel
        )
        assert response.status == 200, response.message
        return response.payload

    async def refused(
        self,
        signer: SigningIdentity,
        function: str,
        request: Message,
        *,
        peer: str = HOSPITAL_A,
        channel: str = CHANNEL,
    ) -> str:
        response, _, _ = await self.call(
            signer, function, request, peer=peer, channel=channel
        )
        assert response.status != 200, "expected a refusal"
        return response.message

    async def submit(
        self,
        signer: SigningIdentity,
        function: str,
        request: Message,
        *,
        peer: str = HOSPITAL_A,
        endorsers: Sequence[str] = (HOSPITAL_A,),
    ) -> int:
        """Simulate on `peer`, endorse by `endorsers`' peers, commit; the code."""
        response, results, nonce = await self.call(signer, function, request, peer=peer)
        assert response.status == 200, response.message
        assert results is not None
        return await self.commit(signer, function, request, results, nonce, endorsers)

    async def commit(
        self,
        signer: SigningIdentity,
        function: str,
        request: Message,
        results: SimulationResults,
        nonce: bytes,
        endorsers: Sequence[str],
    ) -> int:
        envelope = endorser_transaction(
            channel_id=CHANNEL,
            chaincode=LIFECYCLE_NAMESPACE,
            version=LIFECYCLE_CHAINCODE_VERSION,
            rwset=results.public_rwset,
            creator=signer,
            endorsers=[self.material.peer_identity(mspid) for mspid in endorsers],
            args=(function.encode(), request.SerializeToString()),
            nonce=nonce,
        )
        tx_id = _tx_id(nonce, signer)
        if results.private_rwset:
            data = transientstore_pb2.TxPvtReadWriteSetWithConfigInfo(
                endorsed_at=self.channel.height()
            )
            data.pvt_rwset.ParseFromString(results.private_rwset)
            self.channel.store_private_data(
                tx_id, self.channel.height(), data.SerializeToString()
            )
        store = self.channel.ledger.block_store
        previous = store.block_by_number(store.height - 1)
        orderer = self.material.orderer.crypto.organization("HealthCommissionMSP")
        block = orderer_block(
            store.height,
            previous_hash=block_header_hash(previous.header),
            envelopes=[envelope],
            orderer=load_signing_identity(
                orderer.orderer("orderer0").msp_dir, mspid="HealthCommissionMSP"
            ),
        )
        [code] = await self.channel.commit(block)
        return code

    async def approve(
        self,
        mspid: str,
        sequence: int = 1,
        package_id: str = PACKAGE_1,
        **fields: object,
    ) -> int:
        return await self.submit(
            self.admin(mspid),
            "ApproveChaincodeDefinitionForMyOrg",
            approve_args(sequence, package_id, **fields),
            peer=mspid,
            endorsers=[mspid],
        )

    async def committed(self) -> lb.QueryChaincodeDefinitionResult:
        """The committed definition of `NAME`, queried by Hospital A's admin."""
        return lb.QueryChaincodeDefinitionResult.FromString(
            await self.ok(
                self.admin(),
                "QueryChaincodeDefinition",
                lb.QueryChaincodeDefinitionArgs(name=NAME),
            )
        )

    async def readiness(self, sequence: int = 1, **fields: object) -> dict[str, bool]:
        request = lb.CheckCommitReadinessArgs(
            name=NAME, sequence=sequence, version="1.0"
        )
        fill(request, fields)
        result = lb.CheckCommitReadinessResult.FromString(
            await self.ok(self.admin(), "CheckCommitReadiness", request)
        )
        return dict(result.approvals)


class _OneChannel:
    def __init__(self, channel: PeerChannel) -> None:
        self._channel = channel

    def get(self, channel_id: str) -> PeerChannel | None:
        return self._channel if channel_id == self._channel.channel_id else None


def _tx_id(nonce: bytes, signer: SigningIdentity) -> str:
    return hashlib.sha256(nonce + signer.serialized).hexdigest()


def fill(request: Message, fields: dict[str, object]) -> None:
    """Set definition fields on an args message (messages are copied in)."""
    for field, value in fields.items():
        if isinstance(value, Message):
            getattr(request, field).CopyFrom(value)
        else:
            setattr(request, field, value)


def approve_args(
    sequence: int = 1, package_id: str = PACKAGE_1, **fields: object
) -> lb.ApproveChaincodeDefinitionForMyOrgArgs:
    request = lb.ApproveChaincodeDefinitionForMyOrgArgs(
        name=NAME, sequence=sequence, version="1.0"
    )
    fill(request, fields)
    if package_id:
        request.source.local_package.package_id = package_id
    return request


def commit_args(
    sequence: int = 1, **fields: object
) -> lb.CommitChaincodeDefinitionArgs:
    request = lb.CommitChaincodeDefinitionArgs(
        name=NAME, sequence=sequence, version="1.0"
    )
    fill(request, fields)
    return request


def collections(block_to_live: int = 0) -> collection_pb2.CollectionConfigPackage:
    package = collection_pb2.CollectionConfigPackage()
    package.config.add().static_collection_config.CopyFrom(
        collection_pb2.StaticCollectionConfig(
            name="diagnoses",
            member_orgs_policy=collection_pb2.CollectionPolicyConfig(
                signature_policy=from_string(
                    "OR('HospitalAMSP.member', 'HospitalBMSP.member')"
                )
            ),
            required_peer_count=0,
            maximum_peer_count=1,
            block_to_live=block_to_live,
        )
    )
    return package


@pytest.fixture
async def harness(material: PeerMaterial, tmp_path: Path) -> AsyncIterator[Harness]:
    channels = Channels(tmp_path / "peer", mspid=HOSPITAL_A)
    try:
        channel = await channels.join(material.genesis)
        yield Harness(material, channel, PackageStore(tmp_path / "lifecycle"))
    finally:
        channels.close()


async def test_approval_sequences_follow_fabrics_rules(harness: Harness) -> None:
    """0 and skipped sequences are refused; an unchanged re-approval is refused."""
    admin = harness.admin()
    approve = "ApproveChaincodeDefinitionForMyOrg"
    assert "first definable sequence number is 1" in await harness.refused(
        admin, approve, approve_args(0)
    )
    assert (
        "requested sequence 2 is larger than the next available sequence number 1"
        in await harness.refused(admin, approve, approve_args(2))
    )
    assert await harness.approve(HOSPITAL_A) == VALID
    assert await harness.readiness() == {
        HOSPITAL_A: True,
        HOSPITAL_B: False,
        HOSPITAL_C: False,
    }
    assert (
        "attempted to redefine uncommitted sequence (1) for namespace records with "
        "unchanged content" in await harness.refused(admin, approve, approve_args())
    )
    assert await harness.approve(HOSPITAL_A, package_id=PACKAGE_2) == VALID
    approved = lb.QueryApprovedChaincodeDefinitionResult.FromString(
        await harness.ok(
            admin,
            "QueryApprovedChaincodeDefinition",
            lb.QueryApprovedChaincodeDefinitionArgs(name=NAME),
        )
    )
    assert (approved.sequence, approved.version) == (1, "1.0")
    assert approved.source.local_package.package_id == PACKAGE_2
    assert (approved.endorsement_plugin, approved.validation_plugin) == ("escc", "vscc")
    # the package is no part of what organisations agree on
    assert await harness.readiness() == {
        HOSPITAL_A: True,
        HOSPITAL_B: False,
        HOSPITAL_C: False,
    }


async def test_commit_needs_the_next_sequence_and_approvals_then_upgrades(
    harness: Harness,
) -> None:
    """Commit sequence 1 endorsed by A and B; then the committed sequence is frozen."""
    admin = harness.admin()
    commit = "CommitChaincodeDefinition"
    assert await harness.approve(HOSPITAL_A) == VALID
    assert "not agreed to by this org (HospitalBMSP)" in await harness.refused(
        admin, commit, commit_args(), peer=HOSPITAL_B
    )
    assert (
        "is approved by 1 of 3 organizations (HospitalAMSP); a commit needs a majority (2)"
        in await harness.refused(admin, commit, commit_args())
    )
    assert await harness.approve(HOSPITAL_B) == VALID
    assert (
        "requested sequence is 2, but new definition must be sequence 1"
        in await harness.refused(
            admin,
            "CheckCommitReadiness",
            lb.CheckCommitReadinessArgs(name=NAME, sequence=2, version="1.0"),
        )
    )
    code = await harness.submit(
        admin, commit, commit_args(), endorsers=[HOSPITAL_A, HOSPITAL_B]
    )
    assert code == VALID
    committed = await harness.committed()
    assert (committed.sequence, committed.version, committed.init_required) == (
        1,
        "1.0",
        False,
    )
    assert dict(committed.approvals) == {
        HOSPITAL_A: True,
        HOSPITAL_B: True,
        HOSPITAL_C: False,
    }
    every = lb.QueryChaincodeDefinitionsResult.FromString(
        await harness.ok(
            admin, "QueryChaincodeDefinitions", lb.QueryChaincodeDefinitionsArgs()
        )
    )
    assert [(d.name, d.sequence) for d in every.chaincode_definitions] == [(NAME, 1)]

    assert "new definition must be sequence 2" in await harness.refused(
        admin, commit, commit_args()
    )
    approve = "ApproveChaincodeDefinitionForMyOrg"
    assert (
        "attempted to redefine the current committed sequence (1) for namespace records "
        "with different parameters: expected Version '1.0' does not match passed "
        "Version '2.0'"
        in await harness.refused(admin, approve, approve_args(version="2.0"))
    )
    assert "currently defined sequence 1 is larger than requested sequence 0" in (
        await harness.refused(admin, approve, approve_args(0))
    )
    assert await harness.approve(HOSPITAL_A, package_id=PACKAGE_2) == VALID

    for mspid in (HOSPITAL_A, HOSPITAL_B):
        assert await harness.approve(mspid, 2, version="2.0") == VALID
    upgrade = commit_args(2, version="2.0")
    assert (
        await harness.submit(admin, commit, upgrade, endorsers=[HOSPITAL_A, HOSPITAL_B])
        == VALID
    )
    committed = await harness.committed()
    assert (committed.sequence, committed.version) == (2, "2.0")


async def test_a_commit_endorsed_by_one_hospital_fails_lifecycle_endorsement(
    harness: Harness,
) -> None:
    """MAJORITY Endorsement of three members needs two endorsing hospitals."""
    for mspid in (HOSPITAL_A, HOSPITAL_B):
        assert await harness.approve(mspid) == VALID
    code = await harness.submit(
        harness.admin(),
        "CommitChaincodeDefinition",
        commit_args(),
        endorsers=[HOSPITAL_A],
    )
    assert code == transaction_pb2.ENDORSEMENT_POLICY_FAILURE


@pytest.mark.parametrize(
    ("reapproval", "code"),
    [
        pytest.param(
            {"version": "1.1"},
            transaction_pb2.MVCC_READ_CONFLICT,
            id="a-changed-approval-invalidates-it",
        ),
        pytest.param(
            {"package_id": PACKAGE_2}, VALID, id="a-package-only-reapproval-does-not"
        ),
    ],
)
async def test_an_approval_made_while_a_commit_is_in_flight(
    harness: Harness, reapproval: dict[str, Any], code: int
) -> None:
    """The commit read the approvals' hashes: a later approval that changes the
    definition makes it an MVCC conflict; one that changes only the package writes
    only the changed keys, so the commit stays valid."""
    for mspid in (HOSPITAL_A, HOSPITAL_B):
        assert await harness.approve(mspid) == VALID
    admin = harness.admin()
    request = commit_args()
    response, results, nonce = await harness.call(
        admin, "CommitChaincodeDefinition", request
    )
    assert response.status == 200
    assert results is not None
    assert await harness.approve(HOSPITAL_B, **reapproval) == VALID
    assert (
        await harness.commit(
            admin,
            "CommitChaincodeDefinition",
            request,
            results,
            nonce,
            [HOSPITAL_A, HOSPITAL_B],
        )
        == code
    )


async def test_collections_are_carried_and_cannot_be_dropped_or_change_expiry(
    harness: Harness,
) -> None:
    policy = signature_endorsement_policy(
        from_string("AND('HospitalAMSP.peer', 'HospitalBMSP.peer')")
    )
    fields: dict[str, Any] = {
        "collections": collections(5),
        "validation_parameter": policy,
    }
    for mspid in (HOSPITAL_A, HOSPITAL_B):
        assert await harness.approve(mspid, **fields) == VALID
    assert await harness.readiness(**fields) == {
        HOSPITAL_A: True,
        HOSPITAL_B: True,
        HOSPITAL_C: False,
    }
    assert await harness.readiness() == {
        HOSPITAL_A: False,
        HOSPITAL_B: False,
        HOSPITAL_C: False,
    }
    admin = harness.admin()
    assert (
        await harness.submit(
            admin,
            "CommitChaincodeDefinition",
            commit_args(**fields),
            endorsers=[HOSPITAL_A, HOSPITAL_B],
        )
        == VALID
    )
    committed = await harness.committed()
    assert committed.collections == collections(5)
    assert committed.validation_parameter == policy
    approve = "ApproveChaincodeDefinitionForMyOrg"
    assert "existing collection [diagnoses] missing" in await harness.refused(
        admin,
        approve,
        approve_args(2, validation_parameter=policy, collections=_other_collection()),
    )
    assert "the BlockToLive in an existing collection [diagnoses] modified" in (
        await harness.refused(
            admin,
            approve,
            approve_args(2, validation_parameter=policy, collections=collections(9)),
        )
    )
    assert "the proposed collection config does not contain previously defined" in (
        await harness.refused(
            admin, approve, approve_args(2, validation_parameter=policy)
        )
    )


def _other_collection() -> collection_pb2.CollectionConfigPackage:
    package = collections(5)
    package.config[0].static_collection_config.name = "notes"
    return package


async def test_access_control_of_each_function(harness: Harness) -> None:
    """Approve: the peer's own admins; readiness and commit: channel Writers."""
    approve = "ApproveChaincodeDefinitionForMyOrg"
    clinician = harness.material.user(HOSPITAL_A, "dr-lee")
    message = await harness.refused(clinician, approve, approve_args())
    assert message.startswith("Failed to authorize invocation due to failed ACL check")
    assert "not an admin under this MSP [HospitalAMSP]" in message
    assert "channelless check policy with policy [Admins]" in await harness.refused(
        harness.admin(HOSPITAL_B), approve, approve_args()
    )
    readiness = lb.CheckCommitReadinessArgs(name=NAME, sequence=1, version="1.0")
    peer = harness.material.peer_identity(HOSPITAL_A)
    assert (
        "policy [/Channel/Application/Writers] not satisfied"
        in await harness.refused(peer, "CheckCommitReadiness", readiness)
    )
    await harness.ok(clinician, "CheckCommitReadiness", readiness)


async def test_installed_packages_are_for_local_admins_without_a_channel(
    harness: Harness, tmp_path: Path
) -> None:
    folder = tmp_path / "code" / "records"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("contracts = []\n")
    package, _ = build_package(label="records_1", kind="python", source=folder)
    admin = harness.admin()
    install = lb.InstallChaincodeArgs(chaincode_install_package=package)
    result = lb.InstallChaincodeResult.FromString(
        await harness.ok(admin, "InstallChaincode", install, channel="")
    )
    assert result.label == "records_1"
    listed = lb.QueryInstalledChaincodesResult.FromString(
        await harness.ok(
            admin,
            "QueryInstalledChaincodes",
            lb.QueryInstalledChaincodesArgs(),
            channel="",
        )
    )
    assert [p.package_id for p in listed.installed_chaincodes] == [result.package_id]
    fetched = lb.GetInstalledChaincodePackageResult.FromString(
        await harness.ok(
            admin,
            "GetInstalledChaincodePackage",
            lb.GetInstalledChaincodePackageArgs(package_id=result.package_id),
            channel="",
        )
    )
    assert fetched.chaincode_install_package == package
    response, _, _ = await harness.call(
        admin,
        "QueryInstalledChaincode",
        lb.QueryInstalledChaincodeArgs(package_id=PACKAGE_1),
        channel="",
    )
    assert (response.status, response.message) == (
        404,
        f"chaincode install package '{PACKAGE_1}' not found",
    )
    clinician = harness.material.user(HOSPITAL_A, "dr-lee")
    assert "not an admin" in await harness.refused(
        clinician, "InstallChaincode", install, channel=""
    )
    assert "resource _lifecycle/CommitChaincodeDefinition needs a channel" in (
        await harness.refused(
            admin, "CommitChaincodeDefinition", commit_args(), channel=""
        )
    )


async def test_malformed_invocations(harness: Harness) -> None:
    admin = harness.admin()
    response, _, _ = await harness.call(
        admin, "QueryChaincodeDefinitions", b"", extra_args=[b"third"]
    )
    assert response.message == (
        "lifecycle scc operations require exactly two arguments but received 3"
    )
    assert "unknown function" in await harness.refused(
        admin, "Deploy", lb.InstallChaincodeArgs()
    )
    assert (
        "failed to decode input arguments of 'CheckCommitReadiness'"
        in (await harness.call(admin, "CheckCommitReadiness", b"\xff\xff"))[0].message
    )
    response, _, _ = await harness.call(
        admin, "QueryChaincodeDefinition", lb.QueryChaincodeDefinitionArgs(name=NAME)
    )
    assert (response.status, response.message) == (
        404,
        "namespace records is not defined",
    )
