"""Blocks: creating, hashing, signing and chaining them, and the per-transaction filter.

Order and commit. data_hash = SHA-256 of the concatenated envelopes; the header hash is
SHA-256 of DER SEQUENCE{number, previous_hash, data_hash}; the orderer signs
metadata value ‖ its signature header ‖ that DER header. Functions that change a block
return a changed copy and leave their argument alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from common.errors import WireError
from common.protoutil._der import der_integer, der_octet_string, der_sequence
from common.protoutil._wire import SignedData, Signer, decode, encode, sha256
from common.protoutil.header import signature_header_bytes
from common.protoutil.txid import new_nonce
from protos.common import common_pb2

METADATA_ENTRY_COUNT = 5
"""Metadata slots Fabric initialises per block: SIGNATURES … COMMIT_HASH."""

_UINT64_LIMIT = 1 << 64
_TX_CODE_MAX = 0xFF


def block_data_hash(data: Sequence[bytes]) -> bytes:
    """SHA-256 over the plain concatenation of the envelopes (not a Merkle tree).

    Hashed piece by piece: a block's data is megabytes, and joining it first
    costs a fresh buffer (page faults) on every block appended or received.
    """
    digest = hashlib.sha256()
    for envelope in data:
        digest.update(envelope)
    return digest.digest()


def block_header_bytes(number: int, *, previous_hash: bytes, data_hash: bytes) -> bytes:
    """DER SEQUENCE{INTEGER number, OCTET STRING previous_hash, OCTET STRING data_hash}.

    Raises:
        ValueError: the number is outside uint64.
    """
    if not 0 <= number < _UINT64_LIMIT:
        raise ValueError(f"block number {number} is outside uint64")
    return der_sequence(
        der_integer(number),
        der_octet_string(previous_hash),
        der_octet_string(data_hash),
    )


def block_header_hash(header: common_pb2.BlockHeader) -> bytes:
    """SHA-256 of the header's DER encoding; the next block's previous_hash."""
    return sha256(_header_der(header))


def new_block(
    number: int, *, previous_hash: bytes, envelopes: Sequence[bytes]
) -> common_pb2.Block:
    """An unsigned block of `envelopes` (marshaled Envelopes) and 5 empty metadata."""
    block = common_pb2.Block()
    block.header.number = number
    block.header.previous_hash = previous_hash
    block.header.data_hash = block_data_hash(envelopes)
    block.data.data.extend(envelopes)
    block.metadata.metadata.extend([b""] * METADATA_ENTRY_COUNT)
    return block


def sign_block(
    block: common_pb2.Block,
    *,
    signer: Signer,
    creator: bytes,
    last_config_index: int,
    consenter_metadata: bytes = b"",
    nonce: bytes | None = None,
) -> common_pb2.Block:
    """A copy of `block` with the orderer's signature and last-config index in metadata.

    SIGNATURES gets Metadata{value = OrdererBlockMetadata{last_config,
    consenter_metadata = Metadata{value = consenter_metadata}}, one MetadataSignature
    by `creator` over value ‖ signature header ‖ DER header}; LAST_CONFIG gets
    Metadata{value = LastConfig}. A fresh nonce is drawn unless given.
    """
    signature_header = signature_header_bytes(
        creator=creator, nonce=new_nonce() if nonce is None else nonce
    )
    value = encode(
        common_pb2.OrdererBlockMetadata(
            last_config=common_pb2.LastConfig(index=last_config_index),
            consenter_metadata=encode(common_pb2.Metadata(value=consenter_metadata)),
        )
    )
    signature = signer(value + signature_header + _header_der(block.header))
    signatures = common_pb2.Metadata(
        value=value,
        signatures=[
            common_pb2.MetadataSignature(
                signature_header=signature_header, signature=signature
            )
        ],
    )
    last_config = common_pb2.Metadata(
        value=encode(common_pb2.LastConfig(index=last_config_index))
    )
    signed = _copy_with_full_metadata(block)
    signed.metadata.metadata[common_pb2.SIGNATURES] = encode(signatures)
    signed.metadata.metadata[common_pb2.LAST_CONFIG] = encode(last_config)
    return signed


def block_signature_messages(block: common_pb2.Block) -> tuple[SignedData, ...]:
    """What to verify, against the BlockValidation policy, for each orderer signature.

    Each message is metadata value ‖ signature header ‖ DER header; the identity is the
    creator in that signature header. Signatures that carry only a BFT identifier header
    (Fabric 3) are not supported.

    Raises:
        WireError: the SIGNATURES metadata is missing or a layer does not decode.
    """
    metadata = _signatures_metadata(block)
    header_der = _header_der(block.header)
    signed: list[SignedData] = []
    for index, item in enumerate(metadata.signatures):
        what = f"block {block.header.number} signature {index} signature header"
        if not item.signature_header:
            raise WireError(f"{what} is missing (identifier headers are not supported)")
        header = decode(common_pb2.SignatureHeader, item.signature_header, what=what)
        signed.append(
            SignedData(
                message=metadata.value + item.signature_header + header_der,
                identity=header.creator,
                signature=item.signature,
            )
        )
    return tuple(signed)


def last_config_index(block: common_pb2.Block) -> int:
    """The last-config block number recorded in the SIGNATURES metadata.

    Raises:
        WireError: the metadata is missing or does not decode.
    """
    metadata = _signatures_metadata(block)
    orderer_metadata = decode(
        common_pb2.OrdererBlockMetadata,
        metadata.value,
        what=f"block {block.header.number} OrdererBlockMetadata",
    )
    return orderer_metadata.last_config.index


def transaction_filter(block: common_pb2.Block) -> tuple[int, ...]:
    """The TxValidationCode of each transaction; empty before validation.

    Raises:
        WireError: the filter's length is not the number of transactions.
    """
    metadata = block.metadata.metadata
    if len(metadata) <= common_pb2.TRANSACTIONS_FILTER:
        return ()
    flags = metadata[common_pb2.TRANSACTIONS_FILTER]
    if flags and len(flags) != len(block.data.data):
        raise WireError(
            f"block {block.header.number} transaction filter has {len(flags)} entries "
            f"for {len(block.data.data)} transactions"
        )
    return tuple(flags)


def with_transaction_filter(
    block: common_pb2.Block, codes: Sequence[int]
) -> common_pb2.Block:
    """A copy of `block` whose TRANSACTIONS_FILTER holds one code byte per transaction.

    Raises:
        ValueError: not one code per transaction, or a code above 255.
    """
    if len(codes) != len(block.data.data):
        raise ValueError(
            f"{len(codes)} validation codes for {len(block.data.data)} transactions"
        )
    if any(not 0 <= code <= _TX_CODE_MAX for code in codes):
        raise ValueError(f"validation codes must fit in one byte: {list(codes)}")
    updated = _copy_with_full_metadata(block)
    updated.metadata.metadata[common_pb2.TRANSACTIONS_FILTER] = bytes(codes)
    return updated


def verify_block_data_hash(block: common_pb2.Block) -> None:
    """Raise WireError unless header.data_hash is the hash of the block's data."""
    if block.header.data_hash != block_data_hash(block.data.data):
        raise WireError(
            f"block {block.header.number} data hash does not match its data"
        )


def verify_block_hash_chain(
    previous_block: common_pb2.Block, block: common_pb2.Block
) -> None:
    """Raise WireError unless `block` follows `previous_block`.

    It must carry the next number, the previous header's hash, and a data hash that
    matches its own data.
    """
    expected_number = previous_block.header.number + 1
    if block.header.number != expected_number:
        raise WireError(
            f"block number {block.header.number} does not follow {expected_number - 1}"
        )
    if block.header.previous_hash != block_header_hash(previous_block.header):
        raise WireError(
            f"block {block.header.number} previous hash is not the hash of "
            f"block {previous_block.header.number}"
        )
    verify_block_data_hash(block)


def parse_block(data: bytes) -> common_pb2.Block:
    """Decode Block bytes; a block without a header is rejected.

    Raises:
        WireError: the bytes do not decode or the header is missing.
    """
    block = decode(common_pb2.Block, data, what="block")
    if not block.HasField("header"):
        raise WireError("block header is missing")
    return block


def _header_der(header: common_pb2.BlockHeader) -> bytes:
    return block_header_bytes(
        header.number, previous_hash=header.previous_hash, data_hash=header.data_hash
    )


def _signatures_metadata(block: common_pb2.Block) -> common_pb2.Metadata:
    what = f"block {block.header.number} SIGNATURES metadata"
    entries = block.metadata.metadata
    if len(entries) <= common_pb2.SIGNATURES or not entries[common_pb2.SIGNATURES]:
        raise WireError(f"{what} is missing")
    return decode(common_pb2.Metadata, entries[common_pb2.SIGNATURES], what=what)


def _copy_with_full_metadata(block: common_pb2.Block) -> common_pb2.Block:
    copy = common_pb2.Block()
    copy.CopyFrom(block)
    missing = METADATA_ENTRY_COUNT - len(copy.metadata.metadata)
    if missing > 0:
        copy.metadata.metadata.extend([b""] * missing)
    return copy
