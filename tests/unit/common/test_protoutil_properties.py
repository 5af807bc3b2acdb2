"""protoutil properties: decode(encode(x)) == x, and parsers fail only with WireError.

Hypothesis draws channel ids, args, transient maps and numbers; the fuzz tests feed
arbitrary bytes and single-byte mutations of valid objects to every parser.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common import protoutil as pu
from common.errors import MalformedIdentity, WireError
from protos.common import common_pb2

# Derandomised so that every run explores the same cases; failures print a reproducer.
PROPERTY = settings(derandomize=True, deadline=None, max_examples=60, database=None)
FUZZ = settings(
    derandomize=True,
    deadline=None,
    max_examples=150,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

channel_ids = st.text(min_size=1, max_size=40)
chaincode_names = st.text(min_size=1, max_size=30)
args_lists = st.lists(st.binary(max_size=64), max_size=6)
transient_maps = st.dictionaries(
    st.text(max_size=12), st.binary(max_size=32), max_size=4
)
uint64s = st.integers(min_value=0, max_value=2**64 - 1)
timestamps = st.builds(
    pu.Timestamp,
    seconds=st.integers(min_value=0, max_value=2**40),
    nanos=st.integers(min_value=0, max_value=999_999_999),
)


def signer(message: bytes) -> bytes:
    return hashlib.sha256(b"key" + message).digest()


@PROPERTY
@given(
    channel_id=channel_ids,
    chaincode_name=chaincode_names,
    args=args_lists,
    transient=transient_maps,
    nonce=st.binary(min_size=1, max_size=32),
    timestamp=timestamps,
    is_init=st.booleans(),
)
def test_proposal_round_trips(
    channel_id: str,
    chaincode_name: str,
    args: list[bytes],
    transient: dict[str, bytes],
    nonce: bytes,
    timestamp: pu.Timestamp,
    is_init: bool,
) -> None:
    creator = pu.serialize_identity("Org1MSP", b"cert")
    created = pu.create_proposal(
        channel_id=channel_id,
        chaincode_name=chaincode_name,
        args=args,
        creator=creator,
        transient=transient,
        nonce=nonce,
        timestamp=timestamp,
        is_init=is_init,
    )
    parsed = pu.parse_signed_proposal(pu.sign_proposal(created.proposal_bytes, signer))
    assert (parsed.channel_id, parsed.chaincode_id.name) == (channel_id, chaincode_name)
    assert (parsed.args, dict(parsed.transient_map)) == (tuple(args), transient)
    assert (parsed.nonce, parsed.creator, parsed.is_init) == (nonce, creator, is_init)
    assert parsed.channel_header.timestamp == timestamp
    assert (
        parsed.tx_id == created.tx_id == pu.compute_tx_id(nonce=nonce, creator=creator)
    )
    without_transient = pu.create_proposal(
        channel_id=channel_id,
        chaincode_name=chaincode_name,
        args=args,
        creator=creator,
        nonce=nonce,
        timestamp=timestamp,
        is_init=is_init,
    )
    assert pu.proposal_hash_of(parsed) == pu.proposal_hash_of(
        pu.parse_proposal(without_transient.proposal_bytes)
    )


@PROPERTY
@given(mspid=st.text(min_size=1, max_size=20), cert=st.binary(min_size=1, max_size=200))
def test_serialized_identity_round_trips(mspid: str, cert: bytes) -> None:
    parsed = pu.parse_serialized_identity(pu.serialize_identity(mspid, cert))
    assert parsed == pu.SerializedIdentity(mspid, cert)


def decode_der_header(der: bytes) -> tuple[int, bytes, bytes]:
    """An independent reader for the header DER: tag, length (short or long), value."""

    def read(data: bytes, offset: int, tag: int) -> tuple[bytes, int]:
        assert data[offset] == tag
        length, offset = data[offset + 1], offset + 2
        if length & 0x80:
            size = length & 0x7F
            length = int.from_bytes(data[offset : offset + size], "big")
            offset += size
        return data[offset : offset + length], offset + length

    body, end = read(der, 0, 0x30)
    assert end == len(der)
    number, offset = read(body, 0, 0x02)
    assert len(number) == 1 or not (number[0] == 0 and number[1] < 0x80), "minimal"
    previous, offset = read(body, offset, 0x04)
    data, offset = read(body, offset, 0x04)
    assert offset == len(body)
    return int.from_bytes(number, "big", signed=True), previous, data


@PROPERTY
@given(number=uint64s, previous=st.binary(max_size=300), data=st.binary(max_size=64))
def test_block_header_der_round_trips(
    number: int, previous: bytes, data: bytes
) -> None:
    der = pu.block_header_bytes(number, previous_hash=previous, data_hash=data)
    assert decode_der_header(der) == (number, previous, data)


@PROPERTY
@given(start=uint64s, stop=uint64s, channel_id=channel_ids, tls=st.binary(max_size=32))
def test_seek_envelope_round_trips(
    start: int, stop: int, channel_id: str, tls: bytes
) -> None:
    envelope = pu.create_seek_envelope(
        channel_id=channel_id,
        start=pu.SeekPosition.specified(start),
        stop=pu.SeekPosition.specified(stop),
        behavior=pu.BLOCK_UNTIL_READY,
        creator=b"creator",
        signer=signer,
        tls_cert_hash=tls,
    )
    parsed = pu.parse_seek_envelope(envelope.SerializeToString())
    assert (parsed.start.number, parsed.stop.number) == (start, stop)
    assert (
        parsed.envelope.channel_id,
        parsed.envelope.channel_header.tls_cert_hash,
    ) == (
        channel_id,
        tls,
    )


@PROPERTY
@given(envelopes=st.lists(st.binary(max_size=40), max_size=5), number=uint64s)
def test_new_block_round_trips(envelopes: list[bytes], number: int) -> None:
    block = pu.new_block(number, previous_hash=b"p", envelopes=envelopes)
    parsed = pu.parse_block(block.SerializeToString())
    assert list(parsed.data.data) == envelopes
    pu.verify_block_data_hash(parsed)


# --- parsers on hostile bytes --------------------------------------------------------

PARSERS: list[Callable[[bytes], object]] = [
    pu.parse_signed_proposal,
    pu.parse_proposal,
    pu.parse_proposal_response,
    pu.parse_proposal_response_payload,
    pu.parse_chaincode_action,
    pu.parse_envelope,
    pu.parse_transaction,
    pu.parse_seek_envelope,
    pu.parse_block,
    pu.parse_tx_rwset,
    pu.parse_channel_header,
    pu.parse_signature_header,
]


def assert_only_wire_errors(data: bytes) -> None:
    for parse in PARSERS:
        with contextlib.suppress(WireError):
            parse(data)
    with contextlib.suppress(MalformedIdentity):
        pu.parse_serialized_identity(data)


@FUZZ
@given(data=st.binary(max_size=200))
def test_parsers_raise_only_wire_errors_on_arbitrary_bytes(data: bytes) -> None:
    assert_only_wire_errors(data)


def valid_samples() -> list[bytes]:
    creator = pu.serialize_identity("Org1MSP", b"cert")
    created = pu.create_proposal(
        channel_id="c",
        chaincode_name="cc",
        args=[b"f", b"x"],
        creator=creator,
        transient={"k": b"v"},
    )
    signed = pu.sign_proposal(created.proposal_bytes, signer)
    parsed = pu.parse_signed_proposal(signed)
    response = pu.create_proposal_response(
        proposal_hash=pu.proposal_hash_of(parsed),
        results=b"\x12\x07\n\x05basic",
        response=pu.ChaincodeResponse(200, "", b"ok"),
        chaincode_id=pu.ChaincodeId("cc", "1"),
        endorser=creator,
        signer=signer,
    )
    payload = pu.create_transaction_envelope(proposal=parsed, responses=[response])
    envelope = pu.sign_envelope(payload, signer).SerializeToString()
    seek = pu.create_seek_envelope(
        channel_id="c",
        start=pu.SeekPosition.oldest(),
        stop=pu.SeekPosition.newest(),
        behavior=pu.BLOCK_UNTIL_READY,
        creator=creator,
        signer=signer,
    ).SerializeToString()
    block = pu.new_block(0, previous_hash=b"", envelopes=[envelope])
    signed_block = pu.sign_block(
        block, signer=signer, creator=creator, last_config_index=0
    )
    return [
        signed.SerializeToString(),
        response.SerializeToString(),
        envelope,
        seek,
        signed_block.SerializeToString(),
    ]


SAMPLES = valid_samples()


@FUZZ
@given(
    sample=st.sampled_from(SAMPLES),
    position=st.integers(min_value=0),
    value=st.integers(min_value=0, max_value=255),
)
def test_parsers_raise_only_wire_errors_on_mutated_objects(
    sample: bytes, position: int, value: int
) -> None:
    """One changed byte in a valid object reaches the deeper layers of each parser."""
    index = position % len(sample)
    mutated = sample[:index] + bytes([value]) + sample[index + 1 :]
    assert_only_wire_errors(mutated)
    assert_only_wire_errors(sample[:index])


def test_parsers_accept_the_unmutated_samples() -> None:
    proposal, response, envelope, seek, block = SAMPLES
    assert pu.parse_signed_proposal(proposal).args == (b"f", b"x")
    assert pu.parse_proposal_response(response).response.status == 200
    assert pu.parse_transaction(
        envelope
    ).chaincode_action.chaincode_id == pu.ChaincodeId("cc", "1")
    assert pu.parse_seek_envelope(seek).start == pu.SeekPosition.oldest()
    assert pu.block_signature_messages(pu.parse_block(block))[0].identity == (
        pu.parse_transaction(envelope).creator
    )
    assert common_pb2.Block.FromString(block).header.number == 0


@PROPERTY
@given(
    length=st.integers(min_value=1, max_value=3_000_000), number=st.integers(1, 2**63)
)
def test_hand_encoded_fields_equal_protobuf(length: int, number: int) -> None:
    """Goal: the varint and length-delimited helpers (deliver responses, the block
    store's writev) encode as protobuf does. Method: compare with upb's own encoding
    of a Payload (field 2, bytes) and a BlockHeader number (field 1, varint)."""
    data = b"\x01" * length
    head = pu.length_delimited_head(2, length)
    assert head + data == common_pb2.Payload(data=data).SerializeToString()
    assert pu.length_delimited_field(2, data) == head + data
    header = common_pb2.BlockHeader(number=number)
    assert b"\x08" + pu.varint(number) == header.SerializeToString()
