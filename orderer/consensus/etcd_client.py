"""A small typed etcd v3 client for the etcd ordering backend, over grpc.aio.

It speaks etcd's gRPC API with the message classes and stubs generated in `aetcd`
(`aetcd.rpc`), but opens its own channels: aetcd's `Client` dials one plaintext
endpoint, while the orderer needs TLS with a client certificate and fail-over between
the members of a cluster. One channel per endpoint; a request that fails with
UNAVAILABLE or runs out of its attempt time moves to the next member and is retried
with backoff until the request deadline. Retried transactions are safe here because
every write the backend makes is a compare-and-swap or idempotent; the caller resolves
"did my first attempt land?" by reading. Watches ask the member to end the stream if
it loses its Raft leader (`hasleader` metadata), so a member cut off from the quorum
cannot silently starve a watcher.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import aetcd.rpc as etcdrpc  # type: ignore[import-untyped]
import grpc
import grpc.aio

from orderer.consensus.etcd_types import (
    Compare,
    CreatedAt,
    DeleteRange,
    EtcdRequestRejected,
    EtcdRevisionCompacted,
    EtcdTlsConfig,
    EtcdUnavailable,
    Get,
    KeyMissing,
    KeyValue,
    Op,
    Put,
    RangeResult,
    TxnResult,
    ValueEquals,
    WatchBatch,
    WatchEvent,
)

_LOG = logging.getLogger(__name__)

MESSAGE_BYTES_MAX = 64 * 1024 * 1024
_RETRY_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        # gRPC reports a connection that broke under a call ("Stream removed", a TLS
        # record that does not decrypt) as UNKNOWN: the request's fate is unknown,
        # as with UNAVAILABLE, and etcd's own refusals carry other codes.
        grpc.StatusCode.UNKNOWN,
    }
)
_BACKOFF_FIRST_S = 0.05
_BACKOFF_MAX_S = 0.5
_CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_send_message_length", MESSAGE_BYTES_MAX),
    ("grpc.max_receive_message_length", MESSAGE_BYTES_MAX),
    # etcd refuses client pings more often than every 5 s (--grpc-keepalive-min-time).
    ("grpc.keepalive_time_ms", 5000),
    ("grpc.keepalive_timeout_ms", 3000),
    ("grpc.keepalive_permit_without_calls", 0),
    # A restarted member must be redialled in well under a lease TTL.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
)
_REQUIRE_LEADER = (("hasleader", "true"),)
_EOF: object = grpc.aio.EOF  # type: ignore[attr-defined]  # missing from grpc-stubs


class EtcdClient:
    """Requests to one etcd cluster; every method has a deadline (`request_timeout_s`)."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        tls: EtcdTlsConfig | None = None,
        request_timeout_s: float = 5.0,
        attempt_timeout_s: float = 2.0,
    ) -> None:
        if not endpoints:
            raise ValueError("an etcd client needs at least one endpoint")
        self.endpoints = tuple(endpoints)
        self.request_timeout_s = request_timeout_s
        self.attempt_timeout_s = attempt_timeout_s
        self._channels = [_open_channel(endpoint, tls) for endpoint in self.endpoints]
        self._current = 0

    async def close(self) -> None:
        await asyncio.gather(*(channel.close(grace=None) for channel in self._channels))

    # Key-value

    async def get(self, key: bytes) -> KeyValue | None:
        """The current value of `key` (linearizable read), or None."""
        result = await self.get_range(key, b"")
        return result.kvs[0] if result.kvs else None

    async def get_range(
        self, start: bytes, end: bytes, *, limit: int = 0, revision: int = 0
    ) -> RangeResult:
        """Keys in [start, end) in key order (end b"" means just `start`), at `revision`.

        Raises:
            EtcdRevisionCompacted: `revision` is older than the last compaction.
        """
        request = etcdrpc.RangeRequest(
            key=start, range_end=end, limit=limit, revision=revision
        )
        request.sort_order = etcdrpc.RangeRequest.ASCEND
        response = await self._unary(lambda stub: stub.Range, "KV", request)
        return _range_result(response)

    async def put(self, key: bytes, value: bytes, *, lease: int = 0) -> int:
        """Write `key`; returns the revision of the write."""
        request = etcdrpc.PutRequest(key=key, value=value, lease=lease)
        response = await self._unary(lambda stub: stub.Put, "KV", request)
        return int(response.header.revision)

    async def txn(
        self,
        compare: Sequence[Compare],
        success: Sequence[Op],
        failure: Sequence[Op] = (),
    ) -> TxnResult:
        """One etcd transaction: if every compare holds run `success`, else `failure`."""
        # Built in place: a block value (up to 1.5 MB) is copied once into the
        # request, not once more per enclosing message.
        request = etcdrpc.TxnRequest(
            compare=[compare_message(item) for item in compare]
        )
        for op in success:
            fill_op(request.success.add(), op)
        for op in failure:
            fill_op(request.failure.add(), op)
        response = await self._unary(lambda stub: stub.Txn, "KV", request)
        ranges = tuple(
            _range_result(item.response_range)
            for item in response.responses
            if item.WhichOneof("response") == "response_range"
        )
        return TxnResult(
            succeeded=bool(response.succeeded),
            revision=int(response.header.revision),
            ranges=ranges,
        )

    async def compact(self, revision: int) -> None:
        """Drop the history before `revision` (already compacted counts as done)."""
        request = etcdrpc.CompactionRequest(revision=revision)
        try:
            await self._unary(lambda stub: stub.Compact, "KV", request)
        except EtcdRevisionCompacted:
            return

    # Leases

    async def grant_lease(self, ttl_s: int) -> tuple[int, int]:
        """A new lease; returns (lease id, granted TTL in seconds)."""
        request = etcdrpc.LeaseGrantRequest(TTL=ttl_s)
        response = await self._unary(lambda stub: stub.LeaseGrant, "Lease", request)
        if response.error:
            raise EtcdUnavailable(f"lease grant refused: {response.error}")
        return int(response.ID), int(response.TTL)

    async def keep_alive(self, lease_id: int, *, timeout_s: float) -> int:
        """Refresh the lease once; returns its new TTL (0 or less: the lease is gone)."""
        index = self._current
        stub = etcdrpc.LeaseStub(self._channels[index])
        call = stub.LeaseKeepAlive()
        try:
            async with asyncio.timeout(timeout_s):
                await call.write(etcdrpc.LeaseKeepAliveRequest(ID=lease_id))
                response = await call.read()
        except (TimeoutError, grpc.aio.AioRpcError) as error:
            self._rotate(index)
            raise EtcdUnavailable(
                f"lease keep-alive failed: {_describe(error)}"
            ) from error
        finally:
            call.cancel()  # one request, one answer: never leave the stream open
        if response is _EOF:
            self._rotate(index)
            raise EtcdUnavailable("lease keep-alive stream ended")
        return int(response.TTL)

    async def revoke_lease(self, lease_id: int) -> None:
        request = etcdrpc.LeaseRevokeRequest(ID=lease_id)
        try:
            await self._unary(lambda stub: stub.LeaseRevoke, "Lease", request)
        except EtcdRequestRejected:
            return  # already expired or revoked

    # Watch

    async def watch(
        self, start: bytes, end: bytes, *, start_revision: int
    ) -> AsyncIterator[WatchBatch]:
        """Changes to keys in [start, end) from `start_revision` on, in revision order.

        Yields a batch per watch response, including empty progress notifications. The
        stream ends with EtcdUnavailable when the member goes away or loses its leader;
        the caller watches again from the revision after the last one it saw.

        Raises:
            EtcdRevisionCompacted: `start_revision` was compacted away.
            EtcdUnavailable: the stream failed or the member lost its leader.
        """
        index = self._current
        stub = etcdrpc.WatchStub(self._channels[index])
        create = etcdrpc.WatchCreateRequest(
            key=start,
            range_end=end,
            start_revision=start_revision,
            progress_notify=True,
        )
        call = stub.Watch(metadata=_REQUIRE_LEADER)
        try:
            await call.write(etcdrpc.WatchRequest(create_request=create))
            while True:
                response = await call.read()
                if response is _EOF:
                    raise EtcdUnavailable("etcd ended the watch stream")
                batch = _watch_batch(response)
                if batch is not None:
                    yield batch
        except grpc.aio.AioRpcError as error:
            self._rotate(index)
            raise _translate(error) from error
        finally:
            call.cancel()

    # Helpers

    async def _unary(
        self,
        method: Callable[[Any], Callable[..., Awaitable[Any]]],
        service: str,
        request: Any,
    ) -> Any:
        deadline = time.monotonic() + self.request_timeout_s
        backoff_s = _BACKOFF_FIRST_S
        while True:
            index = self._current
            stub = _stub(service, self._channels[index])
            remaining = deadline - time.monotonic()
            try:
                return await method(stub)(
                    request, timeout=max(0.01, min(self.attempt_timeout_s, remaining))
                )
            except grpc.aio.AioRpcError as error:
                if error.code() not in _RETRY_CODES:
                    raise _translate(error) from error
                self._rotate(index)
                if time.monotonic() + backoff_s >= deadline:
                    raise EtcdUnavailable(
                        f"etcd did not answer within {self.request_timeout_s} s: "
                        f"{_describe(error)}"
                    ) from error
            await asyncio.sleep(backoff_s)
            backoff_s = min(2 * backoff_s, _BACKOFF_MAX_S)

    def _rotate(self, failed_index: int) -> None:
        """Move to the next member unless another request already moved."""
        if self._current == failed_index:
            self._current = (failed_index + 1) % len(self._channels)


def _open_channel(endpoint: str, tls: EtcdTlsConfig | None) -> grpc.aio.Channel:
    if tls is None:
        return grpc.aio.insecure_channel(endpoint, options=_CHANNEL_OPTIONS)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls.ca_pem,
        private_key=tls.key_pem,
        certificate_chain=tls.cert_pem,
    )
    options: list[tuple[str, Any]] = list(_CHANNEL_OPTIONS)
    if tls.server_name is not None:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return grpc.aio.secure_channel(endpoint, credentials, options=options)


def _stub(service: str, channel: grpc.aio.Channel) -> Any:
    return etcdrpc.KVStub(channel) if service == "KV" else etcdrpc.LeaseStub(channel)


def _range_result(response: Any) -> RangeResult:
    return RangeResult(
        kvs=tuple(_key_value(kv) for kv in response.kvs),
        more=bool(response.more),
        revision=int(response.header.revision),
    )


def _key_value(kv: Any) -> KeyValue:
    return KeyValue(
        key=bytes(kv.key),
        value=bytes(kv.value),
        create_revision=int(kv.create_revision),
        mod_revision=int(kv.mod_revision),
        lease=int(kv.lease),
    )


def _watch_batch(response: Any) -> WatchBatch | None:
    """A batch from one watch response; None for the bare "created" acknowledgement."""
    if response.compact_revision:
        raise EtcdRevisionCompacted(
            "watch start revision was compacted",
            compact_revision=int(response.compact_revision),
        )
    if response.canceled:
        raise EtcdUnavailable(f"etcd cancelled the watch: {response.cancel_reason}")
    if response.created and not response.events:
        return None
    events = tuple(
        WatchEvent(
            is_delete=event.type == etcdrpc.Event.DELETE, kv=_key_value(event.kv)
        )
        for event in response.events
    )
    return WatchBatch(revision=int(response.header.revision), events=events)


def _translate(error: grpc.aio.AioRpcError) -> Exception:
    code = error.code()
    details = error.details() or ""
    if code == grpc.StatusCode.OUT_OF_RANGE and "compacted" in details:
        return EtcdRevisionCompacted(details, compact_revision=0)
    if code in _RETRY_CODES or code == grpc.StatusCode.CANCELLED:
        return EtcdUnavailable(_describe(error))
    return EtcdRequestRejected(_describe(error))


def _describe(error: BaseException) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        return f"{error.code().name}: {error.details()}"
    return type(error).__name__


def compare_message(compare: Compare) -> Any:
    """The etcd `Compare` message for one of our compare values."""
    message = etcdrpc.Compare(key=compare.key, result=etcdrpc.Compare.EQUAL)
    match compare:
        case KeyMissing():
            message.target = etcdrpc.Compare.CREATE
            message.create_revision = 0
        case CreatedAt(revision=revision):
            message.target = etcdrpc.Compare.CREATE
            message.create_revision = revision
        case ValueEquals(value=value):
            message.target = etcdrpc.Compare.VALUE
            message.value = value
    return message


def op_message(op: Op) -> Any:
    """The etcd `RequestOp` message for one of our transaction operations."""
    message = etcdrpc.RequestOp()
    fill_op(message, op)
    return message


def fill_op(message: Any, op: Op) -> None:
    """Set an empty etcd `RequestOp` to one of our transaction operations."""
    match op:
        case Put(key=key, value=value, lease=lease):
            put = message.request_put
            put.key, put.value, put.lease = key, value, lease
        case Get(key=key, range_end=range_end):
            get = message.request_range
            get.key, get.range_end = key, range_end
        case DeleteRange(key=key, range_end=range_end):
            delete = message.request_delete_range
            delete.key, delete.range_end = key, range_end
