"""`ChaincodeStub`: what a chaincode calls to read and write ledger state.

One stub per invocation. Facts about the transaction (args, tx id, channel, creator,
transient map, timestamp, binding) are plain methods; everything that asks the peer is
`async` and sends one request on the chaincode stream, so state calls must be awaited:

    value = await stub.get_state("asset1")
    await stub.put_state("asset1", b"...")
    async with await stub.get_state_by_range("a", "z") as results:
        async for kv in results:
            ...

Reads see the state committed before the transaction, not its own writes (Fabric's
simulation semantics). The peer enforces access rules (for example no private data in
Init); the stub checks only what Fabric's shims check before sending.
"""

from __future__ import annotations

from collections.abc import Sequence

from chaincode.errors import ShimProtocolError
from chaincode.shim import keys, messages
from chaincode.shim.facts import TransactionFacts
from chaincode.shim.iterators import (
    HistoryQueryIterator,
    QueryIterator,
    QueryResponseMetadata,
    StateQueryIterator,
    decode_key_modification,
    decode_kv,
    decode_metadata,
    decode_query_response,
)
from chaincode.shim.requester import PeerRequester
from chaincode.shim.transaction import TransactionInfo
from common.protoutil import ChaincodeResponse
from protos.peer import (
    chaincode_pb2,
    chaincode_shim_pb2,
    proposal_response_pb2,
)

VALIDATION_PARAMETER = "VALIDATION_PARAMETER"
"""The state-metadata key under which a key-level endorsement policy is stored."""

Value = bytes | str
"""A state value; str is stored as its UTF-8 bytes."""

_Type = chaincode_shim_pb2.ChaincodeMessage


class ChaincodeStub(TransactionFacts):
    """The ledger API of one invocation (see the module docstring).

    The transaction facts (args, ids, creator, transient map, timestamp, binding,
    decorations, event) come from `TransactionFacts`.
    """

    def __init__(self, requester: PeerRequester, info: TransactionInfo) -> None:
        super().__init__(info)
        self._requester = requester

    # ------------------------------------------------------------ composite keys

    @staticmethod
    def create_composite_key(object_type: str, attributes: Sequence[str]) -> str:
        """See `chaincode.shim.keys.create_composite_key`."""
        return keys.create_composite_key(object_type, attributes)

    @staticmethod
    def split_composite_key(composite_key: str) -> tuple[str, list[str]]:
        """See `chaincode.shim.keys.split_composite_key`."""
        return keys.split_composite_key(composite_key)

    # ------------------------------------------------------------ public state

    async def get_state(self, key: str) -> bytes:
        """The committed value of `key`; b"" when it does not exist."""
        return await self._get(key, collection="")

    async def put_state(self, key: str, value: Value) -> None:
        """Write `key` (an empty value deletes it, as in Fabric)."""
        keys.check_key(key)
        await self._put(key, _as_bytes(value), collection="")

    async def del_state(self, key: str) -> None:
        """Delete `key`."""
        keys.check_key(key)
        await self._delete(key, collection="", message_type=_Type.DEL_STATE)

    async def get_state_by_range(
        self, start_key: str, end_key: str
    ) -> StateQueryIterator:
        """Simple keys in [start_key, end_key); "" means unbounded on that side."""
        start, end = keys.simple_key_range(start_key, end_key)
        iterator, _ = await self._range(start, end, collection="", metadata=b"")
        return iterator

    async def get_state_by_range_with_pagination(
        self, start_key: str, end_key: str, page_size: int, bookmark: str = ""
    ) -> tuple[StateQueryIterator, QueryResponseMetadata]:
        """One page of `get_state_by_range`, and the bookmark of the next page."""
        start, end = keys.simple_key_range(start_key, end_key)
        metadata = _query_metadata(page_size, bookmark)
        return await self._range(start, end, collection="", metadata=metadata)

    async def get_state_by_partial_composite_key(
        self, object_type: str, attributes: Sequence[str]
    ) -> StateQueryIterator:
        """Composite keys starting with `object_type` and the given leading attributes."""
        start, end = keys.partial_key_range(object_type, attributes)
        iterator, _ = await self._range(start, end, collection="", metadata=b"")
        return iterator

    async def get_state_by_partial_composite_key_with_pagination(
        self,
        object_type: str,
        attributes: Sequence[str],
        page_size: int,
        bookmark: str = "",
    ) -> tuple[StateQueryIterator, QueryResponseMetadata]:
        """One page of `get_state_by_partial_composite_key`."""
        start, end = keys.partial_key_range(object_type, attributes)
        metadata = _query_metadata(page_size, bookmark)
        return await self._range(start, end, collection="", metadata=metadata)

    async def get_query_result(self, query: str) -> StateQueryIterator:
        """Entries matching a rich (Mango JSON) query."""
        iterator, _ = await self._query(query, collection="", metadata=b"")
        return iterator

    async def get_query_result_with_pagination(
        self, query: str, page_size: int, bookmark: str = ""
    ) -> tuple[StateQueryIterator, QueryResponseMetadata]:
        """One page of `get_query_result`."""
        metadata = _query_metadata(page_size, bookmark)
        return await self._query(query, collection="", metadata=metadata)

    async def get_history_for_key(self, key: str) -> HistoryQueryIterator:
        """Every committed write of `key`, newest first."""
        payload = chaincode_shim_pb2.GetHistoryForKey(key=key).SerializeToString()
        answer = await self._requester.request(_Type.GET_HISTORY_FOR_KEY, payload)
        return QueryIterator(
            self._requester, decode_query_response(answer), decode_key_modification
        )

    # ------------------------------------------------------------ private data

    async def get_private_data(self, collection: str, key: str) -> bytes:
        """The value of `key` in a private data collection; b"" when absent."""
        keys.check_collection(collection)
        return await self._get(key, collection=collection)

    async def get_private_data_hash(self, collection: str, key: str) -> bytes:
        """SHA-256 of the private value (readable by peers outside the collection)."""
        keys.check_collection(collection)
        payload = chaincode_shim_pb2.GetState(key=key, collection=collection)
        return await self._requester.request(
            _Type.GET_PRIVATE_DATA_HASH, payload.SerializeToString()
        )

    async def put_private_data(self, collection: str, key: str, value: Value) -> None:
        """Write `key` in a private data collection."""
        keys.check_collection(collection)
        keys.check_key(key)
        await self._put(key, _as_bytes(value), collection=collection)

    async def del_private_data(self, collection: str, key: str) -> None:
        """Delete `key` from a private data collection."""
        keys.check_collection(collection)
        keys.check_key(key)
        await self._delete(key, collection=collection, message_type=_Type.DEL_STATE)

    async def purge_private_data(self, collection: str, key: str) -> None:
        """Delete `key` and purge its private history from every peer of the collection."""
        keys.check_collection(collection)
        keys.check_key(key)
        await self._delete(
            key, collection=collection, message_type=_Type.PURGE_PRIVATE_DATA
        )

    async def get_private_data_by_range(
        self, collection: str, start_key: str, end_key: str
    ) -> StateQueryIterator:
        """Simple keys of a collection in [start_key, end_key)."""
        keys.check_collection(collection)
        start, end = keys.simple_key_range(start_key, end_key)
        iterator, _ = await self._range(start, end, collection=collection, metadata=b"")
        return iterator

    async def get_private_data_by_partial_composite_key(
        self, collection: str, object_type: str, attributes: Sequence[str]
    ) -> StateQueryIterator:
        """Composite keys of a collection with the given prefix."""
        keys.check_collection(collection)
        start, end = keys.partial_key_range(object_type, attributes)
        iterator, _ = await self._range(start, end, collection=collection, metadata=b"")
        return iterator

    async def get_private_data_query_result(
        self, collection: str, query: str
    ) -> StateQueryIterator:
        """Entries of a collection matching a rich query."""
        keys.check_collection(collection)
        iterator, _ = await self._query(query, collection=collection, metadata=b"")
        return iterator

    # ------------------------------------------------------------ key-level policies

    async def set_state_validation_parameter(self, key: str, policy: bytes) -> None:
        """Set the key-level endorsement policy (SignaturePolicyEnvelope bytes) of `key`."""
        keys.check_key(key)
        await self._put_metadata(key, VALIDATION_PARAMETER, policy, collection="")

    async def get_state_validation_parameter(self, key: str) -> bytes:
        """The key-level endorsement policy of `key`; b"" when it has none."""
        return await self._get_metadata(key, VALIDATION_PARAMETER, collection="")

    async def set_private_data_validation_parameter(
        self, collection: str, key: str, policy: bytes
    ) -> None:
        """Set the key-level endorsement policy of a private key."""
        keys.check_collection(collection)
        keys.check_key(key)
        await self._put_metadata(
            key, VALIDATION_PARAMETER, policy, collection=collection
        )

    async def get_private_data_validation_parameter(
        self, collection: str, key: str
    ) -> bytes:
        """The key-level endorsement policy of a private key; b"" when it has none."""
        keys.check_collection(collection)
        return await self._get_metadata(
            key, VALIDATION_PARAMETER, collection=collection
        )

    # ------------------------------------------------------------ other chaincode

    async def invoke_chaincode(
        self, name: str, args: Sequence[Value], channel: str = ""
    ) -> ChaincodeResponse:
        """Call chaincode `name` (on `channel`, "" = this one) in this transaction.

        On another channel the call can only read. The called chaincode's failure comes
        back as a response with its status, not as an exception.

        Raises:
            PeerRequestError: the peer refused the call.
            ShimProtocolError: the peer's answer is not a completed chaincode message.
        """
        target = f"{name}/{channel}" if channel else name
        spec = chaincode_pb2.ChaincodeSpec(
            chaincode_id=chaincode_pb2.ChaincodeID(name=target),
            input=chaincode_pb2.ChaincodeInput(args=[_as_bytes(arg) for arg in args]),
        )
        answer = await self._requester.request(
            _Type.INVOKE_CHAINCODE, spec.SerializeToString()
        )
        return _invocation_response(answer)

    # ------------------------------------------------------------ requests

    async def _get(self, key: str, *, collection: str) -> bytes:
        payload = chaincode_shim_pb2.GetState(key=key, collection=collection)
        return await self._requester.request(
            _Type.GET_STATE, payload.SerializeToString()
        )

    async def _put(self, key: str, value: bytes, *, collection: str) -> None:
        payload = chaincode_shim_pb2.PutState(
            key=key, value=value, collection=collection
        )
        await self._requester.request(_Type.PUT_STATE, payload.SerializeToString())

    async def _delete(self, key: str, *, collection: str, message_type: int) -> None:
        payload = chaincode_shim_pb2.DelState(key=key, collection=collection)
        await self._requester.request(message_type, payload.SerializeToString())

    async def _range(
        self, start: str, end: str, *, collection: str, metadata: bytes
    ) -> tuple[StateQueryIterator, QueryResponseMetadata]:
        payload = chaincode_shim_pb2.GetStateByRange(
            startKey=start, endKey=end, collection=collection, metadata=metadata
        )
        answer = await self._requester.request(
            _Type.GET_STATE_BY_RANGE, payload.SerializeToString()
        )
        return self._iterator(answer)

    async def _query(
        self, query: str, *, collection: str, metadata: bytes
    ) -> tuple[StateQueryIterator, QueryResponseMetadata]:
        payload = chaincode_shim_pb2.GetQueryResult(
            query=query, collection=collection, metadata=metadata
        )
        answer = await self._requester.request(
            _Type.GET_QUERY_RESULT, payload.SerializeToString()
        )
        return self._iterator(answer)

    def _iterator(
        self, answer: bytes
    ) -> tuple[StateQueryIterator, QueryResponseMetadata]:
        response = decode_query_response(answer)
        iterator = QueryIterator(self._requester, response, decode_kv)
        return iterator, decode_metadata(response)

    async def _put_metadata(
        self, key: str, name: str, value: bytes, *, collection: str
    ) -> None:
        payload = chaincode_shim_pb2.PutStateMetadata(
            key=key,
            collection=collection,
            metadata=chaincode_shim_pb2.StateMetadata(metakey=name, value=value),
        )
        await self._requester.request(
            _Type.PUT_STATE_METADATA, payload.SerializeToString()
        )

    async def _get_metadata(self, key: str, name: str, *, collection: str) -> bytes:
        payload = chaincode_shim_pb2.GetStateMetadata(key=key, collection=collection)
        answer = await self._requester.request(
            _Type.GET_STATE_METADATA, payload.SerializeToString()
        )
        result = messages.parse(
            chaincode_shim_pb2.StateMetadataResult, answer, what="state metadata"
        )
        entries = {entry.metakey: entry.value for entry in result.entries}
        return entries.get(name, b"")


def _as_bytes(value: Value) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"state values are bytes or str, not {type(value).__name__}")


def _query_metadata(page_size: int, bookmark: str) -> bytes:
    if page_size <= 0:
        raise ValueError(f"page size must be a positive number, got {page_size}")
    return chaincode_shim_pb2.QueryMetadata(
        pageSize=page_size, bookmark=bookmark
    ).SerializeToString()


def _invocation_response(answer: bytes) -> ChaincodeResponse:
    message = messages.parse(
        chaincode_shim_pb2.ChaincodeMessage, answer, what="invoke_chaincode answer"
    )
    if message.type == _Type.ERROR:
        return ChaincodeResponse(
            status=500, message=message.payload.decode(errors="replace")
        )
    if message.type != _Type.COMPLETED:
        raise ShimProtocolError(
            f"invoke_chaincode answer is {messages.type_name(message.type)}, not COMPLETED"
        )
    response = messages.parse(
        proposal_response_pb2.Response,
        message.payload,
        what="invoked chaincode response",
    )
    return ChaincodeResponse(
        status=response.status, message=response.message, payload=response.payload
    )
