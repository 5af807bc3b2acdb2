"""ListPurges: the purge records of a channel, over the peer's admin service.

Method: a channel ledger in a temporary folder commits a private key, then a block
purging it (as `test_privdata_purge_disk` does); the peer's `AdminService` serves that
ledger on a real gRPC listener; an admin of Hospital A lists the purges with
`peer.admin.list_purges`, a clinician is refused. The purge also counts in
`privdata_purges_total`.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import grpc
import pytest

from common.msp import Msp
from network.bench_ledger import endorser_envelope, validated_block
from peer.admin import AdminTarget, list_purges
from peer.channels import Channels, PeerChannel
from peer.errors import ChannelNotJoined
from peer.ledger.ledger import ChannelLedger
from peer.metrics import PURGES
from peer.service import AdminService
from protos.common import common_pb2
from tests.sim.ledger_writer import PrivateWrite, collection_sets, config_envelope
from tests.support.peer import HOSPITAL_A, PeerMaterial, build_peer_material

CC, COLL, CHANNEL = "records", "AB", "audited"
PURGE_TIME_S = 1_700_000_123


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> PeerMaterial:
    return build_peer_material(tmp_path_factory.mktemp("purges-material"))


@dataclass
class _Channel:
    ledger: ChannelLedger


class _Channels:
    """The one channel the admin service is asked about (`Channels.require`)."""

    def __init__(self, ledger: ChannelLedger) -> None:
        self._channel = _Channel(ledger)

    def require(self, channel_id: str) -> _Channel:
        if channel_id != CHANNEL:
            raise ChannelNotJoined("not found", channel_id=channel_id)
        return self._channel


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[ChannelLedger]:
    with ChannelLedger.open(tmp_path / "ledger", channel_id=CHANNEL) as opened:
        genesis = validated_block(
            0, previous_hash=b"", envelopes=[config_envelope("genesis")], codes=[0]
        )
        opened.commit_block(genesis)
        _commit(opened, "write-k", {COLL: [PrivateWrite("k", b"diagnosis")]})
        yield opened


@pytest.fixture
async def admin_address(
    ledger: ChannelLedger, material: PeerMaterial
) -> AsyncIterator[str]:
    msp = Msp.from_folder(material.peer_layout(HOSPITAL_A).msp_dir, mspid=HOSPITAL_A)
    service = AdminService(
        cast(Channels, _Channels(ledger)),
        msp=msp,
        join=_no_join,
        time_window_s=60.0,
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([service.rpc_handler()])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


async def test_an_admin_lists_a_completed_purge_with_its_transaction(
    ledger: ChannelLedger, material: PeerMaterial, admin_address: str
) -> None:
    """The record names the purging tx (id, block, index, timestamp) and the key hash
    only; filters by namespace and collection apply; the purge was counted once."""
    counted = PURGES.labels(CHANNEL, CC, COLL)
    before = counted.value
    _commit(ledger, "purge-k", {COLL: [PrivateWrite("k", None, purge=True)]})
    assert counted.value == before + 1

    admin = material.user(HOSPITAL_A, "Admin")
    target = AdminTarget(address=admin_address)
    listed = await list_purges(target, signer=admin, channel_id=CHANNEL)
    [record] = listed.purges
    assert (
        record.channel_id,
        record.namespace,
        record.collection,
        record.key_hash,
        record.block_number,
        record.tx_number,
        record.tx_id,
        record.tx_timestamp.seconds,
        record.store_entries_purged,
    ) == (
        CHANNEL,
        CC,
        COLL,
        hashlib.sha256(b"k").digest(),
        2,
        0,
        "purge-k",
        PURGE_TIME_S,
        1,
    )
    assert record.private_state_removed
    same = await list_purges(
        target, signer=admin, channel_id=CHANNEL, namespace=CC, collection=COLL
    )
    assert list(same.purges) == [record]
    other = await list_purges(target, signer=admin, channel_id=CHANNEL, namespace="x")
    assert list(other.purges) == []


async def test_no_purge_yet_lists_nothing(
    material: PeerMaterial, admin_address: str
) -> None:
    admin = material.user(HOSPITAL_A, "Admin")
    listed = await list_purges(
        AdminTarget(address=admin_address), signer=admin, channel_id=CHANNEL
    )
    assert list(listed.purges) == []


@pytest.mark.parametrize(
    ("signer_name", "channel", "code"),
    [
        ("dr-lee", CHANNEL, grpc.StatusCode.PERMISSION_DENIED),
        ("Admin", "elsewhere", grpc.StatusCode.NOT_FOUND),
    ],
)
async def test_refusals(
    material: PeerMaterial,
    admin_address: str,
    signer_name: str,
    channel: str,
    code: grpc.StatusCode,
) -> None:
    """A non-admin is refused; an unknown channel is NOT_FOUND."""
    signer = material.user(HOSPITAL_A, signer_name)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await list_purges(
            AdminTarget(address=admin_address), signer=signer, channel_id=channel
        )
    assert refused.value.code() == code


def _commit(
    ledger: ChannelLedger, tx_id: str, private: dict[str, list[PrivateWrite]]
) -> None:
    hashed, pvt = collection_sets(private, namespace=CC)
    envelope = endorser_envelope(
        tx_id=tx_id,
        writes=[],
        namespace=CC,
        collections=hashed,
        channel_id=CHANNEL,
        timestamp_s=PURGE_TIME_S,
    )
    block = validated_block(
        ledger.height,
        previous_hash=ledger.blockchain_info().currentBlockHash,
        envelopes=[envelope],
        codes=[0],
    )
    ledger.commit_block(block, {0: pvt})


async def _no_join(_: common_pb2.Block) -> PeerChannel:
    raise AssertionError("not joining in this test")
