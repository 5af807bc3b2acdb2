"""common.deliver against a fake channel: statuses, seek positions, waiting, ACL re-checks.

Method: an in-memory `DeliverChannel` whose blocks are plain byte strings; seek
envelopes are signed with a throwaway key (the fake authorizes by creator bytes).
"""

from __future__ import annotations

import asyncio

import pytest

from common.crypto import PrivateKey
from common.deliver import DeliverSettings, deliver
from common.errors import PolicyNotSatisfied
from common.protoutil import (
    BLOCK_UNTIL_READY,
    FAIL_IF_NOT_READY,
    SeekPosition,
    SignedData,
    Timestamp,
    create_seek_envelope,
)
from protos.common import common_pb2

KEY = PrivateKey.generate()
READER = b"reader"
STRANGER = b"stranger"
NOW = 1_700_000_000.0


class FakeChannel:
    def __init__(self, height: int) -> None:
        self.blocks = [f"block-{n}".encode() for n in range(height)]
        self.sequence = 0
        self.readers = {READER}
        self.authorizations = 0
        self._grown = asyncio.Event()

    def height(self) -> int:
        return len(self.blocks)

    def config_sequence(self) -> int:
        return self.sequence

    def authorize(self, signed_data: SignedData) -> float:
        self.authorizations += 1
        if signed_data.identity not in self.readers:
            raise PolicyNotSatisfied("not a reader")
        return NOW + 3600

    async def block_bytes(self, number: int) -> bytes:
        return self.blocks[number]

    async def wait_for_height(self, height: int) -> None:
        while len(self.blocks) < height:
            self._grown.clear()
            await self._grown.wait()

    def append(self) -> None:
        self.blocks.append(f"block-{len(self.blocks)}".encode())
        self._grown.set()


def seek_bytes(
    start: SeekPosition,
    stop: SeekPosition,
    *,
    behavior: int = BLOCK_UNTIL_READY,
    creator: bytes = READER,
    channel: str = "ch",
    sent_s: float = NOW,
    tls_cert_hash: bytes | None = None,
) -> bytes:
    return create_seek_envelope(
        channel_id=channel,
        start=start,
        stop=stop,
        behavior=behavior,
        creator=creator,
        signer=KEY.sign,
        timestamp=Timestamp(int(sent_s)),
        tls_cert_hash=tls_cert_hash,
    ).SerializeToString()


async def run(
    request: bytes,
    channel: FakeChannel,
    *,
    tls_cert_hash: bytes | None = None,
    mutual_tls: bool = False,
) -> tuple[int, list[bytes]]:
    sent: list[bytes] = []

    async def send(data: bytes) -> None:
        sent.append(data)

    status = await deliver(
        request,
        channels=lambda name: channel if name == "ch" else None,
        send_block=send,
        tls_cert_hash=tls_cert_hash,
        settings=DeliverSettings(clock=lambda: NOW, mutual_tls=mutual_tls),
    )
    return status, sent


OLDEST, NEWEST = SeekPosition.oldest(), SeekPosition.newest()
NEXT = SeekPosition.next_commit()


@pytest.mark.parametrize(
    ("start", "stop", "expected"),
    [
        (OLDEST, NEWEST, [0, 1, 2, 3]),
        (OLDEST, OLDEST, [0]),
        (NEWEST, NEWEST, [3]),
        (SeekPosition.specified(1), SeekPosition.specified(2), [1, 2]),
        (SeekPosition.specified(2), NEWEST, [2, 3]),
    ],
)
async def test_seek_positions_select_blocks(
    start: SeekPosition, stop: SeekPosition, expected: list[int]
) -> None:
    status, sent = await run(seek_bytes(start, stop), FakeChannel(4))

    assert status == common_pb2.SUCCESS
    assert sent == [f"block-{n}".encode() for n in expected]


async def test_stop_before_start_is_bad_request() -> None:
    request = seek_bytes(SeekPosition.specified(3), SeekPosition.specified(1))

    assert await run(request, FakeChannel(4)) == (common_pb2.BAD_REQUEST, [])


async def test_fail_if_not_ready_answers_not_found_past_the_height() -> None:
    request = seek_bytes(
        SeekPosition.specified(2),
        SeekPosition.specified(5),
        behavior=FAIL_IF_NOT_READY,
    )

    status, sent = await run(request, FakeChannel(4))

    assert status == common_pb2.NOT_FOUND
    assert sent == [b"block-2", b"block-3"]


async def test_next_commit_waits_for_new_blocks() -> None:
    channel = FakeChannel(2)
    request = seek_bytes(NEXT, SeekPosition.specified(3))
    serving = asyncio.ensure_future(run(request, channel))
    await asyncio.sleep(0)
    assert not serving.done()

    channel.append()
    channel.append()

    assert await asyncio.wait_for(serving, 5) == (
        common_pb2.SUCCESS,
        [b"block-2", b"block-3"],
    )


@pytest.mark.parametrize(
    ("request_options", "status"),
    [
        ({"channel": "other"}, common_pb2.NOT_FOUND),
        ({"creator": STRANGER}, common_pb2.FORBIDDEN),
        ({"sent_s": NOW - 15 * 60 - 1}, common_pb2.BAD_REQUEST),
        ({"sent_s": NOW + 15 * 60 + 1}, common_pb2.BAD_REQUEST),
        ({"tls_cert_hash": b"h" * 32}, common_pb2.BAD_REQUEST),
    ],
)
async def test_rejections(request_options: dict[str, object], status: int) -> None:
    request = seek_bytes(OLDEST, NEWEST, **request_options)  # type: ignore[arg-type]

    assert await run(request, FakeChannel(2)) == (status, [])


async def test_timestamp_inside_the_window_is_accepted() -> None:
    request = seek_bytes(OLDEST, OLDEST, sent_s=NOW - 15 * 60 + 1)

    assert (await run(request, FakeChannel(1)))[0] == common_pb2.SUCCESS


async def test_tls_binding_matches_the_client_certificate_hash() -> None:
    request = seek_bytes(OLDEST, OLDEST, tls_cert_hash=b"h" * 32)

    status, _ = await run(request, FakeChannel(1), tls_cert_hash=b"h" * 32)

    assert status == common_pb2.SUCCESS


async def test_mutual_tls_requires_the_binding() -> None:
    request = seek_bytes(OLDEST, OLDEST)

    status, _ = await run(request, FakeChannel(1), mutual_tls=True)

    assert status == common_pb2.BAD_REQUEST


@pytest.mark.parametrize(
    "request_bytes",
    [b"", b"\xff\xff", common_pb2.Envelope(payload=b"\x0a\x02xx").SerializeToString()],
)
async def test_malformed_requests_are_bad_requests(request_bytes: bytes) -> None:
    assert await run(request_bytes, FakeChannel(1)) == (common_pb2.BAD_REQUEST, [])


async def test_readers_rechecked_when_the_config_changes() -> None:
    channel = FakeChannel(1)
    request = seek_bytes(OLDEST, SeekPosition.specified(2))
    serving = asyncio.ensure_future(run(request, channel))
    await asyncio.sleep(0)
    channel.sequence += 1
    channel.readers.clear()
    channel.append()

    status, sent = await asyncio.wait_for(serving, 5)

    assert status == common_pb2.FORBIDDEN
    assert sent == [b"block-0"]
    assert channel.authorizations == 2
