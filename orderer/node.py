"""The orderer process: gRPC AtomicBroadcast, the participation API, the channels.

`OrdererNode(config)` is a `common.node.Node`. `start()` loads the signing identity,
reopens every joined channel (chains started), binds the gRPC listener and the admin
REST listener, and returns {"grpc": host:port, "admin": host:port}, plus "operations"
when the config enables the operations endpoint (`orderer.operations`). `stop()` shuts
down in order: the operations endpoint and the admin API close, Broadcast refuses new
envelopes with SERVICE_UNAVAILABLE (clients move to another orderer), Deliver waits end,
the gRPC server stops accepting and drains in-flight calls for up to `grace_s`, every
chain writes its pending batch and stops, the block stores close, and the signature
worker (orderer.signature_worker, started by the first Broadcast) stops.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine, Sequence
from typing import Any

import grpc
from aiohttp import web

from common.config_fields import format_address, parse_address
from common.deliver import DeliverSettings
from common.msp import load_signing_identity
from common.node_setup import bind_listener, new_server
from common.operations import OperationsServer
from common.tls import server_ssl_context
from orderer.config import OrdererConfig
from orderer.consensus import (
    ClosableBackend,
    GrpcBackend,
    OrderingBackend,
    create_backend,
)
from orderer.operations import orderer_operations
from orderer.participation import build_app
from orderer.registrar import Registrar
from orderer.service import AtomicBroadcastService
from orderer.signature_worker import SignatureWorker

__all__ = ["OrdererNode"]

_LOG = logging.getLogger(__name__)


class OrdererNode:
    """One orderer; see the module docstring for the start and stop order."""

    def __init__(
        self, config: OrdererConfig, *, backend: OrderingBackend | None = None
    ) -> None:
        self.config = config
        self._backend = backend
        self._registrar: Registrar | None = None
        self._server: grpc.aio.Server | None = None
        self._admin: web.AppRunner | None = None
        self._operations: OperationsServer | None = None
        self._stopped = False
        self._service: AtomicBroadcastService | None = None
        self._signatures = SignatureWorker()

    @property
    def signatures(self) -> SignatureWorker:
        """Where Broadcast verifies envelope signatures (started by the first one)."""
        return self._signatures

    @property
    def registrar(self) -> Registrar:
        assert self._registrar is not None, "orderer not started"
        return self._registrar

    async def start(self) -> dict[str, str]:
        config = self.config
        signer = load_signing_identity(config.msp_dir, mspid=config.mspid)
        backend = self._backend or create_backend(config)
        self._backend = backend
        self._registrar = Registrar(config.storage, backend=backend, signer=signer)
        await self._registrar.open_all()
        grpc_address = await self._start_grpc(backend, self._registrar)
        admin_address = await self._start_admin(self._registrar)
        _LOG.info(
            "orderer started name=%s backend=%s grpc=%s admin=%s channels=%s",
            config.name,
            backend.name,
            grpc_address,
            admin_address,
            ",".join(self._registrar.names()) or "-",
        )
        addresses = {"grpc": grpc_address, "admin": admin_address}
        if config.operations is not None:
            self._operations = orderer_operations(config.operations, self._registrar)
            addresses["operations"] = await self._operations.start()
        return addresses

    def jobs(self) -> Sequence[Coroutine[Any, Any, None]]:
        return ()

    async def stop(self, grace_s: float) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._operations is not None:
            await self._operations.stop()
        if self._admin is not None:
            await self._admin.cleanup()
        if self._service is not None:
            self._service.drain()
        if self._registrar is not None:
            self._registrar.close_feeds()
        if self._server is not None:
            await self._server.stop(grace_s)
        if self._registrar is not None:
            await self._registrar.close()
        await self._signatures.close()
        backend: object = self._backend
        if isinstance(backend, ClosableBackend):
            await backend.close()
        _LOG.info("orderer stopped name=%s", self.config.name)

    async def _start_grpc(self, backend: OrderingBackend, registrar: Registrar) -> str:
        config = self.config
        server = new_server(config.limits.max_message_bytes)
        service = AtomicBroadcastService(
            registrar,
            broadcast_window=config.limits.broadcast_window,
            deliver_settings=DeliverSettings(
                time_window_s=config.limits.deliver_time_window_s,
                mutual_tls=config.tls is not None and config.tls.mutual,
            ),
            signatures=self._signatures,
        )
        self._service = service
        handlers = [service.rpc_handler()]
        if isinstance(backend, GrpcBackend):
            handlers.extend(backend.rpc_handlers())
        server.add_generic_rpc_handlers(handlers)
        address = bind_listener(server, config.listen, config.tls)
        self._server = server
        await server.start()
        return address

    async def _start_admin(self, registrar: Registrar) -> str:
        admin = self.config.admin
        runner = web.AppRunner(build_app(registrar), access_log=None)
        await runner.setup()
        self._admin = runner
        host, port = parse_address(admin.listen)
        ssl_context = None if admin.tls is None else server_ssl_context(admin.tls)
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        await site.start()
        bound = runner.addresses[0]
        return format_address(host, int(bound[1]))
