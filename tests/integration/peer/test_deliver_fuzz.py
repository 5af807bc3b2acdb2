"""Fuzzed Deliver requests get a status, never a crash, on all three Deliver methods.

Method: seeded random requests (rerun with --seed), one stream each, against an
in-process peer: random bytes, byte-level mutations of a valid seek envelope, and
properly signed envelopes around mutated SeekInfo bytes. Every request must be answered
by blocks and one status response, never by an RPC error — or, when the mutation made
a valid request for blocks not yet committed, keep waiting (bounded here). Afterwards a
valid request is still served.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio

from common.protoutil import FAIL_IF_NOT_READY, SeekPosition, sign_envelope
from protos.common import common_pb2
from protos.peer import events_pb2
from tests.support.peer import (
    HOSPITAL_A,
    TIMEOUT_S,
    PeerMaterial,
    StandalonePeer,
    build_peer_material,
    mutate,
    open_channel,
    seek,
    standalone_peer,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

REQUESTS_PER_KIND = 60
WAIT_BOUND_S = 1.0
"""A valid request for future blocks waits; the test stops listening after this."""


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> PeerMaterial:
    return build_peer_material(tmp_path_factory.mktemp("deliver-fuzz-material"))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def peer(
    material: PeerMaterial, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[StandalonePeer]:
    async with standalone_peer(
        material, tmp_path_factory.mktemp("deliver-fuzz")
    ) as peer:
        yield peer


def requests(peer: StandalonePeer, rng: random.Random) -> list[bytes]:
    client = peer.material.user(HOSPITAL_A, "dr-lee")
    valid = seek(
        client,
        start=SeekPosition.oldest(),
        stop=SeekPosition.newest(),
        behavior=FAIL_IF_NOT_READY,
    )
    envelope = common_pb2.Envelope.FromString(valid)
    payload = common_pb2.Payload.FromString(envelope.payload)
    made = [rng.randbytes(rng.randint(0, 200)) for _ in range(REQUESTS_PER_KIND)]
    made += [mutate(valid, rng) for _ in range(REQUESTS_PER_KIND)]
    for _ in range(REQUESTS_PER_KIND):
        changed = common_pb2.Payload(
            header=payload.header, data=mutate(payload.data, rng)
        )
        made.append(
            sign_envelope(changed.SerializeToString(), client.sign).SerializeToString()
        )
    return made


async def ask(
    channel: grpc.aio.Channel, method: str, request: bytes
) -> list[events_pb2.DeliverResponse] | None:
    """One request on its own stream: responses up to its status; None if it waits."""
    call: Any = channel.stream_stream(  # type: ignore[call-arg]
        f"/protos.Deliver/{method}",
        response_deserializer=events_pb2.DeliverResponse.FromString,
    )(timeout=TIMEOUT_S)
    await call.write(request)
    responses: list[events_pb2.DeliverResponse] = []
    try:
        async with asyncio.timeout(WAIT_BOUND_S):
            while True:
                response = await call.read()
                assert isinstance(response, events_pb2.DeliverResponse), response
                responses.append(response)
                if response.WhichOneof("Type") == "status":
                    await call.done_writing()
                    return responses
    except TimeoutError:
        call.cancel()
        return None


@pytest.mark.parametrize(
    "method", ["Deliver", "DeliverFiltered", "DeliverWithPrivateData"]
)
async def test_fuzzed_requests_get_a_status(
    peer: StandalonePeer, seed: int, method: str
) -> None:
    rng = random.Random(seed)
    statuses: dict[int, int] = {}
    async with open_channel(peer.address) as channel:
        for request in requests(peer, rng):
            responses = await ask(channel, method, request)
            status = -1 if responses is None else responses[-1].status
            statuses[status] = statuses.get(status, 0) + 1
        client = peer.material.user(HOSPITAL_A, "dr-lee")
        good = seek(client, start=SeekPosition.oldest(), stop=SeekPosition.newest())
        final = await ask(channel, method, good)
    print(f"method={method} statuses={statuses} (-1: waiting for blocks)")
    assert final is not None
    assert final[-1].status == common_pb2.SUCCESS
    assert len(final) == peer.channel.height() + 1
    assert statuses.get(common_pb2.BAD_REQUEST, 0) >= REQUESTS_PER_KIND
