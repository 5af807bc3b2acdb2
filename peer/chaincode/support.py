"""The peer's chaincode endpoints: the Register service, and dialling chaincode servers.

Two ways a chaincode stream comes to exist, served by the same handler:

- launch mode: the chaincode process dials the peer's chaincode address and
  calls `protos.ChaincodeSupport/Register`; `ChaincodeSupportService` serves it.
  The Node shim pings every 110 s with keepalive permitted without calls, so the
  server must accept pings that often: `SERVER_OPTIONS` allows one a minute
  (Fabric's enforcement policy), and messages up to 100 MiB;
- chaincode as a service: the chaincode listens and the peer calls
  `protos.Chaincode/Connect` on it (`ChaincodeService`). When that stream ends the
  connection is dialled again, with exponential backoff capped at
  `backoff_max_s`, until `stop`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import grpc

from peer.chaincode.handler import ChaincodeHandler, Invoker
from peer.chaincode.registry import ChaincodeRegistry
from peer.chaincode.requests import QueryLimits
from peer.chaincode.stream import CallStream, ServerStream
from protos.peer import chaincode_shim_pb2, chaincode_shim_pb2_grpc

__all__ = [
    "CHANNEL_OPTIONS",
    "SERVER_OPTIONS",
    "ChaincodeService",
    "ChaincodeSupportService",
    "ServiceEndpoint",
    "add_chaincode_support",
]

_LOG = logging.getLogger(__name__)

Message = chaincode_shim_pb2.ChaincodeMessage

MAX_MESSAGE_BYTES = 100 * 1024 * 1024

SERVER_OPTIONS: list[tuple[str, int]] = [
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 60_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 60_000),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]
"""Options for the gRPC server that serves `protos.ChaincodeSupport`."""

CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]
"""Options for the channels the peer opens to chaincode servers."""


class ChaincodeSupportService(chaincode_shim_pb2_grpc.ChaincodeSupportServicer):
    """`protos.ChaincodeSupport/Register`: a chaincode dialled in; serve its stream."""

    def __init__(
        self,
        registry: ChaincodeRegistry,
        *,
        invoker: Invoker | None = None,
        limits: QueryLimits | None = None,
    ) -> None:
        self._registry = registry
        self._invoker = invoker
        self._limits = limits

    async def Register(  # type: ignore[override]  # a coroutine, not a generator
        self,
        request_iterator: object,
        context: grpc.aio.ServicerContext[Message, Message],
    ) -> None:
        handler = ChaincodeHandler(
            ServerStream(context),
            self._registry,
            invoker=self._invoker,
            limits=self._limits,
        )
        await handler.run()


def add_chaincode_support(
    server: grpc.aio.Server, service: ChaincodeSupportService
) -> None:
    """Serve `protos.ChaincodeSupport` on `server` (build it with `SERVER_OPTIONS`)."""
    chaincode_shim_pb2_grpc.add_ChaincodeSupportServicer_to_server(service, server)


@dataclass(frozen=True, slots=True)
class ServiceEndpoint:
    """Where a chaincode server listens (a CCaaS package's connection.json)."""

    address: str
    dial_timeout_s: float = 10.0
    root_cert: bytes | None = None
    """PEM of the CA that signed the chaincode server's TLS certificate (None: plaintext)."""
    client_key: bytes | None = None
    client_cert: bytes | None = None
    server_name_override: str | None = None

    def open_channel(self) -> grpc.aio.Channel:
        options: list[tuple[str, int | str]] = list(CHANNEL_OPTIONS)
        if self.root_cert is None:
            return grpc.aio.insecure_channel(self.address, options=options)
        if self.server_name_override:
            options.append(("grpc.ssl_target_name_override", self.server_name_override))
        credentials = grpc.ssl_channel_credentials(
            root_certificates=self.root_cert,
            private_key=self.client_key,
            certificate_chain=self.client_cert,
        )
        return grpc.aio.secure_channel(self.address, credentials, options=options)


class ChaincodeService:
    """Keeps a stream open to one chaincode server, redialling when it ends."""

    def __init__(
        self,
        package_id: str,
        endpoint: ServiceEndpoint,
        registry: ChaincodeRegistry,
        *,
        invoker: Invoker | None = None,
        limits: QueryLimits | None = None,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 5.0,
    ) -> None:
        self.package_id = package_id
        self.endpoint = endpoint
        self._registry = registry
        self._invoker = invoker
        self._limits = limits
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._task: asyncio.Task[None] | None = None
        self._handler: ChaincodeHandler | None = None
        self.streams_opened = 0
        """How many streams reached the peer's handler (for tests and metrics)."""

    def start(self) -> None:
        """Begin dialling (idempotent); the registry expects the package from now on."""
        if self._task is not None:
            return
        self._registry.expect(self.package_id)
        self._task = asyncio.create_task(
            self._keep_connected(), name=f"ccaas {self.package_id}"
        )

    async def stop(self) -> None:
        """Close the stream, stop redialling and wait until done."""
        task, self._task = self._task, None
        if task is None:
            return
        if self._handler is not None:
            self._handler.close("the peer stopped dialling the chaincode")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        self._registry.forget(self.package_id)

    async def _keep_connected(self) -> None:
        delay = self._backoff_initial_s
        while True:
            registered = await self._connect_once()
            delay = (
                self._backoff_initial_s
                if registered
                else min(delay * 2, self._backoff_max_s)
            )
            _LOG.info(
                "redialling chaincode %s at %s in %.2f s",
                self.package_id,
                self.endpoint.address,
                delay,
            )
            await asyncio.sleep(delay)

    async def _connect_once(self) -> bool:
        """Dial, serve one stream until it ends; whether the chaincode registered."""
        channel = self.endpoint.open_channel()
        try:
            try:
                await asyncio.wait_for(
                    channel.channel_ready(), self.endpoint.dial_timeout_s
                )
            except TimeoutError:
                _LOG.warning(
                    "chaincode %s: no connection to %s within %g s",
                    self.package_id,
                    self.endpoint.address,
                    self.endpoint.dial_timeout_s,
                )
                return False
            stub = chaincode_shim_pb2_grpc.ChaincodeStub(channel)
            call = stub.Connect()  # type: ignore[call-arg]  # written to, not fed an iterator
            handler = ChaincodeHandler(
                CallStream(call),
                self._registry,
                invoker=self._invoker,
                limits=self._limits,
                expected_package_id=self.package_id,
            )
            self._handler = handler
            self.streams_opened += 1
            await handler.run()
            return handler.package_id == self.package_id
        finally:
            self._handler = None
            await channel.close(None)
