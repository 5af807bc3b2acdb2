"""Async iterators over range, rich-query and history results.

The peer answers a query with the first batch and an iterator id; while `has_more` is
set the iterator asks for the next batch with QUERY_STATE_NEXT. `close()` (or leaving an
`async with` block) sends QUERY_STATE_CLOSE when the peer still holds results; an
exhausted iterator needs no close, the peer has released it already.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, Self, TypeVar

from chaincode.shim import messages
from chaincode.shim.requester import PeerRequester
from common.protoutil import Timestamp
from protos.ledger.queryresult import kv_query_result_pb2
from protos.peer import chaincode_shim_pb2

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class KV:
    """One state entry of a range or rich query."""

    namespace: str
    key: str
    value: bytes


@dataclass(frozen=True, slots=True)
class KeyModification:
    """One write of a key, as history reports it (newest first)."""

    tx_id: str
    value: bytes
    timestamp: Timestamp | None
    is_delete: bool


@dataclass(frozen=True, slots=True)
class QueryResponseMetadata:
    """What a paginated query reports: records in this page and the next bookmark."""

    fetched_records_count: int
    bookmark: str


class QueryIterator(Generic[T]):
    """Results of one query, fetched batch by batch from the peer."""

    def __init__(
        self,
        requester: PeerRequester,
        response: chaincode_shim_pb2.QueryResponse,
        decode: Callable[[bytes], T],
    ) -> None:
        self._requester = requester
        self._decode = decode
        self._batch = list(response.results)
        self._position = 0
        self._has_more = response.has_more
        self._id = response.id
        self._closed = False

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        while self._position >= len(self._batch):
            if not self._has_more or self._closed:
                raise StopAsyncIteration
            await self._fetch_next()
        item = self._batch[self._position]
        self._position += 1
        return self._decode(item.resultBytes)

    async def close(self) -> None:
        """Release the peer's iterator (QUERY_STATE_CLOSE) unless it is exhausted."""
        if self._closed:
            return
        self._closed = True
        if self._has_more:
            payload = chaincode_shim_pb2.QueryStateClose(
                id=self._id
            ).SerializeToString()
            await self._requester.request(
                messages.ChaincodeMessage.QUERY_STATE_CLOSE, payload
            )
            self._has_more = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _fetch_next(self) -> None:
        payload = chaincode_shim_pb2.QueryStateNext(id=self._id).SerializeToString()
        answer = await self._requester.request(
            messages.ChaincodeMessage.QUERY_STATE_NEXT, payload
        )
        response = decode_query_response(answer)
        self._batch = list(response.results)
        self._position = 0
        self._has_more = response.has_more
        self._id = response.id or self._id


StateQueryIterator = QueryIterator[KV]
HistoryQueryIterator = QueryIterator[KeyModification]


def decode_query_response(data: bytes) -> chaincode_shim_pb2.QueryResponse:
    """Parse a QueryResponse from the peer.

    Raises:
        WireError: the bytes are not a QueryResponse.
    """
    return messages.parse(chaincode_shim_pb2.QueryResponse, data, what="query response")


def decode_metadata(
    response: chaincode_shim_pb2.QueryResponse,
) -> QueryResponseMetadata:
    """The paging metadata of a query response (zero and "" when absent)."""
    metadata = messages.parse(
        chaincode_shim_pb2.QueryResponseMetadata,
        response.metadata,
        what="query metadata",
    )
    return QueryResponseMetadata(
        fetched_records_count=metadata.fetched_records_count, bookmark=metadata.bookmark
    )


def decode_kv(data: bytes) -> KV:
    """A queryresult.KV as a KV."""
    message = messages.parse(kv_query_result_pb2.KV, data, what="query result KV")
    return KV(namespace=message.namespace, key=message.key, value=message.value)


def decode_key_modification(data: bytes) -> KeyModification:
    """A queryresult.KeyModification as a KeyModification."""
    message = messages.parse(
        kv_query_result_pb2.KeyModification, data, what="history entry"
    )
    timestamp = None
    if message.HasField("timestamp"):
        timestamp = Timestamp(
            seconds=message.timestamp.seconds, nanos=message.timestamp.nanos
        )
    return KeyModification(
        tx_id=message.tx_id,
        value=message.value,
        timestamp=timestamp,
        is_delete=message.is_delete,
    )
