"""Server mode (chaincode as a service): the peer dials the chaincode.

`ChaincodeServer` serves `protos.Chaincode/Connect`. Every call the peer opens is one
chaincode stream: the chaincode sends REGISTER on it and from then on the exchange is
the same as in dial mode, through the same `ShimSession`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import grpc
import grpc.aio

from chaincode.errors import StreamClosedError
from chaincode.shim.dial import EOF, MESSAGE_BYTES_MAX
from chaincode.shim.execute import Chaincode
from chaincode.shim.session import REQUEST_TIMEOUT_S, ShimSession
from protos.peer import chaincode_shim_pb2

_log = logging.getLogger(__name__)

SERVICE_NAME = "protos.Chaincode"
SERVER_OPTIONS: list[tuple[str, int | str]] = [
    ("grpc.max_send_message_length", MESSAGE_BYTES_MAX),
    ("grpc.max_receive_message_length", MESSAGE_BYTES_MAX),
    # Peers keep idle connections alive with pings; accept them rather than
    # answering GOAWAY "too many pings".
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
]


@dataclass(frozen=True, slots=True)
class ServerTls:
    """Our TLS key pair (PEM), and the CA of peers when client certificates are required."""

    certificate: bytes
    key: bytes
    client_root_certificate: bytes | None = None

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key, self.certificate)],
            root_certificates=self.client_root_certificate,
            require_client_auth=self.client_root_certificate is not None,
        )


class ChaincodeServer:
    """Serves one chaincode to every peer that connects (see the module docstring)."""

    def __init__(
        self,
        chaincode: Chaincode,
        *,
        chaincode_id: str,
        address: str,
        tls: ServerTls | None = None,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        if not chaincode_id:
            raise ValueError("a chaincode id (package id) is required to register")
        self._chaincode = chaincode
        self._chaincode_id = chaincode_id
        self._address = address
        self._tls = tls
        self._request_timeout_s = request_timeout_s
        self._server: grpc.aio.Server | None = None

    async def start(self) -> str:
        """Bind and start serving; the bound address as host:port (the real port)."""
        assert self._server is None, "server already started"
        server = grpc.aio.server(options=SERVER_OPTIONS)
        handler = grpc.stream_stream_rpc_method_handler(
            self._connect,
            request_deserializer=chaincode_shim_pb2.ChaincodeMessage.FromString,
            response_serializer=chaincode_shim_pb2.ChaincodeMessage.SerializeToString,
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE_NAME, {"Connect": handler}),)
        )
        if self._tls is None:
            port = server.add_insecure_port(self._address)
        else:
            port = server.add_secure_port(self._address, self._tls.credentials())
        await server.start()
        self._server = server
        host = self._address.rpartition(":")[0]
        return f"{host}:{port}"

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop accepting, give open streams `grace_s` to finish, then cancel them."""
        if self._server is not None:
            await self._server.stop(grace_s)
            self._server = None

    async def wait_for_termination(self) -> None:
        """Return when the server has stopped."""
        assert self._server is not None, "server not started"
        await self._server.wait_for_termination()

    async def _connect(
        self,
        request_iterator: object,
        context: grpc.aio.ServicerContext[
            chaincode_shim_pb2.ChaincodeMessage, chaincode_shim_pb2.ChaincodeMessage
        ],
    ) -> None:
        _log.info("peer %s connected", context.peer())
        session = ShimSession(
            self._chaincode,
            chaincode_id=self._chaincode_id,
            request_timeout_s=self._request_timeout_s,
        )
        await session.run(ContextStream(context))
        _log.info("peer %s disconnected", context.peer())


class ContextStream:
    """A server-side bidi call (its servicer context) as a `MessageStream`."""

    def __init__(
        self,
        context: grpc.aio.ServicerContext[
            chaincode_shim_pb2.ChaincodeMessage, chaincode_shim_pb2.ChaincodeMessage
        ],
    ) -> None:
        self._context = context

    async def read(self) -> chaincode_shim_pb2.ChaincodeMessage | None:
        message = await self._context.read()
        if message is EOF:
            return None
        assert isinstance(message, chaincode_shim_pb2.ChaincodeMessage)
        return message

    async def write(self, message: chaincode_shim_pb2.ChaincodeMessage) -> None:
        try:
            await self._context.write(message)
        except Exception as error:  # grpc raises several types once the call is done
            raise StreamClosedError(f"cannot write to the peer: {error}") from None
