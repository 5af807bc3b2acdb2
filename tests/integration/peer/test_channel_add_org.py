"""Hospital C joins a running channel, as a Fabric operator adds an organisation.

Method: the hospital example's medical-records channel with only hospitals A and B
(C's group taken out of the genesis config; C's crypto material exists), ordered by
an in-process solo orderer over TLS, with A's peer0 joined. The operator's commands
run as the console command in a worker thread: `channel org-group` prints C's group
from C's MSP folder, `channel add-org` adds it, signed by A's and B's admins. Then C's
clinician fetches the genesis block from the orderer (`channel fetch oldest`, refused
before the update), C's peer0 starts fresh and joins with it (`channel join --mspid`),
pulls the blocks and applies the config block that added C; restarted, it resumes
from its ledger. An update signed by A's admin alone is refused (the Application
Admins policy is a majority). A transaction created by C's clinician (a `_lifecycle`
definition endorsed by A's and C's peers) is refused by the orderer's Broadcast before
the update and commits valid on both peers after it; A's peer serves C's clinician
blocks. Every wait is on a height, with a timeout.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from common.channelconfig import ChannelConfig, keys
from network.bench_peer import definition_transaction
from network.genesis import build_channel_config, build_genesis_block, write_block
from peer.node import PeerNode
from protos.common import common_pb2
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
    HOSPITAL_C,
    PeerMaterial,
    asset_definition,
    build_peer_material,
    running_peer,
    wait_for_height,
    write_peer_yaml,
)

CLINICIAN_C = "dr-svensson"
C_ANCHOR = "127.0.0.1:9051"


def without_hospital_c(material: PeerMaterial) -> PeerMaterial:
    """The same material with a genesis block of medical-records without C."""
    orderer = material.orderer
    config = build_channel_config(orderer.spec, CHANNEL, orderer.crypto)
    del config.channel_group.groups[keys.APPLICATION].groups[HOSPITAL_C]
    genesis = build_genesis_block(config, CHANNEL)
    genesis_file = orderer.root / "without-c.block"
    write_block(genesis_file, genesis)
    return PeerMaterial(
        dataclasses.replace(orderer, genesis=genesis, genesis_file=genesis_file)
    )


def c_transaction(material: PeerMaterial, sequence: int) -> bytes:
    """A `_lifecycle` definition tx created by C's clinician, endorsed by A and C."""
    return definition_transaction(
        asset_definition(sequence=sequence),
        channel_id=CHANNEL,
        creator=material.user(HOSPITAL_C, CLINICIAN_C),
        endorsers=[material.peer_identity(m) for m in (HOSPITAL_A, HOSPITAL_C)],
    )


def config_of(node: PeerNode) -> ChannelConfig:
    store = node.channels.require(CHANNEL).ledger.block_store
    return ChannelConfig.from_block(store.block_by_number(1))


def admin_of(material: PeerMaterial, mspid: str) -> str:
    return f"{material.orderer.user(mspid, 'Admin').msp_dir}:{mspid}"


def signs(material: PeerMaterial, mspids: Sequence[str]) -> list[str]:
    return [part for m in mspids for part in ("--sign", admin_of(material, m))]


async def test_hospital_c_joins_the_running_channel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    material = without_hospital_c(build_peer_material(tmp_path / "material"))
    c_org = material.orderer.crypto.organization(HOSPITAL_C)
    genesis_copy = tmp_path / "c-genesis.block"
    org_json = tmp_path / "hospital-c.json"

    async with tls_channel(material, tmp_path) as running:
        orderer, peer_a = running.orderer, running.peer_a
        at_orderer = [
            *("--channel", CHANNEL, "--orderer", orderer),
            *("--orderer-tls-ca", str(material.orderer.orderer.tls_ca)),
        ]
        clinician_c = material.orderer.user(HOSPITAL_C, CLINICIAN_C).msp_dir
        c_reader = ["--identity", str(clinician_c), "--mspid", HOSPITAL_C]
        fetch_oldest = ["channel", "fetch", "oldest", str(genesis_copy)]

        # Before: C's clinician can neither read nor write the channel.
        refused_fetch = await medledger(capsys, *fetch_oldest, *at_orderer, *c_reader)
        refused_write = await order(orderer, material, c_transaction(material, 1))

        # The operator: C's group from C's MSP folder, added by A's and B's admins.
        made = await medledger(
            capsys, "channel", "org-group", "--mspid", HOSPITAL_C,
            "--msp", str(c_org.msp_dir), "--anchor-peer", C_ANCHOR,
            "-o", str(org_json),
        )  # fmt: skip
        too_few = await medledger(
            capsys, "channel", "add-org", *at_orderer, "--org-group", str(org_json),
            *signs(material, [HOSPITAL_A]),
        )  # fmt: skip
        added = await medledger(
            capsys, "channel", "add-org", *at_orderer, "--org-group", str(org_json),
            *signs(material, [HOSPITAL_A, HOSPITAL_B]),
        )  # fmt: skip
        await wait_for_height(peer_a, 2)

        # After: C fetches the genesis block and C's fresh peer joins with it.
        fetched = await medledger(capsys, *fetch_oldest, *at_orderer, *c_reader)
        from_peer_a = await medledger(
            capsys, "channel", "fetch", "config", str(tmp_path / "config.block"),
            "--channel", CHANNEL, "--peer", running.peer_a_address,
            "--tls-ca", str(material.tls_ca(HOSPITAL_A)), *c_reader,
        )  # fmt: skip
        c_config = write_peer_yaml(
            tmp_path / "c" / "peer.yaml",
            material,
            HOSPITAL_C,
            storage=tmp_path / "c" / "data",
            orderer_address=orderer,
            tls=True,
        )
        async with running_peer(c_config) as (peer_c, c_addresses):
            joined = await medledger(
                capsys, "channel", "join", "-b", str(genesis_copy),
                "--peer", c_addresses["grpc"],
                "--identity", str(material.orderer.user(HOSPITAL_C, "Admin").msp_dir),
                "--mspid", HOSPITAL_C,
                "--tls-ca", str(material.tls_ca(HOSPITAL_C)),
            )  # fmt: skip
            await wait_for_height(peer_c, 2)
            accepted_write = await order(orderer, material, c_transaction(material, 1))
            for node in (peer_a, peer_c):
                await wait_for_height(node, 3)
            filters = [filter_of(node, 2) for node in (peer_a, peer_c)]
            c_view = config_of(peer_c)

        # C's peer restarts from its own ledger and keeps up.
        async with running_peer(c_config) as (peer_c, _):
            accepted_again = await order(orderer, material, c_transaction(material, 2))
            for node in (peer_a, peer_c):
                await wait_for_height(node, 4)
            filters += [filter_of(node, 3) for node in (peer_a, peer_c)]
            heights = [
                node.channels.require(CHANNEL).ledger.height
                for node in (peer_a, peer_c)
            ]

    assert refused_fetch[0] == 1
    assert "FORBIDDEN" in refused_fetch[2], refused_fetch
    assert refused_write == common_pb2.FORBIDDEN
    assert made[0] == 0, made[2]
    group = json.loads(org_json.read_text())
    assert set(group["policies"]) == {"Admins", "Endorsement", "Readers", "Writers"}
    assert group["values"]["AnchorPeers"]["value"] == {
        "anchor_peers": [{"host": "127.0.0.1", "port": 9051}]
    }
    assert too_few[:2] == (1, "")
    assert too_few[2].startswith("medledger: error: orderer "), too_few
    assert "refused the update" in too_few[2], too_few
    assert too_few[2].count("\n") == 1, too_few
    assert added == (
        0,
        f"config block 1\nadded {HOSPITAL_C} to channel {CHANNEL}\n",
        "",
    )
    assert fetched[0] == 0, fetched[2]
    assert genesis_copy.read_bytes() == material.genesis.SerializeToString()
    assert from_peer_a[0] == 0, from_peer_a[2]
    config_block = common_pb2.Block.FromString((tmp_path / "config.block").read_bytes())
    assert config_block.header.number == 1
    assert joined == (0, f"joined channel {CHANNEL} (height 1)\n", "")
    assert accepted_write == accepted_again == common_pb2.SUCCESS
    assert filters == [bytes([transaction_pb2.VALID])] * 4
    assert c_view.sequence == 1
    assert set(c_view.application_orgs) == {HOSPITAL_A, HOSPITAL_B, HOSPITAL_C}
    assert heights == [4, 4]
