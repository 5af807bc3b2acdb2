"""Config updates through an in-process solo orderer over real gRPC on 127.0.0.1:0.

Method: three hospitals and a health commission (real identities from the crypto
generator); admins sign CONFIG_UPDATE envelopes made with `network.config_update`, a
Broadcast stream carries them, and the outcome is read from the statuses, the channel's
current config, the block store and Deliver: a config block at sequence + 1, later
blocks cut with the new BatchSize and pointing at it as last config, the new config
kept across a restart. Refused and concurrent updates: `test_config_update_refused`.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from common.blockstore import BlockStore
from common.channelconfig import ChannelConfig, keys
from common.configtx import compute_update, parse_config_tx, validate_config_envelope
from common.msp import SigningIdentity, load_signing_identity
from common.protoutil import SeekPosition, last_config_index, parse_envelope
from network.config_update import (
    config_update_envelope,
    create_config_update_tx,
)
from network.orderer_material import (
    ORDERING,
    OrdererMaterial,
    build_orderer_material,
    new_envelope,
)
from network.spec import ConsortiumSpec, parse_spec
from orderer.node import OrdererNode
from protos.common import common_pb2, configtx_pb2
from protos.orderer import ab_pb2
from protos.orderer import configuration_pb2 as orderer_pb2
from tests.support.orderer import broadcast, connected_orderer, deliver, seek

SUCCESS = common_pb2.SUCCESS
HOSPITALS = ("HospitalAMSP", "HospitalBMSP", "HospitalCMSP")
CHANNEL = "records"
# The genesis cuts by count only: the timeout never fires during a test, so block
# boundaries show which MaxMessageCount was in force.
GENESIS_COUNT = 4
GENESIS_TIMEOUT = "20s"

Edit = Callable[[configtx_pb2.ConfigGroup], None]


def consortium_spec() -> ConsortiumSpec:
    organizations: list[dict[str, object]] = [
        {
            "name": f"Hospital {letter}",
            "mspid": mspid,
            "domain": f"hospital-{letter.lower()}.example.com",
            "peers": [{"name": "peer0", "host": "127.0.0.1", "port": 7051 + index}],
            "users": [{"name": "Admin", "admin": True}, {"name": "dr-lee"}],
        }
        for index, (letter, mspid) in enumerate(zip("ABC", HOSPITALS, strict=True))
    ]
    organizations.append(
        {
            "name": "Health Commission",
            "mspid": ORDERING,
            "domain": "commission.example.com",
            "orderers": [{"name": "orderer0", "host": "127.0.0.1", "port": 7050}],
            "users": [{"name": "Admin", "admin": True}],
        }
    )
    document = {
        "consortium": "config-update-test",
        "organizations": organizations,
        "channels": [
            {
                "name": CHANNEL,
                "members": list(HOSPITALS),
                "orderer": {
                    "type": "solo",
                    "organizations": [ORDERING],
                    "batch_size": {
                        "max_message_count": GENESIS_COUNT,
                        "absolute_max_bytes": "1 MB",
                        "preferred_max_bytes": "512 KB",
                    },
                    "batch_timeout": GENESIS_TIMEOUT,
                },
            }
        ],
    }
    return parse_spec(json.dumps(document), source="config-update test spec")


def build_consortium(factory: pytest.TempPathFactory) -> OrdererMaterial:
    return build_orderer_material(factory.mktemp("config-update"), consortium_spec())


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> OrdererMaterial:
    return build_consortium(tmp_path_factory)


@pytest.fixture(scope="module")
def genesis(consortium: OrdererMaterial) -> ChannelConfig:
    return ChannelConfig.from_block(consortium.genesis)


def admin(material: OrdererMaterial, mspid: str) -> SigningIdentity:
    return material.signing_identity(mspid, "Admin")


def edited(config: ChannelConfig, edit: Edit) -> configtx_pb2.Config:
    updated = config.config
    edit(updated.channel_group)
    return updated


def set_batch_size(count: int) -> Edit:
    def edit(root: configtx_pb2.ConfigGroup) -> None:
        value = root.groups[keys.ORDERER].values[keys.BATCH_SIZE]
        batch = orderer_pb2.BatchSize.FromString(value.value)
        batch.max_message_count = count
        value.value = batch.SerializeToString()

    return edit


def set_batch_timeout(timeout: str) -> Edit:
    def edit(root: configtx_pb2.ConfigGroup) -> None:
        root.groups[keys.ORDERER].values[
            keys.BATCH_TIMEOUT
        ].value = orderer_pb2.BatchTimeout(timeout=timeout).SerializeToString()

    return edit


def remove_org(mspid: str) -> Edit:
    def edit(root: configtx_pb2.ConfigGroup) -> None:
        del root.groups[keys.APPLICATION].groups[mspid]

    return edit


def update_tx(
    config_update: configtx_pb2.ConfigUpdate | bytes,
    *,
    approvers: Iterable[SigningIdentity],
    submitter: SigningIdentity,
) -> bytes:
    """A CONFIG_UPDATE envelope approved by `approvers` and signed by `submitter`."""
    signed = config_update_envelope(config_update, signers=approvers)
    return create_config_update_tx(CHANNEL, signed, submitter).SerializeToString()


def commission_update(
    material: OrdererMaterial, update: configtx_pb2.ConfigUpdate
) -> bytes:
    """An Orderer-group update signed as /Channel/Orderer/Admins requires."""
    commission = admin(material, ORDERING)
    return update_tx(update, approvers=[commission], submitter=commission)


def batch_size_update(
    material: OrdererMaterial, config: ChannelConfig, count: int
) -> bytes:
    update = compute_update(
        CHANNEL, config.config, edited(config, set_batch_size(count))
    )
    return commission_update(material, update)


def clients(material: OrdererMaterial, mspid: str, count: int) -> list[bytes]:
    client = material.signing_identity(mspid, "dr-lee")
    return [new_envelope(client, channel=CHANNEL, data=b"tx") for _ in range(count)]


def orderer_creator(material: OrdererMaterial) -> bytes:
    return load_signing_identity(material.orderer.msp_dir, mspid=ORDERING).serialized


def stored_blocks(folder: Path) -> list[common_pb2.Block]:
    with BlockStore.open(folder / "storage" / "channels" / CHANNEL) as store:
        return list(store.iter_blocks())


def last_config_metadata(block: common_pb2.Block) -> int:
    """The LAST_CONFIG metadata slot's index (kept alongside OrdererBlockMetadata)."""
    metadata = common_pb2.Metadata.FromString(
        block.metadata.metadata[common_pb2.LAST_CONFIG]
    )
    return common_pb2.LastConfig.FromString(metadata.value).index


def statuses(responses: Iterable[ab_pb2.BroadcastResponse]) -> list[int]:
    return [response.status for response in responses]


def stored_height(node: OrdererNode) -> int:
    support = node.registrar.support(CHANNEL)
    assert support is not None
    return support.height()


def channel_config(node: OrdererNode) -> ChannelConfig:
    support = node.registrar.support(CHANNEL)
    assert support is not None
    return support.channel_config()


async def test_a_batch_size_update_makes_a_config_block_that_later_blocks_follow(
    consortium: OrdererMaterial, genesis: ChannelConfig, tmp_path: Path
) -> None:
    """MaxMessageCount 4 → 2 by the commission's admin; then four envelopes."""
    async with connected_orderer(consortium, tmp_path) as (node, channel):
        update = batch_size_update(consortium, genesis, 2)
        assert statuses(await broadcast(channel, [update])) == [SUCCESS]
        config = channel_config(node)
        responses = await broadcast(channel, clients(consortium, HOSPITALS[0], 4))

    assert statuses(responses) == [SUCCESS] * 4
    assert config.sequence == genesis.sequence + 1
    assert config.batch_size.max_message_count == 2
    blocks = stored_blocks(tmp_path)
    assert [len(block.data.data) for block in blocks] == [1, 1, 2, 2]
    assert [last_config_index(block) for block in blocks] == [0, 1, 1, 1]
    assert [last_config_metadata(block) for block in blocks[1:]] == [1, 1, 1]
    config_tx = parse_envelope(blocks[1].data.data[0])
    assert config_tx.header_type == common_pb2.CONFIG
    assert config_tx.creator == orderer_creator(consortium)
    # What a committing peer checks: the config is exactly what last_update makes.
    view = validate_config_envelope(genesis, parse_config_tx(blocks[1].data.data[0]))
    assert view.sequence == 1
    assert view.batch_size.max_message_count == 2
    assert ChannelConfig.from_block(blocks[1]) == view


async def test_the_new_config_survives_a_restart(
    consortium: OrdererMaterial, genesis: ChannelConfig, tmp_path: Path
) -> None:
    """Reopened from the last config block, found through LAST_CONFIG."""
    async with connected_orderer(consortium, tmp_path) as (_, channel):
        update = batch_size_update(consortium, genesis, 2)
        assert statuses(await broadcast(channel, [update])) == [SUCCESS]
        assert (
            statuses(await broadcast(channel, clients(consortium, HOSPITALS[0], 2)))
            == [SUCCESS] * 2
        )

    async with connected_orderer(consortium, tmp_path) as (node, channel):
        config = channel_config(node)
        responses = await broadcast(channel, clients(consortium, HOSPITALS[1], 4))

    assert config.sequence == 1
    assert config.batch_size.max_message_count == 2
    assert statuses(responses) == [SUCCESS] * 4
    blocks = stored_blocks(tmp_path)
    assert [len(block.data.data) for block in blocks] == [1, 1, 2, 2, 2]
    assert [last_config_index(block) for block in blocks] == [0, 1, 1, 1, 1]


async def test_removing_an_org_takes_a_majority_of_admins_then_refuses_its_writers(
    consortium: OrdererMaterial, genesis: ChannelConfig, tmp_path: Path
) -> None:
    """/Channel/Application/Admins is MAJORITY Admins: two of the three hospitals."""
    update = compute_update(
        CHANNEL, genesis.config, edited(genesis, remove_org(HOSPITALS[2]))
    )
    hospital_a, hospital_b = (admin(consortium, mspid) for mspid in HOSPITALS[:2])
    one_admin = update_tx(update, approvers=[hospital_a], submitter=hospital_a)
    two_admins = update_tx(
        update, approvers=[hospital_a, hospital_b], submitter=hospital_a
    )
    async with connected_orderer(consortium, tmp_path) as (node, channel):
        refused = await broadcast(channel, [one_admin])
        height_after_refusal = stored_height(node)
        accepted = await broadcast(channel, [two_admins])
        later = await broadcast(
            channel,
            [
                *clients(consortium, HOSPITALS[2], 1),
                *clients(consortium, HOSPITALS[0], GENESIS_COUNT),
            ],
        )

    assert statuses(refused) == [common_pb2.FORBIDDEN]
    assert "mod_policy" in refused[0].info
    assert height_after_refusal == 1
    assert statuses(accepted) == [SUCCESS]
    assert statuses(later) == [common_pb2.FORBIDDEN] + [SUCCESS] * GENESIS_COUNT
    blocks = stored_blocks(tmp_path)
    assert [len(block.data.data) for block in blocks] == [1, 1, GENESIS_COUNT]
    assert set(ChannelConfig.from_block(blocks[1]).application_orgs) == set(
        HOSPITALS[:2]
    )


FABRIC_DECODER = """
import sys
from fabric_protos.common import common_pb2, configtx_pb2
from fabric_protos.orderer import configuration_pb2

block = common_pb2.Block.FromString(open(sys.argv[1], "rb").read())
envelope = common_pb2.Envelope.FromString(block.data.data[0])
payload = common_pb2.Payload.FromString(envelope.payload)
header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
config_envelope = configtx_pb2.ConfigEnvelope.FromString(payload.data)
value = config_envelope.config.channel_group.groups["Orderer"].values["BatchSize"]
batch = configuration_pb2.BatchSize.FromString(value.value)
update = common_pb2.Payload.FromString(config_envelope.last_update.payload)
update_header = common_pb2.ChannelHeader.FromString(update.header.channel_header)
orderer_metadata = common_pb2.OrdererBlockMetadata.FromString(
    common_pb2.Metadata.FromString(block.metadata.metadata[0]).value
)
print(
    block.header.number,
    common_pb2.HeaderType.Name(header.type),
    common_pb2.HeaderType.Name(update_header.type),
    config_envelope.config.sequence,
    batch.max_message_count,
    orderer_metadata.last_config.index,
)
"""


async def test_deliver_returns_the_config_block_and_fabric_protos_decode_it(
    consortium: OrdererMaterial, genesis: ChannelConfig, tmp_path: Path
) -> None:
    """The block from Deliver is decoded with the official protos in a child process."""
    reader = consortium.signing_identity(HOSPITALS[0], "dr-lee")
    newest = SeekPosition.newest()
    async with connected_orderer(consortium, tmp_path) as (_, channel):
        update = batch_size_update(consortium, genesis, 2)
        assert statuses(await broadcast(channel, [update])) == [SUCCESS]
        responses = await deliver(
            channel, [seek(reader, CHANNEL, start=newest, stop=newest)]
        )

    [block_response, done] = responses
    assert done.status == SUCCESS
    block = block_response.block
    assert block.SerializeToString() == stored_blocks(tmp_path)[1].SerializeToString()
    (tmp_path / "config.block").write_bytes(block.SerializeToString())
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", FABRIC_DECODER, "config.block"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    if "No module named 'fabric_protos'" in result.stderr:
        pytest.skip("the official fabric_protos package is not installed")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "CONFIG", "CONFIG_UPDATE", "1", "2", "1"]
