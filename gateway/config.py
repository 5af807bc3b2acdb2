"""The gateway's own configuration file, `gateway.yaml`, as frozen dataclasses.

Relative paths are relative to the file's folder. Errors name the file, line and key.
One gateway serves one organisation: it signs its own requests to peers (Deliver,
ledger queries) with that organisation's identity, prefers that organisation's peers,
and reaches other organisations' peers for cross-organisation endorsement. Which
orderers serve a channel comes from the channel config (its ordering organisations'
endpoints and TLS CAs); `orderers` only redirects or adds to that.

    name: gateway.hospital-a.example.com     # the node's name (logs)
    msp:
      id: HospitalAMSP                       # the gateway's organisation
      dir: users/gateway/msp                 # the identity it signs its own requests with
    listen: 127.0.0.1:7060                   # gRPC: gateway.Gateway and protos.Deliver
    tls:                                     # TLS of the listener (as in peer.yaml)
      enabled: true
      cert: gateway/tls/server.crt
      key: gateway/tls/server.key
      client_root_cas: [tlsca.pem]           # CAs of client certificates
      mutual: false
    client_tls: {cert: c.pem, key: k.pem}    # optional: our pair for mutual-TLS peers/orderers
    channels: [records]                      # the channels it serves
    peers:                                   # this org's peers and other orgs' peers
      - address: 127.0.0.1:7051
        mspid: HospitalAMSP
        tls_root_cas: [peers/tlsca.pem]      # required unless `tls: false`
        server_name: peer0.hospital-a.example.com   # optional TLS name override
      - {address: 127.0.0.1:8051, mspid: HospitalBMSP, tls: false}
    orderers:                                # optional
      address_overrides: {"orderer0.example.com:7050": 127.0.0.1:7050}
      tls_root_cas: [extra-ca.pem]           # trusted besides the config's orderer TLS CAs
      tls: true                              # default: as the gateway's own listener
      endpoints: [127.0.0.1:7050]            # used when a channel config names none
    timeouts:                                # optional; the defaults are shown
      endorse: 30s                           # one ProcessProposal call
      broadcast: 30s                         # one Broadcast to one orderer
      catch_up: 5s                           # wait for a lagging peer before asking it
    limits:
      max_message_bytes: 104857600
    operations:                              # optional: /healthz, /metrics, /version
      listen: 127.0.0.1:9445                 # plain HTTP (common.operations)

`tls` may be left out only with `enabled: false` spelled out (plaintext must be
deliberate); so may a peer's `tls_root_cas`, only with `tls: false`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from common.config import ConfigNode, check_unique, load_yaml, optional_list
from common.config_fields import (
    format_address,
    parse_address,
    read_address,
    read_address_overrides,
    read_duration,
    read_path,
    read_paths,
)
from common.node_setup import NODE_KEYS, read_node_fields
from common.operations import OperationsSettings, read_operations
from common.tls import TlsFiles

__all__ = [
    "GatewayConfig",
    "GatewayLimits",
    "GatewayTimeouts",
    "OrdererSettings",
    "PeerEndpointConfig",
    "format_address",
    "load_gateway_config",
    "parse_address",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerEndpointConfig:
    """A peer the gateway may use; `tls` None means plaintext."""

    address: str
    mspid: str
    tls: TlsFiles | None
    server_name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrdererSettings:
    """How to reach the orderers named in channel configs.

    `tls` None means: the same as the gateway's own listener.
    """

    address_overrides: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({})
    )
    tls_root_cas: tuple[Path, ...] = ()
    tls: bool | None = None
    endpoints: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayTimeouts:
    endorse_s: float = 30.0
    broadcast_s: float = 30.0
    catch_up_s: float = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayLimits:
    max_message_bytes: int = 100 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayConfig:
    """One gateway's settings; `tls` None means a plaintext listener."""

    source: Path
    name: str
    mspid: str
    msp_dir: Path
    listen: str
    tls: TlsFiles | None
    channels: tuple[str, ...]
    peers: tuple[PeerEndpointConfig, ...]
    client_tls: TlsFiles | None = None
    orderers: OrdererSettings = OrdererSettings()
    timeouts: GatewayTimeouts = GatewayTimeouts()
    limits: GatewayLimits = GatewayLimits()
    operations: OperationsSettings | None = None

    @property
    def orderer_tls(self) -> bool:
        """Whether orderer connections use TLS."""
        if self.orderers.tls is not None:
            return self.orderers.tls
        return self.tls is not None


def load_gateway_config(path: Path) -> GatewayConfig:
    """Read and check `gateway.yaml`.

    Raises:
        ConfigError: the file is unreadable or a key is missing, unknown or wrong.
    """
    root = load_yaml(path)
    base = path.parent
    fields = root.as_mapping(
        required=(*NODE_KEYS, "channels", "peers"),
        optional=("client_tls", "orderers", "timeouts", "limits", "operations"),
    )
    node_fields = read_node_fields(path, fields)
    channel_nodes = fields["channels"].as_list()
    if not channel_nodes:
        raise fields["channels"].expected("at least one channel name")
    check_unique(((node, node.as_str()) for node in channel_nodes), what="channel")
    peer_nodes = fields["peers"].as_list()
    if not peer_nodes:
        raise fields["peers"].expected("at least one peer")
    peers = tuple(_read_peer(node, base) for node in peer_nodes)
    check_unique(
        ((node, peer.address) for node, peer in zip(peer_nodes, peers, strict=True)),
        what="peer address",
    )
    client_tls = fields.get("client_tls")
    return GatewayConfig(
        **node_fields,
        channels=tuple(node.as_str() for node in channel_nodes),
        peers=peers,
        client_tls=_read_client_pair(client_tls, base) if client_tls else None,
        orderers=_read_orderers(fields.get("orderers"), base),
        timeouts=_read_timeouts(fields.get("timeouts")),
        limits=_read_limits(fields.get("limits")),
        operations=read_operations(fields.get("operations")),
    )


def _read_client_pair(node: ConfigNode, base: Path) -> TlsFiles:
    fields = node.as_mapping(required=("cert", "key"))
    return TlsFiles(
        cert=read_path(fields["cert"], base), key=read_path(fields["key"], base)
    )


def _read_peer(node: ConfigNode, base: Path) -> PeerEndpointConfig:
    fields = node.as_mapping(
        required=("address", "mspid"), optional=("tls", "tls_root_cas", "server_name")
    )
    tls_node = fields.get("tls")
    uses_tls = tls_node.as_bool() if tls_node is not None else True
    roots = read_paths(fields, "tls_root_cas", base)
    if uses_tls and not roots:
        raise node.error(
            "missing key 'tls_root_cas' (or say 'tls: false' for plaintext)"
        )
    name = fields.get("server_name")
    return PeerEndpointConfig(
        address=read_address(fields["address"]),
        mspid=fields["mspid"].as_str(),
        tls=TlsFiles(root_cas=roots) if uses_tls else None,
        server_name=name.as_str() if name is not None else None,
    )


def _read_orderers(node: ConfigNode | None, base: Path) -> OrdererSettings:
    if node is None:
        return OrdererSettings()
    fields = node.as_mapping(
        optional=("address_overrides", "tls_root_cas", "tls", "endpoints")
    )
    tls = fields.get("tls")
    return OrdererSettings(
        address_overrides=read_address_overrides(fields.get("address_overrides")),
        tls_root_cas=read_paths(fields, "tls_root_cas", base),
        tls=tls.as_bool() if tls is not None else None,
        endpoints=optional_list(fields, "endpoints", read_address),
    )


def _read_timeouts(node: ConfigNode | None) -> GatewayTimeouts:
    if node is None:
        return GatewayTimeouts()
    fields = node.as_mapping(optional=("endorse", "broadcast", "catch_up"))
    defaults = GatewayTimeouts()
    return GatewayTimeouts(
        endorse_s=_duration(fields.get("endorse"), defaults.endorse_s),
        broadcast_s=_duration(fields.get("broadcast"), defaults.broadcast_s),
        catch_up_s=_duration(fields.get("catch_up"), defaults.catch_up_s),
    )


def _read_limits(node: ConfigNode | None) -> GatewayLimits:
    if node is None:
        return GatewayLimits()
    fields = node.as_mapping(optional=("max_message_bytes",))
    size = fields.get("max_message_bytes")
    if size is None:
        return GatewayLimits()
    return GatewayLimits(max_message_bytes=size.as_int(minimum=1024))


def _duration(node: ConfigNode | None, default: float) -> float:
    return default if node is None else read_duration(node)
