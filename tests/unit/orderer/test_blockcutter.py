"""Block cutting follows Fabric's receiver: count, preferred bytes, oversize isolation.

Method: feed envelopes of known sizes to a cutter and compare the batches it returns.
"""

from __future__ import annotations

from common.channelconfig import BatchSize
from orderer.blockcutter import BlockCutter


def cutter(count: int = 3, preferred: int = 100) -> BlockCutter:
    return BlockCutter(BatchSize(count, 1000, preferred))


def envelope(size: int, tag: int = 0) -> bytes:
    return bytes([tag]) * size


def test_pending_until_max_message_count_then_cut() -> None:
    subject = cutter(count=3)

    assert subject.ordered(envelope(10, 1)) == ([], True)
    assert subject.ordered(envelope(10, 2)) == ([], True)
    batches, pending = subject.ordered(envelope(10, 3))

    assert batches == [[envelope(10, 1), envelope(10, 2), envelope(10, 3)]]
    assert pending is False
    assert subject.pending_count == 0


def test_envelope_overflowing_preferred_bytes_cuts_pending_first() -> None:
    subject = cutter(count=10, preferred=100)
    subject.ordered(envelope(60, 1))

    batches, pending = subject.ordered(envelope(50, 2))

    assert batches == [[envelope(60, 1)]]
    assert pending is True
    assert subject.cut() == [envelope(50, 2)]


def test_exactly_preferred_bytes_fits() -> None:
    subject = cutter(count=10, preferred=100)
    subject.ordered(envelope(60, 1))

    assert subject.ordered(envelope(40, 2)) == ([], True)


def test_oversize_envelope_goes_alone_after_the_pending_batch() -> None:
    subject = cutter(count=10, preferred=100)
    subject.ordered(envelope(10, 1))

    batches, pending = subject.ordered(envelope(101, 2))

    assert batches == [[envelope(10, 1)], [envelope(101, 2)]]
    assert pending is False


def test_oversize_envelope_with_nothing_pending_is_one_batch() -> None:
    assert cutter(preferred=100).ordered(envelope(500)) == ([[envelope(500)]], False)


def test_isolate_cuts_pending_then_the_config_envelope_alone() -> None:
    subject = cutter()
    subject.ordered(envelope(5, 1))

    assert subject.isolate(envelope(5, 9)) == [[envelope(5, 1)], [envelope(5, 9)]]
    assert subject.isolate(envelope(5, 8)) == [[envelope(5, 8)]]


def test_cut_of_empty_batch_is_empty() -> None:
    assert cutter().cut() == []


def test_every_envelope_lands_in_exactly_one_batch_in_order() -> None:
    """A long mixed stream: concatenated batches + the final cut = the input."""
    subject = cutter(count=4, preferred=100)
    stream = [
        envelope(size, tag % 256) for tag, size in enumerate([7, 90, 3, 120] * 25)
    ]
    out: list[bytes] = []
    for item in stream:
        batches, _ = subject.ordered(item)
        for batch in batches:
            assert 0 < len(batch) <= 4
            assert len(batch) == 1 or sum(map(len, batch)) <= 100
            out.extend(batch)
    out.extend(subject.cut())

    assert out == stream
