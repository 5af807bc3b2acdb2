"""The etcd backend's pure parts, without etcd: the envelope table, size limits, keys,
election records, forwarding MACs and the consenter check."""

from __future__ import annotations

import asyncio
import time

import pytest

from common.channelconfig import Consenter
from orderer.consensus.etcd_cutter import (
    split_for_value_limit,
)
from orderer.consensus.etcd_election import CutterInfo
from orderer.consensus.etcd_forward import forward_mac
from orderer.consensus.etcd_log import (
    ChannelKeys,
    heights_floor,
)
from orderer.consensus.etcd_pending import (
    EnvelopeTable,
    envelope_digest,
)
from orderer.consensus.etcd_routing import answer_forwarded
from orderer.consensus.etcd_settings import is_consenter
from orderer.consensus.etcd_types import EtcdError, prefix_end
from orderer.errors import BackendUnavailable


def table(
    *,
    capacity: int = 100,
    window_s: float = 60.0,
    envelopes_max: int = 1000,
    clock: object = time.monotonic,
) -> EnvelopeTable:
    return EnvelopeTable(
        capacity=capacity,
        window_s=window_s,
        envelopes_max=envelopes_max,
        clock=clock,  # type: ignore[arg-type]
    )


# --- the envelope table -----------------------------------------------------------


async def test_the_same_envelope_is_one_entry_and_queued_once() -> None:
    pending = table()

    first = pending.admit(b"envelope", local=False)
    again = pending.admit(b"envelope", local=True)

    assert first is again
    assert first.local
    assert [e.envelope for e in pending.take(count_max=10, bytes_max=100)] == [
        b"envelope"
    ]
    assert pending.take(count_max=10, bytes_max=100) == []


async def test_admission_stops_at_capacity() -> None:
    pending = table(capacity=2)
    pending.admit(b"a", local=True)
    pending.admit(b"b", local=True)

    with pytest.raises(BackendUnavailable):
        pending.admit(b"c", local=True)


async def test_take_respects_count_and_bytes_but_always_takes_one() -> None:
    pending = table()
    for envelope in (b"x" * 50, b"y" * 50, b"z" * 50):
        pending.admit(envelope, local=True)

    first = pending.take(count_max=10, bytes_max=120)
    second = pending.take(count_max=1, bytes_max=10)

    assert [len(e.envelope) for e in first] == [50, 50]
    assert [e.envelope for e in second] == [b"z" * 50]


async def test_a_stored_block_resolves_its_envelopes_and_is_remembered() -> None:
    pending = table()
    entry = pending.admit(b"tx", local=True)

    pending.block_stored(7, [b"tx", b"other"])

    assert entry.future.result() == 7
    assert len(pending) == 0
    assert pending.block_of(envelope_digest(b"other")) == 7
    pending.requeue(entry)
    assert pending.take(count_max=10, bytes_max=100) == []


async def test_recent_blocks_are_forgotten_after_the_window() -> None:
    now = [0.0]
    pending = table(window_s=10, clock=lambda: now[0])
    pending.block_stored(1, [b"old"])
    now[0] = 11.0
    pending.block_stored(2, [b"new"])

    assert pending.block_of(envelope_digest(b"old")) is None
    assert pending.block_of(envelope_digest(b"new")) == 2


async def test_recent_blocks_are_capped_but_the_last_block_is_kept() -> None:
    pending = table(envelopes_max=2)
    pending.block_stored(1, [b"a", b"b"])
    pending.block_stored(2, [b"c", b"d", b"e"])

    assert pending.block_of(envelope_digest(b"a")) is None
    assert pending.block_of(envelope_digest(b"e")) == 2


async def test_failing_an_entry_reaches_its_waiter_and_discard_spares_local_ones() -> (
    None
):
    pending = table()
    local = pending.admit(b"local", local=True)
    remote = pending.admit(b"remote", local=False)

    pending.fail(local, BackendUnavailable("gone"))
    pending.discard(remote)
    pending.discard(pending.admit(b"mine", local=True))

    with pytest.raises(BackendUnavailable):
        await local.future
    assert remote.future.cancelled()
    assert len(pending) == 1


# --- limits, keys, records --------------------------------------------------------


def test_envelopes_are_split_into_runs_under_the_budget() -> None:
    runs = split_for_value_limit(
        [b"a" * 4, b"b" * 4, b"c" * 9, b"d" * 1], budget=8, size=len
    )

    assert [[len(e) for e in run] for run in runs] == [[4, 4], [9], [1]]
    assert split_for_value_limit([], budget=8, size=len) == []


def test_the_prune_floor_is_the_lowest_height_minus_the_retention() -> None:
    assert heights_floor({"a": 100, "b": 40, "c": 90}, retention_blocks=10) == 30
    assert heights_floor({"a": 5}, retention_blocks=10) == 0
    assert heights_floor({}, retention_blocks=10) == 0


def test_block_keys_sort_in_number_order_and_parse_back() -> None:
    keys = ChannelKeys.under("/svc/", "records")
    numbers = [0, 9, 10, 99, 100, 2**63]

    encoded = [keys.block(n) for n in numbers]

    assert encoded == sorted(encoded)
    assert [keys.block_number(key) for key in encoded] == numbers
    assert keys.height == b"/svc/records/height"
    with pytest.raises(ValueError, match="not a block key"):
        ChannelKeys("other").block_number(encoded[0])
    with pytest.raises(ValueError, match="malformed"):
        keys.block_number(keys.blocks_prefix + b"12x")


def test_prefix_end_is_the_first_key_after_the_prefix() -> None:
    assert prefix_end(b"/a/b/") == b"/a/b0"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff\xff") == b"\x00"


def test_cutter_records_round_trip_and_garbage_is_refused() -> None:
    record = CutterInfo(orderer_name="orderer1", forward_address="10.0.0.2:7050")

    assert CutterInfo.decode(record.encode()) == record
    with pytest.raises(EtcdError):
        CutterInfo.decode(b"\xff\xff\xff")
    with pytest.raises(EtcdError, match="names no orderer"):
        CutterInfo.decode(b"")


def test_the_forward_mac_covers_channel_and_every_envelope_boundary() -> None:
    key = bytes(32)
    base = forward_mac(key, "ch", [b"ab", b"c"])

    assert forward_mac(key, "ch", [b"ab", b"c"]) == base
    assert forward_mac(key, "ch", [b"a", b"bc"]) != base
    assert forward_mac(key, "ch2", [b"ab", b"c"]) != base
    assert forward_mac(bytes([1]) * 32, "ch", [b"ab", b"c"]) != base
    sequenced = forward_mac(key, "ch", [b"ab", b"c"], config_sequences=[1, 2])
    assert sequenced not in {
        base,
        forward_mac(key, "ch", [b"ab", b"c"], config_sequences=[2, 1]),
    }


def pem(body: str) -> bytes:
    lines = "\n".join(body[i : i + 8] for i in range(0, len(body), 8))
    return f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n".encode()


def test_consenters_are_recognised_by_their_tls_certificate() -> None:
    consenters = [
        Consenter(
            host="o1",
            port=7050,
            client_tls_cert=pem("CLIENTAA"),
            server_tls_cert=pem("ONEONEONE"),
        ),
        Consenter(
            host="o2", port=7050, client_tls_cert=b"", server_tls_cert=pem("TWOTWO")
        ),
    ]
    chained = pem("TWOTWO") + pem("INTERMEDIATE")
    rewrapped = (
        b"-----BEGIN CERTIFICATE-----\r\nONEONE\r\nONE\r\n-----END CERTIFICATE-----"
    )

    assert is_consenter(consenters, chained)
    assert is_consenter(consenters, rewrapped)
    assert not is_consenter(consenters, pem("STRANGER"))
    assert is_consenter([], pem("STRANGER"))
    assert is_consenter(consenters, None)


async def test_a_wake_without_work_wakes_one_wait_and_later_waits_block_again() -> None:
    """Waking (a term ended) must not leave the queue looking busy: no spinning."""
    pending = table()
    pending.wake()

    woken = await pending.wait_for_work(5)
    started = time.monotonic()
    later = await pending.wait_for_work(0.05)

    assert (woken, later) == (False, False)
    assert time.monotonic() - started >= 0.04


async def test_local_envelopes_overdue_fail_and_forwarded_ones_do_not() -> None:
    """Admitted at 0 and 5 s; a sweep at 12 s with a 10 s limit fails only the first."""
    now = [0.0]
    pending = table(clock=lambda: now[0])
    old = pending.admit(b"old", local=True, config_sequence=3)
    forwarded = pending.admit(b"forwarded", local=False)
    now[0] = 5.0
    recent = pending.admit(b"recent", local=True)
    again = pending.admit(b"old", local=True, config_sequence=2)
    now[0] = 12.0

    failed = pending.fail_overdue(age_s=10.0, error=lambda: BackendUnavailable("late"))

    assert failed == 1
    assert again is old
    assert old.config_sequence == 2
    assert isinstance(old.future.exception(), BackendUnavailable)
    assert not recent.is_done
    assert not forwarded.is_done


async def test_a_forward_admits_each_envelope_with_its_senders_config_sequence() -> (
    None
):
    """The cutter's table records what the follower checked against (or nothing)."""
    pending = table()
    term_ended = asyncio.Event()
    answering = [
        asyncio.create_task(
            answer_forwarded(
                pending,
                envelopes,
                config_sequences=sequences,
                term_ended=term_ended,
                timeout_s=5.0,
            )
        )
        for envelopes, sequences in (([b"E1", b"E2"], [4, 5]), ([b"E3"], []))
    ]

    assert await pending.wait_for_work(5.0)
    queued = {
        entry.envelope: entry.config_sequence
        for entry in pending.take(count_max=10, bytes_max=100)
    }
    term_ended.set()
    await asyncio.gather(*answering)

    assert queued == {b"E1": 4, b"E2": 5, b"E3": None}
