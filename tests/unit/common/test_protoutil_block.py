"""protoutil: block hashing (DER header), signing, chains, filters and seek envelopes.

DER expectations are hand-written hex here and, in tests/vectors, output of OpenSSL's
independent ASN.1 generator plus one header hash observed on a Fabric 2.5 network.
"""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime

import pytest

from common import protoutil as pu
from common.crypto import PrivateKey
from common.errors import WireError
from protos.common import common_pb2
from protos.orderer import ab_pb2
from tests.unit.common.protoutil_vectors import fake_signer, load_vector

ORDERER = pu.serialize_identity("OrdererMSP", b"orderer0")
CLIENT = pu.serialize_identity("Org1MSP", b"user1")
EMPTY_SHA256 = hashlib.sha256(b"").digest()


# --- DER header encoding ------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "integer_hex"),
    [
        (0, "020100"),
        (1, "020101"),
        (127, "02017f"),
        (128, "02020080"),
        (255, "020200ff"),
        (256, "02020100"),
        (2**63 - 1, "02087fffffffffffffff"),
        (2**63, "0209008000000000000000"),
        (2**64 - 1, "020900ffffffffffffffff"),
    ],
)
def test_header_der_integer_is_minimal_twos_complement(
    number: int, integer_hex: str
) -> None:
    """Worked by hand: a leading 00 appears exactly when the top bit is set."""
    der = pu.block_header_bytes(number, previous_hash=b"", data_hash=b"")
    content = integer_hex + "0400" + "0400"
    assert der.hex() == "30" + f"{len(content) // 2:02x}" + content


def test_header_der_with_32_byte_hashes() -> None:
    previous, data = b"\xab" * 32, b"\xcd" * 32
    der = pu.block_header_bytes(1, previous_hash=previous, data_hash=data)
    assert der.hex() == "3047" + "020101" + "0420" + "ab" * 32 + "0420" + "cd" * 32


def test_header_der_uses_long_form_lengths() -> None:
    der = pu.block_header_bytes(5, previous_hash=b"\xcd" * 200, data_hash=b"")
    # 3 (integer) + 3 + 200 (octet string, length 81 c8) + 2 = 208 = 0xd0 content bytes.
    assert der[:3].hex() == "3081d0"
    assert der[3:9].hex() == "0201050481c8"


def test_header_der_matches_openssl_vectors() -> None:
    for case in load_vector("protoutil_block_header.json")["cases"]:
        der = pu.block_header_bytes(
            int(case["number"]),
            previous_hash=bytes.fromhex(case["previous_hash"]),
            data_hash=bytes.fromhex(case["data_hash"]),
        )
        assert der.hex() == case["der"], case["number"]
        header = common_pb2.BlockHeader(
            number=int(case["number"]),
            previous_hash=bytes.fromhex(case["previous_hash"]),
            data_hash=bytes.fromhex(case["data_hash"]),
        )
        assert pu.block_header_hash(header).hex() == case["hash"]


def test_header_hash_matches_a_fabric_network() -> None:
    fabric = load_vector("protoutil_block_header.json")["fabric_network"]
    header = common_pb2.BlockHeader(
        number=int(fabric["number"]),
        previous_hash=bytes.fromhex(fabric["previous_hash"]),
        data_hash=bytes.fromhex(fabric["data_hash"]),
    )
    assert pu.block_header_hash(header).hex() == fabric["hash"]


@pytest.mark.parametrize("number", [-1, 2**64])
def test_header_number_outside_uint64_is_refused(number: int) -> None:
    with pytest.raises(ValueError, match="uint64"):
        pu.block_header_bytes(number, previous_hash=b"", data_hash=b"")


# --- blocks ------------------------------------------------------------


def test_data_hash_is_sha256_of_plain_concatenation() -> None:
    assert pu.block_data_hash([b"ab", b"c"]) == hashlib.sha256(b"abc").digest()
    assert pu.block_data_hash([]) == EMPTY_SHA256


def test_new_block_layout() -> None:
    block = pu.new_block(3, previous_hash=b"p" * 32, envelopes=[b"e1", b"e2"])
    assert block.header.number == 3
    assert block.header.previous_hash == b"p" * 32
    assert block.header.data_hash == hashlib.sha256(b"e1e2").digest()
    assert list(block.data.data) == [b"e1", b"e2"]
    assert list(block.metadata.metadata) == [b""] * 5


def chain(length: int) -> list[common_pb2.Block]:
    blocks = [pu.new_block(0, previous_hash=b"", envelopes=[b"genesis"])]
    for number in range(1, length):
        previous = pu.block_header_hash(blocks[-1].header)
        envelopes = [f"tx{number}".encode()]
        blocks.append(pu.new_block(number, previous_hash=previous, envelopes=envelopes))
    return blocks


def test_hash_chain_verifies_block_by_block() -> None:
    blocks = chain(4)
    for previous, block in itertools.pairwise(blocks):
        pu.verify_block_hash_chain(previous, block)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("number", 3, "does not follow"),
        ("previous_hash", b"\x00" * 32, "previous hash"),
        ("data_hash", b"\x00" * 32, "data hash"),
    ],
)
def test_hash_chain_rejects_one_changed_field(
    field: str, value: object, message: str
) -> None:
    genesis, block = chain(2)
    setattr(block.header, field, value)
    with pytest.raises(WireError, match=message):
        pu.verify_block_hash_chain(genesis, block)


def test_hash_chain_rejects_changed_data() -> None:
    genesis, block = chain(2)
    block.data.data.append(b"smuggled")
    with pytest.raises(WireError, match="data hash"):
        pu.verify_block_hash_chain(genesis, block)


def test_sign_block_writes_fabric_metadata_layout() -> None:
    block = pu.new_block(7, previous_hash=b"p" * 32, envelopes=[b"e"])
    signed = pu.sign_block(
        block,
        signer=fake_signer(b"orderer"),
        creator=ORDERER,
        last_config_index=4,
        consenter_metadata=b"raft",
        nonce=b"n" * 24,
    )
    assert list(block.metadata.metadata) == [b""] * 5, "the argument is left alone"
    metadata = common_pb2.Metadata.FromString(
        signed.metadata.metadata[common_pb2.SIGNATURES]
    )
    value = common_pb2.OrdererBlockMetadata.FromString(metadata.value)
    assert value.last_config.index == 4
    assert common_pb2.Metadata.FromString(value.consenter_metadata).value == b"raft"
    (signature,) = metadata.signatures
    header = common_pb2.SignatureHeader.FromString(signature.signature_header)
    assert (header.creator, header.nonce) == (ORDERER, b"n" * 24)
    der = pu.block_header_bytes(
        7, previous_hash=b"p" * 32, data_hash=block.header.data_hash
    )
    signed_message = metadata.value + signature.signature_header + der
    assert signature.signature == fake_signer(b"orderer")(signed_message)
    last_config = common_pb2.Metadata.FromString(
        signed.metadata.metadata[common_pb2.LAST_CONFIG]
    )
    assert common_pb2.LastConfig.FromString(last_config.value).index == 4
    assert pu.last_config_index(signed) == 4
    assert pu.block_signature_messages(signed) == (
        pu.SignedData(signed_message, ORDERER, signature.signature),
    )


def test_block_signature_messages_need_the_signatures_metadata() -> None:
    block = pu.new_block(1, previous_hash=b"", envelopes=[])
    with pytest.raises(WireError, match="SIGNATURES metadata is missing"):
        pu.block_signature_messages(block)
    block.metadata.metadata[common_pb2.SIGNATURES] = b"\xff"
    with pytest.raises(WireError, match="SIGNATURES metadata"):
        pu.block_signature_messages(block)


def test_block_signature_with_real_key_verifies() -> None:
    key = PrivateKey.generate()
    block = pu.new_block(2, previous_hash=b"p" * 32, envelopes=[b"e"])
    signed = pu.sign_block(block, signer=key.sign, creator=ORDERER, last_config_index=0)
    (check,) = pu.block_signature_messages(signed)
    key.public_key.verify(check.signature, check.message)


def test_transaction_filter_set_and_get() -> None:
    block = pu.new_block(1, previous_hash=b"", envelopes=[b"a", b"b", b"c"])
    assert pu.transaction_filter(block) == ()
    validated = pu.with_transaction_filter(block, [0, 11, 255])
    assert pu.transaction_filter(validated) == (0, 11, 255)
    assert validated.metadata.metadata[common_pb2.TRANSACTIONS_FILTER] == bytes(
        [0, 11, 255]
    )
    assert pu.transaction_filter(block) == (), "the argument is left alone"


def test_transaction_filter_length_must_match() -> None:
    block = pu.new_block(1, previous_hash=b"", envelopes=[b"a", b"b"])
    with pytest.raises(ValueError, match="2 transactions"):
        pu.with_transaction_filter(block, [0])
    with pytest.raises(ValueError, match="one byte"):
        pu.with_transaction_filter(block, [0, 256])
    block.metadata.metadata[common_pb2.TRANSACTIONS_FILTER] = b"\x00"
    with pytest.raises(WireError, match="1 entries for 2 transactions"):
        pu.transaction_filter(block)


def test_metadata_is_padded_to_five_slots_when_short() -> None:
    block = common_pb2.Block()
    block.header.number = 1
    signed = pu.with_transaction_filter(block, [])
    assert len(signed.metadata.metadata) == 5


def test_parse_block_round_trips_and_needs_a_header() -> None:
    block = pu.new_block(9, previous_hash=b"p", envelopes=[b"e"])
    assert pu.parse_block(block.SerializeToString()) == block
    with pytest.raises(WireError, match="header is missing"):
        pu.parse_block(b"")


# --- deliver seek envelopes --------------------------------------------


def test_seek_envelope_is_byte_identical_to_the_node_client() -> None:
    vector = load_vector("protoutil_node_client.json")
    theirs = pu.parse_seek_envelope(bytes.fromhex(vector["block_events_envelope"]))
    start = vector["request"]["startBlock"]
    assert theirs.start == pu.SeekPosition.specified(start)
    assert theirs.stop == pu.SeekPosition.specified(2**53 - 1)
    assert theirs.behavior == pu.BLOCK_UNTIL_READY
    assert theirs.envelope.signature_header.nonce == b""
    ours = pu.create_seek_envelope(
        channel_id=vector["request"]["channel"],
        start=pu.SeekPosition.specified(start),
        stop=pu.SeekPosition.specified(2**53 - 1),
        behavior=pu.BLOCK_UNTIL_READY,
        creator=theirs.envelope.creator,
        signer=fake_signer(b"client"),
        timestamp=theirs.envelope.channel_header.timestamp,
    )
    assert ours.payload == theirs.envelope.payload_bytes


@pytest.mark.parametrize(
    "position",
    [
        pu.SeekPosition.oldest(),
        pu.SeekPosition.newest(),
        pu.SeekPosition.next_commit(),
        pu.SeekPosition.specified(2**64 - 1),
    ],
)
def test_seek_envelope_round_trips(position: pu.SeekPosition) -> None:
    envelope = pu.create_seek_envelope(
        channel_id="records",
        start=position,
        stop=pu.SeekPosition.newest(),
        behavior=pu.FAIL_IF_NOT_READY,
        creator=CLIENT,
        signer=fake_signer(b"client"),
        tls_cert_hash=b"t" * 32,
        timestamp=pu.Timestamp(1_700_000_000, 5),
        content_type=pu.CONTENT_HEADER_WITH_SIG,
    )
    parsed = pu.parse_seek_envelope(envelope.SerializeToString())
    assert (parsed.start, parsed.stop) == (position, pu.SeekPosition.newest())
    assert (parsed.behavior, parsed.error_response, parsed.content_type) == (
        pu.FAIL_IF_NOT_READY,
        pu.STRICT,
        pu.CONTENT_HEADER_WITH_SIG,
    )
    header = parsed.envelope.channel_header
    assert (header.type, header.channel_id, header.tx_id) == (
        common_pb2.DELIVER_SEEK_INFO,
        "records",
        "",
    )
    assert (header.tls_cert_hash, header.timestamp) == (
        b"t" * 32,
        pu.Timestamp(1_700_000_000, 5),
    )
    assert parsed.envelope.signature == fake_signer(b"client")(
        parsed.envelope.payload_bytes
    )


def test_seek_envelope_needs_start_and_stop() -> None:
    seek_info = ab_pb2.SeekInfo(start=ab_pb2.SeekPosition(oldest=ab_pb2.SeekOldest()))
    channel_header = pu.channel_header_bytes(
        header_type=common_pb2.DELIVER_SEEK_INFO, channel_id="c"
    )
    header = pu.header_bytes(
        channel_header=channel_header,
        signature_header=pu.signature_header_bytes(creator=CLIENT),
    )
    payload = pu.payload_bytes(header=header, data=seek_info.SerializeToString())
    with pytest.raises(WireError, match="stop position is missing"):
        pu.parse_seek_envelope(common_pb2.Envelope(payload=payload))


def test_seek_envelope_of_wrong_type_is_refused() -> None:
    channel_header = pu.channel_header_bytes(
        header_type=common_pb2.MESSAGE, channel_id="c"
    )
    header = pu.header_bytes(
        channel_header=channel_header,
        signature_header=pu.signature_header_bytes(creator=CLIENT),
    )
    envelope = common_pb2.Envelope(payload=pu.payload_bytes(header=header, data=b""))
    with pytest.raises(WireError, match="not DELIVER_SEEK_INFO"):
        pu.parse_seek_envelope(envelope)


def test_block_time_is_the_last_decodable_transaction_time() -> None:
    def seek(seconds: int) -> bytes:
        return pu.create_seek_envelope(
            channel_id="records",
            start=pu.SeekPosition.oldest(),
            stop=pu.SeekPosition.newest(),
            behavior=pu.BLOCK_UNTIL_READY,
            creator=b"creator",
            signer=fake_signer(b"client"),
            timestamp=pu.Timestamp(seconds=seconds),
        ).SerializeToString()

    block = pu.new_block(
        3, previous_hash=b"", envelopes=[seek(1_700_000_000), seek(1_700_000_060)]
    )
    assert pu.block_time(block) == datetime(2023, 11, 14, 22, 14, 20, tzinfo=UTC)
    block.data.data.append(b"\xff not an envelope")
    assert pu.block_time(block) == datetime(2023, 11, 14, 22, 14, 20, tzinfo=UTC)
    assert pu.block_time(pu.new_block(4, previous_hash=b"", envelopes=[])) is None
