"""The VALID transactions of a validated block, decoded down to their read-write sets.

Commit phase. The committer and the crash replay read a block's transactions
through `iter_committed_txs`; `add_kv_writes` turns one namespace's write set
into update-batch calls. Only the layers the commit needs are decoded
(envelope, payload, channel header, transaction, action payload, response
payload, chaincode action, read-write set), several times faster than the full
`common.protoutil.parse_transaction` the validator runs. The validator has
already checked that every VALID transaction is well formed, so a VALID
transaction that does not decode means the block and its filter disagree: a
`LedgerError`, never a silent skip.

The validator has decoded the same layers already: it hands them over as one
`DecodedTx` per transaction (`peer.validator.BlockValidation.decoded`), and the
committer passes them on, so a live commit decodes only the transactions the
validator did not (invalid and configuration ones). What is committed is then
exactly what was validated: the very messages the validator checked, decoded
from the block's bytes. A replay after a crash decodes the stored block.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import NamedTuple, Protocol, TypeVar

from google.protobuf.message import DecodeError, Message

from common.errors import WireError
from common.protoutil import transaction_filter
from peer.errors import LedgerError
from peer.ledger.history import KeyWrite, Timestamp
from peer.ledger.statedb import Version
from protos.common import common_pb2
from protos.ledger.rwset import rwset_pb2
from protos.ledger.rwset.kvrwset import kv_rwset_pb2
from protos.peer import proposal_pb2, proposal_response_pb2, transaction_pb2

__all__ = [
    "VALID",
    "CommittedTx",
    "DecodedTx",
    "WriteTarget",
    "add_kv_writes",
    "decode_in_tx",
    "decode_message",
    "iter_committed_txs",
]

VALID = transaction_pb2.TxValidationCode.VALID

_M = TypeVar("_M", bound=Message)
_DECODE_ERRORS = (DecodeError, RecursionError, ValueError)


class CommittedTx(NamedTuple):
    """A VALID endorser transaction of a block, decoded down to its read-write set.

    An immutable NamedTuple rather than a frozen dataclass: one is built for
    every committed transaction, several times faster.
    """

    block_num: int
    tx_num: int
    tx_id: str
    timestamp: Timestamp
    rwset: rwset_pb2.TxReadWriteSet
    kv_rwsets: tuple[kv_rwset_pb2.KVRWSet, ...] | None = None
    """Each `rwset.ns_rwset`'s write set, decoded; None: decode them when needed."""

    @property
    def version(self) -> Version:
        """The version its writes get: (block number, position in the block)."""
        return Version(self.block_num, self.tx_num)


class DecodedTx(NamedTuple):
    """An endorser transaction of a block as the validator decoded it from the block.

    `kv_rwsets` holds each `rwset.ns_rwset`'s write set (its `rwset` bytes
    decoded), in the same order.
    """

    tx_id: str
    timestamp: Timestamp
    rwset: rwset_pb2.TxReadWriteSet
    kv_rwsets: tuple[kv_rwset_pb2.KVRWSet, ...]


def iter_committed_txs(
    block: common_pb2.Block,
    *,
    on_tx_id: Callable[[str], None] | None = None,
    decoded: Sequence[DecodedTx | None] | None = None,
) -> Iterator[CommittedTx]:
    """The block's VALID endorser transactions in order; `on_tx_id` sees every tx id.

    `on_tx_id` is called once per transaction, in block order, with its channel
    header's tx id ("" when it has none or the header does not decode).
    Invalid transactions are skipped (their tx id is still reported); so are
    configuration and other non-endorser transactions.

    `decoded`, one entry per transaction, gives VALID endorser transactions as the
    validator decoded them from this block's bytes; they are not decoded again.
    Other transactions (None entries) are decoded here.

    Raises:
        LedgerError: no transaction filter, `decoded` does not cover the block, or a
            VALID transaction that does not decode.
    """
    block_num = block.header.number
    codes = _validation_codes(block)
    given = _decoded_entries(block, decoded)
    for tx_num, (envelope, code) in enumerate(zip(block.data.data, codes, strict=True)):
        is_valid = code == VALID
        known = given[tx_num] if is_valid else None
        if known is not None:
            if on_tx_id is not None:
                on_tx_id(known.tx_id)
            yield CommittedTx(
                block_num,
                tx_num,
                known.tx_id,
                known.timestamp,
                known.rwset,
                known.kv_rwsets,
            )
            continue
        try:
            header, payload = _decode_header(envelope)
        except WireError as error:
            if is_valid:
                raise _undecodable(block_num, tx_num, error) from error
            if on_tx_id is not None:
                on_tx_id("")
            continue
        if on_tx_id is not None:
            on_tx_id(header.tx_id)
        if not is_valid or header.type != common_pb2.ENDORSER_TRANSACTION:
            continue
        try:
            rwset = _decode_rwset(payload.data)
        except WireError as error:
            raise _undecodable(block_num, tx_num, error) from error
        yield CommittedTx(
            block_num=block_num,
            tx_num=tx_num,
            tx_id=header.tx_id,
            timestamp=Timestamp(header.timestamp.seconds, header.timestamp.nanos),
            rwset=rwset,
        )


class WriteTarget(Protocol):
    """An update batch seen through one namespace (public state, or one collection)."""

    def put(self, ns: str, key: str, value: bytes, version: Version) -> None: ...

    def delete(self, ns: str, key: str, version: Version) -> None: ...

    def put_metadata(
        self, ns: str, key: str, metadata: Mapping[str, bytes], version: Version
    ) -> None: ...


def add_kv_writes(
    target: WriteTarget, ns: str, kv_rwset: kv_rwset_pb2.KVRWSet, version: Version
) -> list[KeyWrite]:
    """Add a write set's writes, then its metadata writes; returns the writes for history."""
    writes: list[KeyWrite] = []
    put, delete, record = target.put, target.delete, writes.append
    for write in kv_rwset.writes:
        key = write.key
        if write.is_delete:
            delete(ns, key, version)
            record(KeyWrite(ns, key, None))
        else:
            value = write.value
            put(ns, key, value, version)
            record(KeyWrite(ns, key, value))
    for metadata_write in kv_rwset.metadata_writes:
        entries = {entry.name: entry.value for entry in metadata_write.entries}
        target.put_metadata(ns, metadata_write.key, entries, version)
    return writes


def decode_in_tx(message_type: type[_M], data: bytes, tx: CommittedTx) -> _M:
    """Decode a layer of a VALID transaction; failure is a LedgerError naming the tx."""
    try:
        return decode_message(message_type, data, message_type.DESCRIPTOR.name)
    except WireError as error:
        raise _undecodable(tx.block_num, tx.tx_num, error) from error


def decode_message(message_type: type[_M], data: bytes, what: str) -> _M:
    """Decode `data`; failure is a WireError naming `what`."""
    try:
        return message_type.FromString(data)
    except _DECODE_ERRORS as error:
        raise WireError(f"{what} does not decode: {error}") from error


def _decoded_entries(
    block: common_pb2.Block, decoded: Sequence[DecodedTx | None] | None
) -> Sequence[DecodedTx | None]:
    count = len(block.data.data)
    if decoded is None:
        return (None,) * count
    if len(decoded) != count:
        raise LedgerError(
            f"block {block.header.number} has {count} transactions but "
            f"{len(decoded)} decoded ones were given"
        )
    return decoded


def _validation_codes(block: common_pb2.Block) -> tuple[int, ...]:
    try:
        codes = transaction_filter(block)
    except WireError as error:
        raise LedgerError(str(error)) from error
    if len(codes) != len(block.data.data):
        raise LedgerError(
            f"block {block.header.number} has no transaction filter; "
            "validate it before committing"
        )
    return codes


def _decode_header(
    envelope_bytes: bytes,
) -> tuple[common_pb2.ChannelHeader, common_pb2.Payload]:
    # One try block for all layers (the commit path decodes 500 of these a block).
    layer = "envelope"
    try:
        envelope = common_pb2.Envelope.FromString(envelope_bytes)
        layer = "envelope.payload"
        payload = common_pb2.Payload.FromString(envelope.payload)
        layer = "envelope.payload.header.channel_header"
        if not payload.header.channel_header:
            raise WireError(f"{layer} is missing")
        header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    except _DECODE_ERRORS as error:
        raise WireError(f"{layer} does not decode: {error}") from error
    return header, payload


def _decode_rwset(transaction_bytes: bytes) -> rwset_pb2.TxReadWriteSet:
    layer = "transaction"
    try:
        transaction = transaction_pb2.Transaction.FromString(transaction_bytes)
        if len(transaction.actions) != 1:
            raise WireError(
                "a transaction must hold exactly one action, this one holds "
                f"{len(transaction.actions)}"
            )
        layer = "ChaincodeActionPayload"
        action_payload = transaction_pb2.ChaincodeActionPayload.FromString(
            transaction.actions[0].payload
        )
        layer = "ProposalResponsePayload"
        response_payload = proposal_response_pb2.ProposalResponsePayload.FromString(
            action_payload.action.proposal_response_payload
        )
        layer = "ChaincodeAction"
        action = proposal_pb2.ChaincodeAction.FromString(response_payload.extension)
        layer = "TxReadWriteSet"
        return rwset_pb2.TxReadWriteSet.FromString(action.results)
    except _DECODE_ERRORS as error:
        raise WireError(f"{layer} does not decode: {error}") from error


def _undecodable(block_num: int, tx_num: int, error: Exception) -> LedgerError:
    return LedgerError(
        f"block {block_num} transaction {tx_num} is marked VALID but does not "
        f"decode as an endorser transaction: {error}"
    )
