"""The gateway process: `gateway.Gateway` and `protos.Deliver` on one gRPC endpoint.

`GatewayNode(config)` is a `common.node.Node`. `start()` loads the gateway's signing
identity, prepares connections to the configured peers (dialled lazily), binds the
listener and returns {"grpc": host:port} (and "operations" when the config enables
the operations endpoint, `gateway.operations`; every call is counted by
`gateway.metrics`). `jobs()` are, per served channel, the follower that keeps the
channel view current from a peer's blocks and the trackers of every peer's height.
`stop()` stops accepting, drains in-flight calls for up to `grace_s`, then closes the
peer and orderer connections.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine, Sequence
from typing import Any

import grpc

from common.msp import SigningIdentity, load_signing_identity
from common.node_setup import bind_listener, new_server
from common.operations import OperationsServer
from gateway.channels import Channels, follow_channel
from gateway.config import GatewayConfig
from gateway.connections import DialSettings, PeerClient
from gateway.context import GatewayContext
from gateway.deliver_proxy import DeliverProxy
from gateway.metrics import RequestMetrics
from gateway.operations import gateway_operations
from gateway.orderers import OrdererDirectory
from gateway.registry import Registry
from gateway.service import GatewayService

__all__ = ["GatewayNode"]

_LOG = logging.getLogger(__name__)


class GatewayNode:
    """One organisation's gateway; see the module docstring for start and stop."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self._context: GatewayContext | None = None
        self._server: grpc.aio.Server | None = None
        self._operations: OperationsServer | None = None
        self._stopped = False

    @property
    def context(self) -> GatewayContext:
        assert self._context is not None, "gateway not started"
        return self._context

    async def start(self) -> dict[str, str]:
        config = self.config
        identity = load_signing_identity(config.msp_dir, mspid=config.mspid)
        self._context = self._build_context(identity)
        server = new_server(
            config.limits.max_message_bytes, interceptors=[RequestMetrics()]
        )
        server.add_generic_rpc_handlers(
            [
                GatewayService(self._context).rpc_handler(),
                DeliverProxy(self._context.registry).rpc_handler(),
            ]
        )
        address = bind_listener(server, config.listen, config.tls)
        self._server = server
        await server.start()
        _LOG.info(
            "gateway started name=%s mspid=%s grpc=%s channels=%s peers=%d",
            config.name,
            config.mspid,
            address,
            ",".join(config.channels),
            len(config.peers),
        )
        if config.operations is None:
            return {"grpc": address}
        self._operations = gateway_operations(config.operations, self._context)
        return {"grpc": address, "operations": await self._operations.start()}

    def jobs(self) -> Sequence[Coroutine[Any, Any, None]]:
        ctx = self.context
        jobs: list[Coroutine[Any, Any, None]] = []
        for view in ctx.channels.views.values():
            jobs.append(
                follow_channel(
                    view, ctx.registry, creator=ctx.creator, signer=ctx.signer
                )
            )
            jobs.append(
                ctx.registry.track_heights(
                    view.channel_id, creator=ctx.creator, signer=ctx.signer
                )
            )
        return jobs

    async def stop(self, grace_s: float) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._operations is not None:
            await self._operations.stop()
        if self._server is not None:
            await self._server.stop(grace_s)
        if self._context is not None:
            for peer in self._context.registry.peers:
                await peer.close()
            await self._context.orderers.close()
        _LOG.info("gateway stopped name=%s", self.config.name)

    def _build_context(self, identity: SigningIdentity) -> GatewayContext:
        config = self.config
        limit = config.limits.max_message_bytes
        peers = [
            PeerClient(
                peer.address,
                peer.mspid,
                DialSettings.from_files(
                    peer.tls,
                    client_tls=config.client_tls,
                    server_name=peer.server_name,
                    max_message_bytes=limit,
                ),
            )
            for peer in config.peers
        ]
        extra_roots = [path.read_bytes() for path in config.orderers.tls_root_cas]
        return GatewayContext(
            registry=Registry(config.mspid, peers),
            channels=Channels(config.channels),
            orderers=OrdererDirectory(
                config.orderers,
                use_tls=config.orderer_tls,
                base=DialSettings(
                    root_certs=None,
                    client_pair=_client_pair(config),
                    max_message_bytes=limit,
                ),
                extra_roots=extra_roots,
            ),
            creator=identity.serialized,
            signer=identity.sign,
            timeouts=config.timeouts,
        )


def _client_pair(config: GatewayConfig) -> tuple[bytes, bytes] | None:
    pair = config.client_tls
    if pair is None or pair.cert is None or pair.key is None:
        return None
    return pair.cert.read_bytes(), pair.key.read_bytes()
