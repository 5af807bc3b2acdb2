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

import pytest

from common.policies import from_string
from network.lifecycle_client import (
    Definition,
    LifecycleCommandError,
    approve,
    check_commit_readiness,
    commit,
    install,
    query_approved,
    query_committed,
    query_installed,
)
from peer.lifecycle.definitions import signature_endorsement_policy
from protos.peer import transaction_pb2
from protos.peer.lifecycle import lifecycle_pb2 as lb
from tests.integration.peer import lifecycle_fixtures
from tests.integration.peer.lifecycle_fixtures import (
    RECORDS,
    Network,
    approve_both,
    commit_both,
    endorse,
    evaluate,
    install_on_both,
    invoke,
    order,
    records_package,
)
from tests.support.peer import (
    CHANNEL,
    HOSPITAL_A,
    HOSPITAL_B,
    HOSPITAL_C,
)

material = lifecycle_fixtures.material
network = lifecycle_fixtures.network


async def test_package_install_approve_commit_invoke_and_upgrade(
    network: Network,
) -> None:
    """Both hospitals install, approve and commit; the chaincode runs; sequence 2 upgrades
    to new code and a new policy, and a transaction endorsed before is invalidated."""
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

    await commit_both(network, definition)
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

    in_flight = await endorse(network, ["Put", "patient-17", "critical"])
    package_2, _ = records_package(network.folder, "2.0")
    package_id_2 = await install_on_both(network, package_2)
    only_a = signature_endorsement_policy(from_string("OR('HospitalAMSP.peer')"))
    upgrade = Definition(
        name=RECORDS, version="2.0", sequence=2, endorsement_policy=only_a
    )
    await approve_both(network, upgrade, package_id_2)
    await commit_both(network, upgrade, mspid=HOSPITAL_B)
    assert await evaluate(network.peer_a, network, ["Version"]) == "2.0"
    # Endorsed under sequence 1 (version 1.0): the validator refuses the old version
    # before the stale read of the definition would fail MVCC.
    assert await order(network, in_flight) == transaction_pb2.EXPIRED_CHAINCODE
    assert await evaluate(network.peer_b, network, ["Get", "patient-17"]) == "stable"
    by_b = await endorse(network, ["Put", "patient-17", "x"], peers=[network.peer_b])
    assert await order(network, by_b) == transaction_pb2.ENDORSEMENT_POLICY_FAILURE
    by_a = await endorse(
        network, ["Put", "patient-17", "recovered"], peers=[network.peer_a]
    )
    assert await order(network, by_a) == transaction_pb2.VALID
    assert await evaluate(network.peer_b, network, ["Get", "patient-17"]) == "recovered"

    # Sequence 3 keeps version 2.0 and changes only the policy; a transaction both
    # hospitals endorsed under sequence 2 meets either policy, but its read of the
    # definition is stale: MVCC catches it.
    in_flight = await endorse(network, ["Put", "patient-17", "late"])
    policy_only = Definition(name=RECORDS, version="2.0", sequence=3)
    await approve_both(network, policy_only, package_id_2)
    await commit_both(network, policy_only)
    assert await order(network, in_flight) == transaction_pb2.MVCC_READ_CONFLICT
    assert await evaluate(network.peer_a, network, ["Get", "patient-17"]) == "recovered"


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
