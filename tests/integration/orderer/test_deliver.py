"""Deliver against an in-process solo orderer: positions, waiting, ACL, TLS binding.

Method: broadcast a few envelopes to get blocks, then open Deliver streams with
signed seek requests and compare the block numbers and final statuses.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from common import deliver as common_deliver
from common.protoutil import (
    FAIL_IF_NOT_READY,
    SeekPosition,
    Timestamp,
    parse_block,
)
from common.tls import cert_hash
from network.orderer_material import HOSPITAL, OrdererMaterial, new_envelope
from protos.common import common_pb2
from protos.orderer import ab_pb2
from tests.support.orderer import (
    broadcast,
    connected_orderer,
    deliver,
    running_orderer,
    seek,
)

OLDEST, NEWEST = SeekPosition.oldest(), SeekPosition.newest()


def numbers(responses: list[ab_pb2.DeliverResponse]) -> list[int]:
    return [r.block.header.number for r in responses if r.WhichOneof("Type") == "block"]


def statuses(responses: list[ab_pb2.DeliverResponse]) -> list[int]:
    return [r.status for r in responses if r.WhichOneof("Type") == "status"]


async def grow(
    channel: grpc.aio.Channel, material: OrdererMaterial, blocks: int
) -> None:
    """Add `blocks` blocks (one envelope each: the batch timeout cuts them)."""
    client = material.signing_identity(HOSPITAL, "dr-lee")
    for _ in range(blocks):
        assert [r.status for r in await broadcast(channel, [new_envelope(client)])] == [
            common_pb2.SUCCESS
        ]


async def test_positions_stop_and_several_requests_on_one_stream(
    material: OrdererMaterial, tmp_path: Path
) -> None:
    reader = material.signing_identity(HOSPITAL, "dr-lee")
    name = material.channel
    async with connected_orderer(material, tmp_path) as (_, channel):
        await grow(channel, material, 3)
        responses = await deliver(
            channel,
            [
                seek(reader, name, start=OLDEST, stop=NEWEST),
                seek(reader, name, start=NEWEST, stop=NEWEST),
                seek(
                    reader,
                    name,
                    start=SeekPosition.specified(1),
                    stop=SeekPosition.specified(2),
                ),
                seek(reader, "nowhere", start=OLDEST, stop=NEWEST),
                seek(
                    reader,
                    name,
                    start=SeekPosition.specified(3),
                    stop=SeekPosition.specified(9),
                    behavior=FAIL_IF_NOT_READY,
                ),
            ],
        )

    assert numbers(responses) == [0, 1, 2, 3, 3, 1, 2, 3]
    assert statuses(responses) == [
        common_pb2.SUCCESS,
        common_pb2.SUCCESS,
        common_pb2.SUCCESS,
        common_pb2.NOT_FOUND,
        common_pb2.NOT_FOUND,
    ]
    genesis = responses[0].block
    assert genesis == material.genesis


async def test_next_commit_blocks_until_ready(
    material: OrdererMaterial, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = material.signing_identity(HOSPITAL, "dr-lee")
    request = seek(
        reader,
        material.channel,
        start=SeekPosition.next_commit(),
        stop=SeekPosition.specified(2),
    )
    # "next commit" is the height when the orderer (in this process) reads the
    # request: blocks are added only once it has.
    resolved = asyncio.Event()
    original = common_deliver.resolve_start

    def resolve_start(position: SeekPosition, height: int) -> int:
        resolved.set()
        return original(position, height)

    monkeypatch.setattr(common_deliver, "resolve_start", resolve_start)
    async with connected_orderer(material, tmp_path) as (_, channel):
        waiting = asyncio.ensure_future(deliver(channel, [request]))
        await asyncio.wait_for(resolved.wait(), 20)
        await grow(channel, material, 2)
        responses = await asyncio.wait_for(waiting, 20)

    assert numbers(responses) == [1, 2]
    assert statuses(responses) == [common_pb2.SUCCESS]
    for response in responses[:2]:
        assert parse_block(response.block.SerializeToString()).data.data


async def test_untrusted_reader_stale_request_and_wrong_binding(
    material: OrdererMaterial, tmp_path: Path
) -> None:
    from network.orderer_material import build_orderer_material

    foreign = build_orderer_material(tmp_path / "foreign")
    reader = material.signing_identity(HOSPITAL, "dr-lee")
    stranger = foreign.signing_identity(HOSPITAL, "dr-lee")
    name = material.channel
    requests = [
        seek(stranger, name, start=OLDEST, stop=NEWEST),
        seek(reader, name, start=OLDEST, stop=NEWEST, timestamp=Timestamp(1_000_000)),
        seek(reader, name, start=OLDEST, stop=NEWEST, tls_cert_hash=b"x" * 32),
    ]
    async with connected_orderer(material, tmp_path / "orderer") as (_, channel):
        responses = await deliver(channel, requests)

    assert statuses(responses) == [
        common_pb2.FORBIDDEN,
        common_pb2.BAD_REQUEST,
        common_pb2.BAD_REQUEST,
    ]
    assert numbers(responses) == []


async def test_deliver_over_mutual_tls_with_the_client_certificate_binding(
    material: OrdererMaterial, tmp_path: Path
) -> None:
    from common.tls import TlsFiles, channel_credentials

    user = material.user(HOSPITAL, "dr-lee")
    reader = material.signing_identity(HOSPITAL, "dr-lee")
    credentials = channel_credentials(
        TlsFiles(
            cert=user.tls_cert,
            key=user.tls_key,
            root_cas=(material.orderer.tls_ca,),
        )
    )
    binding = cert_hash(user.tls_cert.read_bytes())
    request = seek(
        reader, material.channel, start=OLDEST, stop=OLDEST, tls_cert_hash=binding
    )
    unbound = seek(reader, material.channel, start=OLDEST, stop=OLDEST)
    async with (
        running_orderer(material, tmp_path, tls=True, mutual_tls=True) as (
            _,
            addresses,
        ),
        grpc.aio.secure_channel(addresses["grpc"], credentials) as channel,
    ):
        responses = await deliver(channel, [request, unbound])

    assert numbers(responses) == [0]
    # Under mutual TLS a request must carry the binding.
    assert statuses(responses) == [common_pb2.SUCCESS, common_pb2.BAD_REQUEST]
