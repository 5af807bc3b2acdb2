"""How the etcd client classifies gRPC failures: a broken connection is transient.

gRPC reports a connection that broke under a call ("Stream removed", a TLS record
that does not decrypt) with status UNKNOWN. Such a failure once failed a whole etcd
chain (it was taken for etcd refusing the request); it must be retried instead.
"""

from __future__ import annotations

from typing import Any

import aetcd.rpc as etcdrpc  # type: ignore[import-untyped]
import grpc
import grpc.aio

from orderer.consensus.etcd_client import EtcdClient, _translate
from orderer.consensus.etcd_types import (
    EtcdRequestRejected,
    EtcdRevisionCompacted,
    EtcdUnavailable,
)

BROKEN = "Stream removed (Secure read failed (Unwrap failed (TSI_DATA_CORRUPTED)))"


def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    empty = grpc.aio.Metadata()
    return grpc.aio.AioRpcError(
        code, empty, empty, details=details, debug_error_string=""
    )


def test_a_broken_stream_is_transient() -> None:
    error = _translate(rpc_error(grpc.StatusCode.UNKNOWN, BROKEN))

    assert isinstance(error, EtcdUnavailable)


def test_refusals_and_compaction_keep_their_meaning() -> None:
    too_large = rpc_error(
        grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: request is too large"
    )
    compacted = rpc_error(
        grpc.StatusCode.OUT_OF_RANGE, "etcdserver: mvcc: required revision compacted"
    )

    assert isinstance(_translate(too_large), EtcdRequestRejected)
    assert isinstance(_translate(compacted), EtcdRevisionCompacted)


async def test_a_request_is_retried_after_a_broken_stream() -> None:
    client = EtcdClient(["127.0.0.1:9", "127.0.0.1:10"], attempt_timeout_s=0.1)
    answer = etcdrpc.PutResponse()
    answer.header.revision = 7
    failures = [rpc_error(grpc.StatusCode.UNKNOWN, BROKEN)]

    async def put(request: Any, **options: Any) -> Any:
        if failures:
            raise failures.pop()
        return answer

    try:
        response = await client._unary(lambda stub: put, "KV", etcdrpc.PutRequest())
    finally:
        await client.close()

    assert response.header.revision == 7
    assert client._current == 1  # moved on from the member whose stream broke
