"""An in-memory ledger and the peer side of the chaincode protocol, for tests.

`MockLedger` is the committed state of one channel: values per (namespace, collection,
key), state metadata (key-level policies) and the history of public keys.
`TransactionSimulator` answers one transaction's state requests the way a peer does:
reads see committed state only, writes are buffered until `commit()`, range and rich
queries are served in batches (QUERY_STATE_NEXT) and pages (bookmarks), and private
data is refused in Init. It speaks ChaincodeMessages, so the real stub runs against it.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from chaincode.shim import messages
from chaincode.shim.iterators import KeyModification
from chaincode.testing.selector import SelectorError, compile_query
from common.errors import WireError
from common.protoutil import Timestamp
from protos.ledger.queryresult import kv_query_result_pb2
from protos.peer import chaincode_shim_pb2

StateKey = tuple[str, str, str]
"""(namespace, collection, key); the collection is "" for public state."""

BATCH_SIZE = 100
"""Results per QueryResponse batch, as Fabric's peer sends them."""

_Type = chaincode_shim_pb2.ChaincodeMessage


class RequestRefused(Exception):
    """A request the peer answers with ERROR; the message is the ERROR text."""


@dataclass(slots=True)
class MockLedger:
    """Committed state of one channel (see the module docstring)."""

    values: dict[StateKey, bytes] = field(default_factory=dict)
    metadata: dict[StateKey, dict[str, bytes]] = field(default_factory=dict)
    history: dict[tuple[str, str], list[KeyModification]] = field(default_factory=dict)

    def get(self, namespace: str, key: str, collection: str = "") -> bytes | None:
        """A committed value, None when absent."""
        return self.values.get((namespace, collection, key))

    def put(self, namespace: str, key: str, value: bytes, collection: str = "") -> None:
        """Seed a committed value directly (no history entry)."""
        self.values[(namespace, collection, key)] = value

    def keys(self, namespace: str, collection: str = "") -> list[str]:
        """The committed keys of a namespace (or collection), sorted."""
        return sorted(
            k for ns, c, k in self.values if ns == namespace and c == collection
        )

    def scan(self, namespace: str, collection: str, start: str, end: str) -> list[str]:
        """Keys in [start, end) in key order; end "" means unbounded."""
        return [
            key
            for key in self.keys(namespace, collection)
            if key >= start and (not end or key < end)
        ]


@dataclass(slots=True)
class _OpenQuery:
    records: Iterator[bytes]


class TransactionSimulator:
    """The peer side of one transaction on one chaincode namespace."""

    def __init__(
        self,
        ledger: MockLedger,
        *,
        namespace: str,
        tx_id: str,
        is_init: bool = False,
        timestamp: Timestamp | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        assert batch_size > 0, batch_size
        self.ledger = ledger
        self.namespace = namespace
        self.tx_id = tx_id
        self.is_init = is_init
        self.timestamp = timestamp
        self.batch_size = batch_size
        self.writes: dict[StateKey, bytes | None] = {}
        self.metadata_writes: dict[StateKey, dict[str, bytes]] = {}
        self._queries: dict[str, _OpenQuery] = {}
        self._query_ids = itertools.count(1)

    def handle(
        self, message: chaincode_shim_pb2.ChaincodeMessage
    ) -> chaincode_shim_pb2.ChaincodeMessage:
        """The RESPONSE or ERROR for one state request."""
        key = messages.tx_key(message)
        handler = _HANDLERS.get(message.type)
        try:
            if handler is None:
                name = messages.type_name(message.type)
                raise RequestRefused(f"request {name} is not supported")
            payload = handler(self, message.payload)
        except (RequestRefused, WireError) as error:
            return messages.error_message(str(error), key=key)
        return messages.ChaincodeMessage(
            type=_Type.RESPONSE, payload=payload, txid=message.txid, channel_id=key[0]
        )

    def commit(self) -> None:
        """Apply the buffered writes to the ledger, recording public history."""
        for state_key, value in self.writes.items():
            namespace, collection, key = state_key
            if value is None:
                self.ledger.values.pop(state_key, None)
                self.ledger.metadata.pop(state_key, None)
            else:
                self.ledger.values[state_key] = value
            if not collection:
                entry = KeyModification(
                    tx_id=self.tx_id,
                    value=value or b"",
                    timestamp=self.timestamp,
                    is_delete=value is None,
                )
                self.ledger.history.setdefault((namespace, key), []).insert(0, entry)
        for state_key, entries in self.metadata_writes.items():
            self.ledger.metadata.setdefault(state_key, {}).update(entries)

    # ---------------------------------------------------------------- requests

    def _get_state(self, payload: bytes) -> bytes:
        request = messages.parse(chaincode_shim_pb2.GetState, payload, what="GetState")
        return self._read(request.collection, request.key) or b""

    def _get_private_data_hash(self, payload: bytes) -> bytes:
        request = messages.parse(chaincode_shim_pb2.GetState, payload, what="GetState")
        value = self._read(request.collection, request.key)
        return hashlib.sha256(value).digest() if value else b""

    def _put_state(self, payload: bytes) -> bytes:
        request = messages.parse(chaincode_shim_pb2.PutState, payload, what="PutState")
        self._write(request.collection, request.key, request.value or None)
        return b""

    def _del_state(self, payload: bytes) -> bytes:
        request = messages.parse(chaincode_shim_pb2.DelState, payload, what="DelState")
        self._write(request.collection, request.key, None)
        return b""

    def _purge_private_data(self, payload: bytes) -> bytes:
        request = messages.parse(
            chaincode_shim_pb2.PurgePrivateState, payload, what="PurgePrivateState"
        )
        if not request.collection:
            raise RequestRefused("only private data can be purged")
        self._write(request.collection, request.key, None)
        return b""

    def _get_state_metadata(self, payload: bytes) -> bytes:
        request = messages.parse(
            chaincode_shim_pb2.GetStateMetadata, payload, what="GetStateMetadata"
        )
        self._check_private(request.collection)
        stored = self.ledger.metadata.get(
            (self.namespace, request.collection, request.key)
        )
        entries = [
            chaincode_shim_pb2.StateMetadata(metakey=name, value=value)
            for name, value in sorted((stored or {}).items())
        ]
        return chaincode_shim_pb2.StateMetadataResult(
            entries=entries
        ).SerializeToString()

    def _put_state_metadata(self, payload: bytes) -> bytes:
        request = messages.parse(
            chaincode_shim_pb2.PutStateMetadata, payload, what="PutStateMetadata"
        )
        self._check_private(request.collection)
        state_key = (self.namespace, request.collection, request.key)
        entry = request.metadata
        self.metadata_writes.setdefault(state_key, {})[entry.metakey] = entry.value
        return b""

    def _get_state_by_range(self, payload: bytes) -> bytes:
        request = messages.parse(
            chaincode_shim_pb2.GetStateByRange, payload, what="GetStateByRange"
        )
        self._check_private(request.collection)
        keys = self.ledger.scan(
            self.namespace, request.collection, request.startKey, request.endKey
        )
        return self._open_query(request.collection, keys, request.metadata)

    def _get_query_result(self, payload: bytes) -> bytes:
        request = messages.parse(
            chaincode_shim_pb2.GetQueryResult, payload, what="query"
        )
        self._check_private(request.collection)
        try:
            matches = compile_query(request.query)
        except SelectorError as error:
            raise RequestRefused(f"invalid query: {error}") from None
        keys = [
            key
            for key in self.ledger.keys(self.namespace, request.collection)
            if matches(self.ledger.values[(self.namespace, request.collection, key)])
        ]
        return self._open_query(request.collection, keys, request.metadata)

    def _get_history_for_key(self, payload: bytes) -> bytes:
        request = messages.parse(
            chaincode_shim_pb2.GetHistoryForKey, payload, what="GetHistoryForKey"
        )
        entries = self.ledger.history.get((self.namespace, request.key), [])
        records = iter([_history_record(entry) for entry in entries])
        return self._first_batch(records, metadata=b"")

    def _query_state_next(self, payload: bytes) -> bytes:
        request = messages.parse(
            chaincode_shim_pb2.QueryStateNext, payload, what="next"
        )
        query = self._queries.get(request.id)
        if query is None:
            raise RequestRefused(f"query iterator {request.id!r} does not exist")
        return self._batch(request.id, query.records, metadata=b"")

    def _query_state_close(self, payload: bytes) -> bytes:
        request = messages.parse(
            chaincode_shim_pb2.QueryStateClose, payload, what="close"
        )
        self._queries.pop(request.id, None)
        return chaincode_shim_pb2.QueryResponse(id=request.id).SerializeToString()

    # ---------------------------------------------------------------- helpers

    def _read(self, collection: str, key: str) -> bytes | None:
        self._check_private(collection)
        return self.ledger.get(self.namespace, key, collection)

    def _write(self, collection: str, key: str, value: bytes | None) -> None:
        self._check_private(collection)
        if not key:
            raise RequestRefused("key must not be an empty string")
        self.writes[(self.namespace, collection, key)] = value

    def _check_private(self, collection: str) -> None:
        if collection and self.is_init:
            raise RequestRefused(
                "private data APIs are not allowed in chaincode Init()"
            )

    def _open_query(
        self, collection: str, keys: list[str], raw_metadata: bytes
    ) -> bytes:
        paging = messages.parse(
            chaincode_shim_pb2.QueryMetadata, raw_metadata, what="paging"
        )
        metadata = b""
        if raw_metadata:
            keys, bookmark = _page(keys, paging.pageSize, paging.bookmark)
            metadata = chaincode_shim_pb2.QueryResponseMetadata(
                fetched_records_count=len(keys), bookmark=bookmark
            ).SerializeToString()
        records = iter([self._kv_record(collection, key) for key in keys])
        return self._first_batch(records, metadata=metadata)

    def _kv_record(self, collection: str, key: str) -> bytes:
        value = self.ledger.values[(self.namespace, collection, key)]
        kv = kv_query_result_pb2.KV(namespace=self.namespace, key=key, value=value)
        return kv.SerializeToString()

    def _first_batch(self, records: Iterator[bytes], *, metadata: bytes) -> bytes:
        query_id = f"{self.tx_id}-q{next(self._query_ids)}"
        self._queries[query_id] = _OpenQuery(records)
        return self._batch(query_id, records, metadata=metadata)

    def _batch(
        self, query_id: str, records: Iterator[bytes], *, metadata: bytes
    ) -> bytes:
        batch = list(itertools.islice(records, self.batch_size + 1))
        has_more = len(batch) > self.batch_size
        if has_more:
            query = self._queries[query_id]
            query.records = itertools.chain([batch.pop()], records)
        else:
            self._queries.pop(query_id, None)
        response = chaincode_shim_pb2.QueryResponse(
            results=[chaincode_shim_pb2.QueryResultBytes(resultBytes=r) for r in batch],
            has_more=has_more,
            id=query_id,
            metadata=metadata,
        )
        return response.SerializeToString()


def _page(keys: list[str], page_size: int, bookmark: str) -> tuple[list[str], str]:
    """The keys of one page starting at `bookmark`, and the next page's bookmark."""
    if page_size <= 0:
        raise RequestRefused(f"page size must be positive, got {page_size}")
    remaining = [key for key in keys if key >= bookmark] if bookmark else keys
    page, rest = remaining[:page_size], remaining[page_size:]
    return page, rest[0] if rest else ""


def _history_record(entry: KeyModification) -> bytes:
    message = kv_query_result_pb2.KeyModification(
        tx_id=entry.tx_id, value=entry.value, is_delete=entry.is_delete
    )
    if entry.timestamp is not None:
        message.timestamp.seconds = entry.timestamp.seconds
        message.timestamp.nanos = entry.timestamp.nanos
    return message.SerializeToString()


_HANDLERS: dict[int, Callable[[TransactionSimulator, bytes], bytes]] = {
    _Type.GET_STATE: TransactionSimulator._get_state,
    _Type.PUT_STATE: TransactionSimulator._put_state,
    _Type.DEL_STATE: TransactionSimulator._del_state,
    _Type.PURGE_PRIVATE_DATA: TransactionSimulator._purge_private_data,
    _Type.GET_PRIVATE_DATA_HASH: TransactionSimulator._get_private_data_hash,
    _Type.GET_STATE_METADATA: TransactionSimulator._get_state_metadata,
    _Type.PUT_STATE_METADATA: TransactionSimulator._put_state_metadata,
    _Type.GET_STATE_BY_RANGE: TransactionSimulator._get_state_by_range,
    _Type.GET_QUERY_RESULT: TransactionSimulator._get_query_result,
    _Type.GET_HISTORY_FOR_KEY: TransactionSimulator._get_history_for_key,
    _Type.QUERY_STATE_NEXT: TransactionSimulator._query_state_next,
    _Type.QUERY_STATE_CLOSE: TransactionSimulator._query_state_close,
}
