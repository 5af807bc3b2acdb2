"""The signature worker process: same verdicts as in process, in order, survives a kill.

Method: one key signs a handful of messages; some signatures are forged (another key,
a flipped byte, garbage). Batches go to a real worker process
(`python -m orderer.signature_worker`) and their verdicts are compared with
`signature_verdicts` computed here. Killing the worker mid-stream must still answer
every batch (here, by the same function) and a later batch starts a new worker.
"""

from __future__ import annotations

import asyncio
import io
import os
import pickle
import signal
import struct
from datetime import UTC, datetime, timedelta

import pytest

from common.crypto import Certificate, PrivateKey
from common.crypto.issue import Subject, issue_ca
from orderer.signature_worker import (
    SignatureItem,
    SignatureWorker,
    serve,
    signature_verdicts,
)


def certificate(key: PrivateKey) -> Certificate:
    now = datetime.now(UTC)
    return issue_ca(
        Subject(common_name="signer"),
        key=key,
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=1),
    )


@pytest.fixture(scope="module")
def items() -> list[SignatureItem]:
    key, other = PrivateKey.generate(), PrivateKey.generate()
    cert = certificate(key).der
    good = [(cert, f"m{i}".encode(), key.sign(f"m{i}".encode())) for i in range(6)]
    flipped = bytearray(key.sign(b"m"))
    flipped[-1] ^= 1
    forged = [
        (cert, b"x", other.sign(b"x")),
        (cert, b"m", bytes(flipped)),
        (cert, b"m", b"not der"),
    ]
    return [
        good[0],
        forged[0],
        good[1],
        good[2],
        forged[1],
        good[3],
        forged[2],
        *good[4:],
    ]


def test_verdicts_name_each_bad_signature_and_pass_the_good(
    items: list[SignatureItem],
) -> None:
    verdicts = signature_verdicts(items)

    assert [v is None for v in verdicts] == [
        True, False, True, True, False, True, False, True, True,
    ]  # fmt: skip
    assert all(isinstance(v, str) and v for v in verdicts if v is not None)


def test_the_worker_loop_answers_each_frame_until_its_input_closes(
    items: list[SignatureItem],
) -> None:
    frames = b""
    for batch in (items[:4], items[4:]):
        body = pickle.dumps(batch)
        frames += struct.pack(">I", len(body)) + body
    out = io.BytesIO()

    serve(io.BytesIO(frames), out)

    answers, data = [], out.getvalue()
    while data:
        (length,) = struct.unpack(">I", data[:4])
        answers.append(pickle.loads(data[4 : 4 + length]))
        data = data[4 + length :]
    assert answers == [signature_verdicts(items[:4]), signature_verdicts(items[4:])]


async def test_batches_verified_in_the_worker_resolve_in_order_as_here(
    items: list[SignatureItem],
) -> None:
    worker = SignatureWorker()
    await worker.start()
    try:
        assert worker.running
        batches = [items[:3], items[3:4], items[4:], items]
        results = await asyncio.gather(*(worker.verify(b) for b in batches))
    finally:
        await worker.close()

    assert results == [signature_verdicts(b) for b in batches]
    assert not worker.running


async def test_a_killed_worker_loses_no_batch_and_a_new_one_starts(
    items: list[SignatureItem],
) -> None:
    worker = SignatureWorker(restart_interval_s=0.0)
    await worker.start()
    try:
        assert worker.pid is not None
        waiting = [worker.verify(items) for _ in range(20)]
        os.kill(worker.pid, signal.SIGKILL)
        results = await asyncio.gather(*waiting)
        assert results == [signature_verdicts(items)] * 20
        assert not worker.running

        # The next batch is verified here and starts a new worker for later ones.
        assert await worker.verify(items[:2]) == signature_verdicts(items[:2])
        async with asyncio.timeout(10):
            assert await worker.started()
        assert await worker.verify(items) == signature_verdicts(items)
    finally:
        await worker.close()
