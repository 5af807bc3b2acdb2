"""The peer's answers to a chaincode's state requests, one function per message type.

Each handler takes the transaction's context and the request message and returns
the RESPONSE payload, or raises a `MedledgerError` whose text goes back to the
chaincode in an ERROR message. They do what Fabric 2.5's handler does:

| request | answer |
|---|---|
| GET_STATE | the committed value (empty when absent); private when a collection is set |
| PUT_STATE, DEL_STATE, PURGE_PRIVATE_DATA, PUT_STATE_METADATA | empty |
| GET_PRIVATE_DATA_HASH | SHA-256 of the private value (empty when absent) |
| GET_STATE_METADATA | StateMetadataResult, entries sorted by name |
| GET_STATE_BY_RANGE, GET_QUERY_RESULT, GET_HISTORY_FOR_KEY, QUERY_STATE_NEXT | QueryResponse |
| QUERY_STATE_CLOSE | QueryResponse{has_more false, id} |

Queries hand results back in batches of `max_batch` (100) with `has_more` and an
iterator id for QUERY_STATE_NEXT, up to `total_limit` results in all. When the
request carries QueryMetadata with a page size or a bookmark the query is
paginated: one response with the whole page (page size capped by the total
limit), and QueryResponseMetadata{fetched_records_count, bookmark}; a range's
bookmark replaces its start key. Private-data requests are refused in Init and
checked against the creator's collection access.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf.message import DecodeError, Message

from common.errors import WireError
from peer.chaincode.context import QueryCursor, TransactionContext
from peer.errors import QueryError, UnsupportedTransaction
from peer.ledger.history import KeyModification
from peer.ledger.statedb import KV
from peer.simulator.iterators import ResultsIterator
from protos.ledger.queryresult import kv_query_result_pb2
from protos.peer import chaincode_shim_pb2

__all__ = ["REQUEST_HANDLERS", "QueryLimits", "RequestHandler", "decode_payload"]

_M = TypeVar("_M", bound=Message)
Shim = chaincode_shim_pb2.ChaincodeMessage

TOTAL_QUERY_LIMIT = 100_000
"""Fabric's default `ledger.state.totalQueryLimit`: results per query, all batches."""

MAX_BATCH = 100
"""Results per QueryResponse for unpaginated queries (Fabric's fixed batch size)."""


@dataclass(frozen=True, slots=True)
class QueryLimits:
    total_limit: int = TOTAL_QUERY_LIMIT
    max_batch: int = MAX_BATCH


RequestHandler = Callable[
    [TransactionContext, chaincode_shim_pb2.ChaincodeMessage, QueryLimits], bytes
]


def decode_payload(message_type: type[_M], payload: bytes) -> _M:
    """Decode a request payload; a failure is the chaincode's mistake (WireError)."""
    message = message_type()
    try:
        message.ParseFromString(payload)
    except (DecodeError, ValueError) as error:
        name = message_type.DESCRIPTOR.name
        raise WireError(
            f"unmarshal failed: payload is not a {name}: {error}"
        ) from error
    return message


# ---------------------------------------------------------------- point reads and writes


def get_state(ctx: TransactionContext, message: Shim, _: QueryLimits) -> bytes:
    request = decode_payload(chaincode_shim_pb2.GetState, message.payload)
    if request.collection:
        ctx.check_private_access(request.collection, write=False)
        value = ctx.simulator.get_private_data(
            ctx.namespace, request.collection, request.key
        )
    else:
        value = ctx.simulator.get_state(ctx.namespace, request.key)
    return value or b""


def get_private_data_hash(
    ctx: TransactionContext, message: Shim, _: QueryLimits
) -> bytes:
    request = decode_payload(chaincode_shim_pb2.GetState, message.payload)
    ctx.check_not_init()
    digest = ctx.simulator.get_private_data_hash(
        ctx.namespace, request.collection, request.key
    )
    return digest or b""


def put_state(ctx: TransactionContext, message: Shim, _: QueryLimits) -> bytes:
    request = decode_payload(chaincode_shim_pb2.PutState, message.payload)
    if request.collection:
        ctx.check_private_access(request.collection, write=True)
        ctx.simulator.set_private_data(
            ctx.namespace, request.collection, request.key, request.value
        )
    else:
        ctx.simulator.set_state(ctx.namespace, request.key, request.value)
    return b""


def del_state(ctx: TransactionContext, message: Shim, _: QueryLimits) -> bytes:
    request = decode_payload(chaincode_shim_pb2.DelState, message.payload)
    if request.collection:
        ctx.check_private_access(request.collection, write=True)
        ctx.simulator.delete_private_data(
            ctx.namespace, request.collection, request.key
        )
    else:
        ctx.simulator.delete_state(ctx.namespace, request.key)
    return b""


def purge_private_data(ctx: TransactionContext, message: Shim, _: QueryLimits) -> bytes:
    if not ctx.purge_enabled:
        raise UnsupportedTransaction(
            "purging private data needs the channel application capability V2_5"
        )
    request = decode_payload(chaincode_shim_pb2.PurgePrivateState, message.payload)
    if not request.collection:
        raise QueryError(
            "PURGE_PRIVATE_DATA applies to private data only (no collection)"
        )
    ctx.check_private_access(request.collection, write=True)
    ctx.simulator.purge_private_data(ctx.namespace, request.collection, request.key)
    return b""


# ---------------------------------------------------------------- metadata


def get_state_metadata(ctx: TransactionContext, message: Shim, _: QueryLimits) -> bytes:
    _check_metadata_capability(ctx)
    request = decode_payload(chaincode_shim_pb2.GetStateMetadata, message.payload)
    if request.collection:
        ctx.check_private_access(request.collection, write=False)
        metadata = ctx.simulator.get_private_data_metadata(
            ctx.namespace, request.collection, request.key
        )
    else:
        metadata = ctx.simulator.get_state_metadata(ctx.namespace, request.key)
    result = chaincode_shim_pb2.StateMetadataResult(
        entries=[
            chaincode_shim_pb2.StateMetadata(metakey=name, value=metadata[name])
            for name in sorted(metadata)
        ]
    )
    return result.SerializeToString()


def put_state_metadata(ctx: TransactionContext, message: Shim, _: QueryLimits) -> bytes:
    _check_metadata_capability(ctx)
    request = decode_payload(chaincode_shim_pb2.PutStateMetadata, message.payload)
    if not request.HasField("metadata"):
        raise WireError("PutStateMetadata carries no metadata entry")
    metadata = {request.metadata.metakey: request.metadata.value}
    if request.collection:
        ctx.check_private_access(request.collection, write=True)
        ctx.simulator.set_private_data_metadata(
            ctx.namespace, request.collection, request.key, metadata
        )
    else:
        ctx.simulator.set_state_metadata(ctx.namespace, request.key, metadata)
    return b""


def _check_metadata_capability(ctx: TransactionContext) -> None:
    if not ctx.key_level_endorsement:
        raise UnsupportedTransaction(
            "key-level endorsement needs the channel application capability V1_3 or later"
        )


# ---------------------------------------------------------------- queries


def get_state_by_range(
    ctx: TransactionContext, message: Shim, limits: QueryLimits
) -> bytes:
    request = decode_payload(chaincode_shim_pb2.GetStateByRange, message.payload)
    metadata = _query_metadata(request.metadata)
    ns = ctx.namespace
    iterator: ResultsIterator[Any]
    if request.collection:
        ctx.check_private_access(request.collection, write=False)
        iterator = ctx.simulator.get_private_data_range(
            ns, request.collection, request.startKey, request.endKey
        )
        return _start_query(ctx, iterator, limits)
    if metadata is not None:
        start = metadata.bookmark or request.startKey
        page_size = _page_size(metadata, limits)
        iterator = ctx.simulator.get_state_range_page(
            ns, start, request.endKey, page_size=page_size
        )
        return _start_query(ctx, iterator, limits, page_size=page_size)
    iterator = ctx.simulator.get_state_range(ns, request.startKey, request.endKey)
    return _start_query(ctx, iterator, limits)


def get_query_result(
    ctx: TransactionContext, message: Shim, limits: QueryLimits
) -> bytes:
    request = decode_payload(chaincode_shim_pb2.GetQueryResult, message.payload)
    metadata = _query_metadata(request.metadata)
    ns = ctx.namespace
    iterator: ResultsIterator[Any]
    if request.collection:
        ctx.check_private_access(request.collection, write=False)
        iterator = ctx.simulator.execute_query_on_private_data(
            ns, request.collection, request.query
        )
        return _start_query(ctx, iterator, limits)
    if metadata is not None:
        page_size = _page_size(metadata, limits)
        iterator = ctx.simulator.execute_query_page(
            ns, request.query, page_size=page_size, bookmark=metadata.bookmark
        )
        return _start_query(ctx, iterator, limits, page_size=page_size)
    iterator = ctx.simulator.execute_query(ns, request.query)
    return _start_query(ctx, iterator, limits)


def get_history_for_key(
    ctx: TransactionContext, message: Shim, limits: QueryLimits
) -> bytes:
    request = decode_payload(chaincode_shim_pb2.GetHistoryForKey, message.payload)
    iterator = ctx.simulator.get_history_for_key(ctx.namespace, request.key)
    return _start_query(ctx, iterator, limits)


def query_state_next(
    ctx: TransactionContext, message: Shim, limits: QueryLimits
) -> bytes:
    request = decode_payload(chaincode_shim_pb2.QueryStateNext, message.payload)
    cursor = ctx.cursor(request.id)
    response = _next_batch(
        ctx,
        request.id,
        cursor,
        paginated=False,
        total=limits.total_limit,
        limits=limits,
    )
    return response.SerializeToString()


def query_state_close(ctx: TransactionContext, message: Shim, _: QueryLimits) -> bytes:
    request = decode_payload(chaincode_shim_pb2.QueryStateClose, message.payload)
    ctx.close_query(request.id)
    return chaincode_shim_pb2.QueryResponse(
        has_more=False, id=request.id
    ).SerializeToString()


def _query_metadata(data: bytes) -> chaincode_shim_pb2.QueryMetadata | None:
    """The request's QueryMetadata when it asks for pagination, else None."""
    if not data:
        return None
    metadata = decode_payload(chaincode_shim_pb2.QueryMetadata, data)
    if metadata.pageSize == 0 and not metadata.bookmark:
        return None
    return metadata


def _page_size(metadata: chaincode_shim_pb2.QueryMetadata, limits: QueryLimits) -> int:
    if 0 < metadata.pageSize < limits.total_limit:
        return metadata.pageSize
    return limits.total_limit


def _start_query(
    ctx: TransactionContext,
    iterator: ResultsIterator[Any],
    limits: QueryLimits,
    *,
    page_size: int | None = None,
) -> bytes:
    """Open the query and answer its first batch; a `page_size` makes it paginated."""
    query_id = str(uuid.uuid4())
    cursor = ctx.open_query(query_id, iterator)
    try:
        response = _next_batch(
            ctx,
            query_id,
            cursor,
            paginated=page_size is not None,
            total=limits.total_limit if page_size is None else page_size,
            limits=limits,
        )
    except BaseException:
        ctx.close_query(query_id)
        raise
    return response.SerializeToString()


def _next_batch(
    ctx: TransactionContext,
    query_id: str,
    cursor: QueryCursor,
    *,
    paginated: bool,
    total: int,
    limits: QueryLimits,
) -> chaincode_shim_pb2.QueryResponse:
    """Pull results into the pending batch until a batch, the limit or the end is reached.

    Like Fabric, an unpaginated batch is cut when the 101st result arrives; that
    result stays pending for the next QUERY_STATE_NEXT.
    """
    while cursor.returned < total:
        try:
            item = cursor.iterator.next()
        except BaseException:
            ctx.close_query(query_id)
            raise
        if item is None:
            break
        marshaled = chaincode_shim_pb2.QueryResultBytes(
            resultBytes=_marshal(ctx.namespace, item)
        )
        if not paginated and len(cursor.pending) == limits.max_batch:
            batch, cursor.pending = cursor.pending, [marshaled]
            cursor.returned += 1
            return chaincode_shim_pb2.QueryResponse(
                results=batch, has_more=True, id=query_id
            )
        cursor.pending.append(marshaled)
        cursor.returned += 1
    return _last_batch(ctx, query_id, cursor, paginated=paginated)


def _last_batch(
    ctx: TransactionContext, query_id: str, cursor: QueryCursor, *, paginated: bool
) -> chaincode_shim_pb2.QueryResponse:
    batch, cursor.pending = cursor.pending, []
    ctx.queries.pop(query_id, None)
    if not paginated:
        cursor.iterator.close()
        return chaincode_shim_pb2.QueryResponse(
            results=batch, has_more=False, id=query_id
        )
    bookmark = cursor.iterator.bookmark_and_close()
    metadata = chaincode_shim_pb2.QueryResponseMetadata(
        fetched_records_count=cursor.returned, bookmark=bookmark
    )
    return chaincode_shim_pb2.QueryResponse(
        results=batch,
        has_more=False,
        id=query_id,
        metadata=metadata.SerializeToString(),
    )


def _marshal(namespace: str, item: object) -> bytes:
    if isinstance(item, KV):
        return kv_query_result_pb2.KV(
            namespace=namespace, key=item.key, value=item.value
        ).SerializeToString()
    if isinstance(item, KeyModification):
        modification = kv_query_result_pb2.KeyModification(
            tx_id=item.tx_id, value=item.value, is_delete=item.is_delete
        )
        modification.timestamp.seconds = item.timestamp.seconds
        modification.timestamp.nanos = item.timestamp.nanos
        return modification.SerializeToString()
    raise TypeError(f"unexpected query result {type(item).__name__}")


REQUEST_HANDLERS: dict[int, RequestHandler] = {
    Shim.GET_STATE: get_state,
    Shim.PUT_STATE: put_state,
    Shim.DEL_STATE: del_state,
    Shim.GET_PRIVATE_DATA_HASH: get_private_data_hash,
    Shim.PURGE_PRIVATE_DATA: purge_private_data,
    Shim.GET_STATE_METADATA: get_state_metadata,
    Shim.PUT_STATE_METADATA: put_state_metadata,
    Shim.GET_STATE_BY_RANGE: get_state_by_range,
    Shim.GET_QUERY_RESULT: get_query_result,
    Shim.GET_HISTORY_FOR_KEY: get_history_for_key,
    Shim.QUERY_STATE_NEXT: query_state_next,
    Shim.QUERY_STATE_CLOSE: query_state_close,
}
"""Synchronous state requests by message type (INVOKE_CHAINCODE is handled apart)."""
