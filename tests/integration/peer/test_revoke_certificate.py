"""A clinician leaves hospital A: A's CA revokes the certificate, the channel learns it.

Method: the hospital example's medical-records channel ordered by an in-process solo
orderer over TLS, with A's peer0 joined (TLS). Before: A's clinician dr-lee creates
a transaction (a `_lifecycle` definition endorsed by A's and B's peers) that commits
VALID, and her qscc proposal is endorsed. The operator then runs, as the console
command in a worker thread, `crypto revoke --user dr-lee` on A's folder and `channel
update-org` for HospitalAMSP signed by A's admin alone (the MSP value's mod_policy is
A's Admins). After the config block: dr-lee's new proposal is refused by A's peer, a
transaction of hers endorsed before the revocation is refused by the orderer's
Broadcast (the /Channel/Writers check deserializes and validates the creator), and
her Deliver is refused by the orderer and by A's peer (`channel fetch --peer`);
dr-okafor, another clinician of A, is unaffected (his proposal is endorsed, his
transaction commits VALID, he reads blocks from both).
At commit, a peer fed a later block with her transaction marks it BAD_CREATOR_SIGNATURE.
Every wait is on a height, with a timeout.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import grpc
import pytest

from common.channelconfig import ChannelConfig, keys
from common.msp import SigningIdentity, load_signing_identity
from common.protoutil import block_header_hash
from common.tls import TlsFiles, channel_credentials
from network.bench_peer import definition_transaction, orderer_block
from peer.node import PeerNode
from protos.common import common_pb2
from protos.msp import msp_config_pb2
from protos.peer import transaction_pb2
from tests.integration.peer.channel_admin_fixtures import (
    filter_of,
    order,
    tls_channel,
)
from tests.integration.peer.lifecycle_fixtures import medledger
from tests.support.peer import (
    CHANNEL,
    HOSPITAL_A,
    HOSPITAL_B,
    UNREACHABLE_ORDERER,
    PeerMaterial,
    asset_definition,
    build_peer_material,
    process_proposal,
    running_peer,
    signed_proposal,
    wait_for_height,
    write_peer_yaml,
)

LEAVER = "dr-lee"
STAYER = "dr-okafor"
ORDERING_MSP = "HealthCommissionMSP"


def definition_by(material: PeerMaterial, user: str, sequence: int) -> bytes:
    """A `_lifecycle` definition tx created by A's `user`, endorsed by A and B."""
    return definition_transaction(
        asset_definition(sequence=sequence),
        channel_id=CHANNEL,
        creator=material.user(HOSPITAL_A, user),
        endorsers=[material.peer_identity(m) for m in (HOSPITAL_A, HOSPITAL_B)],
    )


async def chain_info(
    address: str, material: PeerMaterial, signer: SigningIdentity
) -> tuple[str, int, str]:
    """qscc GetChainInfo on medical-records, proposed by `signer` to A's peer: the
    gRPC status's name, and the response's status and message (0, details when the
    call failed)."""
    credentials = channel_credentials(TlsFiles(root_cas=(material.tls_ca(HOSPITAL_A),)))
    request, _ = signed_proposal(signer, ["GetChainInfo", CHANNEL], chaincode="qscc")
    async with grpc.aio.secure_channel(address, credentials) as link:
        try:
            answer = await process_proposal(link, request)
        except grpc.aio.AioRpcError as error:
            return error.code().name, 0, error.details() or ""
    return "OK", answer.response.status, answer.response.message


async def commit_late_block(
    material: PeerMaterial,
    folder: Path,
    chain: Sequence[common_pb2.Block],
    envelopes: Sequence[bytes],
) -> tuple[int, ...]:
    """A fresh peer of A joins, commits `chain` (blocks 1..) and then the next block
    of `envelopes`, signed by orderer0; that block's validation codes."""
    config = write_peer_yaml(
        folder / "peer.yaml",
        material,
        HOSPITAL_A,
        storage=folder / "data",
        orderer_address=UNREACHABLE_ORDERER,
    )
    ordering = material.orderer.crypto.organization(ORDERING_MSP)
    orderer0 = load_signing_identity(
        ordering.orderer("orderer0").msp_dir, mspid=ORDERING_MSP
    )
    async with running_peer(config) as (node, _):
        channel = await node.join(material.genesis)
        for block in chain:
            await channel.commit(block)
        late = orderer_block(
            chain[-1].header.number + 1,
            previous_hash=block_header_hash(chain[-1].header),
            envelopes=envelopes,
            orderer=orderer0,
            last_config=chain[-1].header.number,
        )
        return tuple(int(code) for code in await channel.commit(late))


def a_crls(node: PeerNode, number: int) -> list[bytes]:
    """The CRLs of HospitalAMSP in the config of block `number` of the peer."""
    store = node.channels.require(CHANNEL).ledger.block_store
    view = ChannelConfig.from_block(store.block_by_number(number))
    group = view.config.channel_group.groups[keys.APPLICATION].groups[HOSPITAL_A]
    msp = msp_config_pb2.MSPConfig.FromString(group.values[keys.MSP].value)
    fabric = msp_config_pb2.FabricMSPConfig.FromString(msp.config)
    return list(fabric.revocation_list)


async def test_a_revoked_clinician_is_refused_after_the_config_update(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="peer.endorser")
    material = build_peer_material(tmp_path / "material")
    a_org = material.orderer.crypto.organization(HOSPITAL_A)
    admin_a = f"{a_org.user('Admin').msp_dir}:{HOSPITAL_A}"

    async with tls_channel(material, tmp_path) as running:
        orderer, peer_a, peer = running.orderer, running.peer_a, running.peer_a_address
        at_orderer = [
            *("-c", CHANNEL, "--orderer", orderer),
            *("--orderer-tls-ca", str(material.orderer.orderer.tls_ca)),
        ]
        at_peer = [
            *("-c", CHANNEL, "--peer", peer),
            *("--tls-ca", str(material.tls_ca(HOSPITAL_A))),
        ]

        def fetch_as(user: str, source: Sequence[str] = ()) -> list[str]:
            return [
                *("channel", "fetch", "newest", str(tmp_path / f"{user}.block")),
                *(source or at_orderer),
                *("--identity", str(a_org.user(user).msp_dir), "--mspid", HOSPITAL_A),
            ]

        leaver = material.user(HOSPITAL_A, LEAVER)
        stayer = material.user(HOSPITAL_A, STAYER)

        # Before: dr-lee transacts and is endorsed like anyone of A.
        before_write = await order(
            orderer, material, definition_by(material, LEAVER, 1)
        )
        await wait_for_height(peer_a, 2)
        before_proposal = await chain_info(peer, material, leaver)
        endorsed_earlier = definition_by(material, LEAVER, 2)
        stayer_late = definition_by(material, STAYER, 2)

        # The operator: A's CA revokes her certificate; A's admin updates A's MSP.
        revoked = await medledger(
            capsys, "crypto", "revoke", "--org-dir", str(a_org.root),
            "--user", LEAVER, "--reason", "cessationOfOperation",
        )  # fmt: skip
        again = await medledger(
            capsys, "crypto", "revoke", "--org-dir", str(a_org.root),
            "--user", LEAVER,
        )  # fmt: skip
        updated = await medledger(
            capsys, "channel", "update-org", *at_orderer, "--mspid", HOSPITAL_A,
            "--msp", str(a_org.msp_dir), "--sign", admin_a,
        )  # fmt: skip
        await wait_for_height(peer_a, 3)

        # After: dr-lee is refused everywhere; dr-okafor is not.
        after_proposal = await chain_info(peer, material, leaver)
        after_write = await order(orderer, material, endorsed_earlier)
        after_fetch = await medledger(capsys, *fetch_as(LEAVER))
        after_peer_fetch = await medledger(capsys, *fetch_as(LEAVER, at_peer))
        stayer_proposal = await chain_info(peer, material, stayer)
        stayer_write = await order(
            orderer, material, definition_by(material, STAYER, 2)
        )
        await wait_for_height(peer_a, 4)
        stayer_fetch = await medledger(capsys, *fetch_as(STAYER))
        stayer_peer_fetch = await medledger(capsys, *fetch_as(STAYER, at_peer))
        filters = [filter_of(peer_a, number) for number in (1, 3)]
        crls = (a_crls(peer_a, 0), a_crls(peer_a, 2))
        store = peer_a.channels.require(CHANNEL).ledger.block_store
        chain = [store.block_by_number(number) for number in (1, 2)]

    # At commit: had the orderer cut dr-lee's transaction after the config block, a
    # peer would invalidate it. A second peer of A, fed by the test, replays blocks 1
    # and 2 and commits a block 3 made by orderer0 with her transaction and his.
    late_codes = await commit_late_block(
        material, tmp_path / "replay", chain, [endorsed_earlier, stayer_late]
    )

    assert before_write == common_pb2.SUCCESS
    assert before_proposal[:2] == ("OK", 200), before_proposal
    assert revoked[0] == 0, revoked[2]
    assert revoked[1].startswith(f"revoked CN={LEAVER}@"), revoked
    assert "CRL number 2" in revoked[1], revoked
    assert again[0] == 0, again[2]
    assert "already revoked" in again[1], again
    assert updated == (
        0,
        f"config block 2\nupdated the MSP of {HOSPITAL_A} (Application/{HOSPITAL_A}) "
        f"on channel {CHANNEL}\n",
        "",
    ), updated
    assert len(crls[0]) == len(crls[1]) == 1
    assert crls[0] != crls[1]
    # As Fabric's, the peer tells the client only that access is denied and logs why.
    assert after_proposal == (
        "PERMISSION_DENIED",
        0,
        f"access denied: channel [{CHANNEL}] creator org [{HOSPITAL_A}]",
    )
    assert any(
        "access denied" in line and "revoked" in line for line in caplog.messages
    ), caplog.messages
    assert after_write == common_pb2.FORBIDDEN
    assert after_fetch[0] == 1, after_fetch
    assert "FORBIDDEN" in after_fetch[2], after_fetch
    assert after_peer_fetch[0] == 1, after_peer_fetch
    assert "FORBIDDEN" in after_peer_fetch[2], after_peer_fetch
    assert f"peer {peer}" in after_peer_fetch[2], after_peer_fetch
    assert stayer_proposal[:2] == ("OK", 200), stayer_proposal
    assert stayer_write == common_pb2.SUCCESS
    assert stayer_fetch[0] == 0, stayer_fetch[2]
    assert stayer_peer_fetch[0] == 0, stayer_peer_fetch[2]
    assert filters == [bytes([transaction_pb2.VALID])] * 2
    assert late_codes == (transaction_pb2.BAD_CREATOR_SIGNATURE, transaction_pb2.VALID)
