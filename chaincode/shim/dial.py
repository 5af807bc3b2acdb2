"""Dial mode (Fabric's classic launch): the chaincode dials the peer and registers.

`serve_peer` opens `protos.ChaincodeSupport/Register` on the peer, sends REGISTER and
serves invocations until the peer ends the stream. Like Fabric's shims it never
reconnects: the process that launched it decides what a lost stream means.

With `streams` > 1 (a medledger peer asks for that through `STREAMS_VARIABLE` when it
launches the chaincode) it opens that many Register streams on the one connection,
each a complete Fabric conversation under the same package id, once the first has
registered; the peer spreads transactions over them. An extra stream the peer refuses
(a Fabric peer refuses a second registration) is logged and left; serving ends when the
first stream ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import grpc.aio

from chaincode.errors import StreamClosedError
from chaincode.shim.execute import Chaincode
from chaincode.shim.session import HANDSHAKE_TIMEOUT_S, REQUEST_TIMEOUT_S, ShimSession
from protos.peer import chaincode_shim_pb2, chaincode_shim_pb2_grpc

_log = logging.getLogger(__name__)

MESSAGE_BYTES_MAX = 100 * 1024 * 1024
"""Largest message either side accepts (Fabric's default of 100 MiB)."""

EOF: object = grpc.aio.EOF  # type: ignore[attr-defined]  # missing from grpc-stubs
"""What grpc.aio's `read()` returns at the end of a stream."""

STREAMS_VARIABLE = "MEDLEDGER_CHAINCODE_STREAMS"
"""How many streams a launched chaincode opens to its peer (set by a medledger peer)."""

GRPC_OPTIONS: list[tuple[str, int | str]] = [
    ("grpc.max_send_message_length", MESSAGE_BYTES_MAX),
    ("grpc.max_receive_message_length", MESSAGE_BYTES_MAX),
]


@dataclass(frozen=True, slots=True)
class ClientTls:
    """TLS towards the peer: its CA (PEM), and our key pair for mutual TLS (PEM)."""

    root_certificate: bytes
    client_key: bytes | None = None
    client_certificate: bytes | None = None
    server_name_override: str = ""

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.root_certificate,
            private_key=self.client_key,
            certificate_chain=self.client_certificate,
        )


async def serve_peer(
    chaincode: Chaincode,
    *,
    peer_address: str,
    chaincode_id: str,
    tls: ClientTls | None = None,
    on_ready: Callable[[], None] | None = None,
    register_timeout_s: float = HANDSHAKE_TIMEOUT_S,
    request_timeout_s: float = REQUEST_TIMEOUT_S,
    streams: int = 1,
) -> None:
    """Register `chaincode` as `chaincode_id` with the peer and serve until the stream ends.

    `on_ready` is called once the peer has answered REGISTERED and READY on the first
    stream; `streams` - 1 more streams are opened after that (module docstring).

    Raises:
        StreamClosedError: the peer could not be reached or did not complete the
            handshake in time.
    """
    async with _open_channel(peer_address, tls) as channel:
        # Without a request iterator grpc.aio gives a call we write to ourselves.
        stub = chaincode_shim_pb2_grpc.ChaincodeSupportStub(channel)

        def session(on_session_ready: Callable[[], None] | None) -> ShimSession:
            return ShimSession(
                chaincode,
                chaincode_id=chaincode_id,
                request_timeout_s=request_timeout_s,
                handshake_timeout_s=register_timeout_s,
                on_ready=on_session_ready,
            )

        stream = CallStream(stub.Register())  # type: ignore[call-arg]
        extras: list[asyncio.Task[None]] = []

        def ready() -> None:
            for _ in range(streams - 1):
                extra = CallStream(stub.Register())  # type: ignore[call-arg]
                extras.append(asyncio.create_task(_serve_extra(session(None), extra)))
            if on_ready is not None:
                on_ready()

        first = session(ready)
        try:
            await first.run(stream)
        finally:
            for task in extras:
                task.cancel()
            await asyncio.gather(*extras, return_exceptions=True)
    if not first.ready.is_set():
        reason = (
            first.failure
            or stream.error
            or "the peer ended the stream during the handshake"
        )
        raise StreamClosedError(
            f"could not register with the peer at {peer_address}: {reason}"
        )
    _log.info("chaincode stream to %s ended", peer_address)


async def _serve_extra(session: ShimSession, stream: CallStream) -> None:
    """One more stream beside the first; the peer may refuse it (logged, not raised)."""
    await session.run(stream)
    if not session.ready.is_set():
        _log.info(
            "the peer did not accept an extra stream: %s",
            session.failure or stream.error or "it ended the stream",
        )


class CallStream:
    """A client-side bidi call as a `MessageStream`."""

    def __init__(
        self,
        call: grpc.aio.StreamStreamCall[
            chaincode_shim_pb2.ChaincodeMessage, chaincode_shim_pb2.ChaincodeMessage
        ],
    ) -> None:
        self._call = call
        self.error = ""

    async def read(self) -> chaincode_shim_pb2.ChaincodeMessage | None:
        try:
            message = await self._call.read()
        except grpc.aio.AioRpcError as error:
            self.error = f"{error.code().name}: {error.details()}"
            return None
        if message is EOF:
            return None
        assert isinstance(message, chaincode_shim_pb2.ChaincodeMessage)
        return message

    async def write(self, message: chaincode_shim_pb2.ChaincodeMessage) -> None:
        try:
            await self._call.write(message)
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as error:
            raise StreamClosedError(f"cannot write to the peer: {error}") from None


def _open_channel(address: str, tls: ClientTls | None) -> grpc.aio.Channel:
    options = list(GRPC_OPTIONS)
    if tls is None:
        return grpc.aio.insecure_channel(address, options=options)
    if tls.server_name_override:
        options.append(("grpc.ssl_target_name_override", tls.server_name_override))
    return grpc.aio.secure_channel(address, tls.credentials(), options=options)
