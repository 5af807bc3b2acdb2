"""Which orderers serve a channel, and connections to them.

The endpoints come from the channel configuration (each ordering organisation's
`Endpoints`, else the channel-wide `OrdererAddresses`), trusted with that
organisation's TLS root and intermediate CAs plus any configured extra roots. The
gateway's `orderers.address_overrides` redirect an endpoint, and its
`orderers.endpoints` stand in when a configuration names none. Connections are cached
by address and trust material.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from common.channelconfig import ChannelConfig
from gateway.config import OrdererSettings
from gateway.connections import DialSettings, OrdererClient
from protos.msp import msp_config_pb2

__all__ = ["OrdererDirectory", "OrdererEndpoint", "orderer_endpoints"]


@dataclass(frozen=True, slots=True)
class OrdererEndpoint:
    """An orderer as the channel names it: address to dial, MSP id, TLS roots (PEM)."""

    address: str
    mspid: str
    tls_roots: bytes


def orderer_endpoints(
    config: ChannelConfig, settings: OrdererSettings
) -> tuple[OrdererEndpoint, ...]:
    """The channel's orderers, overrides applied (see the module docstring)."""
    found: list[OrdererEndpoint] = []
    all_roots = b"".join(
        _tls_roots(org.msp_config) for org in config.orderer_orgs.values()
    )
    for org in config.orderer_orgs.values():
        roots = _tls_roots(org.msp_config)
        found.extend(
            OrdererEndpoint(_override(endpoint, settings), org.mspid, roots)
            for endpoint in org.endpoints
        )
    if not found:
        mspid = next(iter(config.orderer_orgs), "")
        addresses = config.orderer_addresses or settings.endpoints
        found.extend(
            OrdererEndpoint(_override(address, settings), mspid, all_roots)
            for address in addresses
        )
    return tuple(dict.fromkeys(found))


class OrdererDirectory:
    """Orderer clients for channels, built from their configs and cached."""

    def __init__(
        self,
        settings: OrdererSettings,
        *,
        use_tls: bool,
        base: DialSettings,
        extra_roots: Sequence[bytes] = (),
    ) -> None:
        self._settings = settings
        self._use_tls = use_tls
        self._base = base
        self._extra_roots = b"".join(extra_roots)
        self._clients: dict[tuple[str, bytes], OrdererClient] = {}

    def clients(self, config: ChannelConfig) -> list[OrdererClient]:
        """A client for each of the channel's orderers, in configuration order."""
        return [
            self._client(endpoint)
            for endpoint in orderer_endpoints(config, self._settings)
        ]

    def _client(self, endpoint: OrdererEndpoint) -> OrdererClient:
        roots = endpoint.tls_roots + self._extra_roots if self._use_tls else None
        key = (endpoint.address, roots or b"")
        client = self._clients.get(key)
        if client is None:
            settings = DialSettings(
                root_certs=roots,
                client_pair=self._base.client_pair,
                max_message_bytes=self._base.max_message_bytes,
            )
            client = OrdererClient(endpoint.address, endpoint.mspid, settings)
            self._clients[key] = client
        return client

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()


def _override(endpoint: str, settings: OrdererSettings) -> str:
    return settings.address_overrides.get(endpoint, endpoint)


def _tls_roots(msp_config: bytes) -> bytes:
    config = msp_config_pb2.FabricMSPConfig()
    try:
        config.ParseFromString(msp_config)
    except DecodeError:
        return b""
    certs = [*config.tls_root_certs, *config.tls_intermediate_certs]
    return b"".join(cert if cert.endswith(b"\n") else cert + b"\n" for cert in certs)
