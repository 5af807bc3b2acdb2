"""The peer's own configuration file, `peer.yaml`, as frozen dataclasses.

Relative paths are relative to the file's folder. Errors name the file, line and key.
Which orderers serve a channel is not configured here: it comes from the channel
config (the ordering organisations' endpoints); `orderers.address_overrides` only
redirects an endpoint, as Fabric's `deliveryclient.addressOverrides` does.

    name: peer0.hospital-a.example.com       # the node's name (logs)
    msp:
      id: HospitalAMSP                       # the MSP the peer endorses as
      dir: peers/peer0/msp                   # its local MSP (signcerts/, keystore/)
    listen: 127.0.0.1:7051                   # gRPC: Endorser, Deliver, admin; port 0 = any
    tls:                                     # TLS of the gRPC listeners
      enabled: true                          # false = plaintext (only when you mean it)
      cert: peers/peer0/tls/server.crt
      key: peers/peer0/tls/server.key
      client_root_cas: [peers/peer0/tls/ca.crt]   # CAs of client certificates
      mutual: false                          # true = clients must present a certificate
    chaincode_listen: 127.0.0.1:7052         # optional: protos.ChaincodeSupport (launched
                                             # chaincode dials it); default: on `listen`
    storage: data/peer0                      # one folder per joined channel below it
    orderers:                                # optional: reaching the channels' orderers
      address_overrides:                     # endpoint in the channel config → address
        "orderer0.example.com:7050": 127.0.0.1:7050
      tls_root_cas: [extra-ca.pem]           # trusted besides the config's orderer TLS CAs
      tls: true                              # default: the same as the peer's own TLS
      client_auth: false                     # true: present the peer's TLS pair (mutual
                                             # TLS orderers) and bind Deliver requests to it
    chaincodes:                              # optional
      execute_timeout: 30s                   # per transaction (Fabric's executetimeout)
      startup_timeout: 30s                   # wait for a chaincode to register
      peer_tls_ca: tls/ca.crt                # CA of the peer's TLS certificate, handed to
                                             # launched chaincode (default: the first of
                                             # tls.client_root_cas)
      packages:                              # by chaincode name as defined on the channel
        asset:
          package_id: asset_1.0:4f2a…        # what the chaincode registers as
          launch: [python, -m, chaincode, serve, --module, chaincode.contracts.asset]
        records:
          package_id: records_1:9c1e…
          address: 127.0.0.1:9999            # chaincode as a service: the peer dials it
          tls: {root_cert: ca.pem, client_cert: c.pem, client_key: k.pem}  # optional
    gossip:                                  # optional: private data between peers
      bootstrap: [127.0.0.1:7061]            # other peers of this organisation
      peers:                                 # peers of other organisations
        - {address: 127.0.0.1:8051, mspid: HospitalBMSP}
      address_overrides:                     # anchor peer endpoint → address
        "peer0.hospital-b.example.com:7051": 127.0.0.1:8051
      tls_root_cas: [extra-ca.pem]           # trusted besides the orgs' TLS CAs
      push_timeout: 5s                       # per push at endorsement
      pull_timeout: 5s                       # per pull attempt at commit
      pull_attempts: 3                       # pull rounds before data is left missing
      reconcile_interval: 10s                # how often missing data is fetched
    limits:                                  # all optional; the defaults are shown
      max_message_bytes: 104857600           # largest gRPC message sent or received
      deliver_time_window: 15m               # allowed clock skew of Deliver requests
    operations:                              # optional: /healthz, /metrics, /version
      listen: 127.0.0.1:9443                 # plain HTTP (common.operations)

A package has exactly one of `launch` (the peer starts the command with Fabric's
`CORE_*` environment and restarts it when it exits) and `address`. `tls` may be left
out only with `enabled: false` spelled out (plaintext must be deliberate).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from common.config import ConfigNode, load_yaml
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
    "ChaincodePackage",
    "ChaincodeSettings",
    "ChaincodeTls",
    "GossipSettings",
    "KnownPeer",
    "OrdererSettings",
    "PeerConfig",
    "PeerLimits",
    "format_address",
    "load_peer_config",
    "parse_address",
]

_PACKAGE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*:[0-9A-Za-z_.+-]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerLimits:
    max_message_bytes: int = 100 * 1024 * 1024
    deliver_time_window_s: float = 15 * 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ChaincodeTls:
    """TLS towards a chaincode server: its CA, and our client pair when it wants one."""

    root_cert: Path
    client_cert: Path | None = None
    client_key: Path | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChaincodePackage:
    """How one chaincode runs: launched by the peer (`launch`) or as a service."""

    name: str
    package_id: str
    launch: tuple[str, ...] = ()
    address: str | None = None
    tls: ChaincodeTls | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChaincodeSettings:
    execute_timeout_s: float = 30.0
    startup_timeout_s: float = 30.0
    peer_tls_ca: Path | None = None
    packages: Mapping[str, ChaincodePackage] = field(
        default_factory=lambda: MappingProxyType({})
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class OrdererSettings:
    """How to dial the orderers named in channel configs.

    `tls` None means: the same as the peer's own listener (TLS unless plaintext).
    """

    address_overrides: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({})
    )
    tls_root_cas: tuple[Path, ...] = ()
    tls: bool | None = None
    client_auth: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class KnownPeer:
    """Another peer this one may exchange private data with, and its organisation."""

    address: str
    mspid: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GossipSettings:
    """Private data between peers: whom to reach besides the channels' anchor peers."""

    bootstrap: tuple[str, ...] = ()
    peers: tuple[KnownPeer, ...] = ()
    address_overrides: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({})
    )
    tls_root_cas: tuple[Path, ...] = ()
    push_timeout_s: float = 5.0
    pull_timeout_s: float = 5.0
    pull_attempts: int = 3
    reconcile_interval_s: float = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerConfig:
    """One peer node's settings; `tls` None means plaintext gRPC listeners."""

    source: Path
    name: str
    mspid: str
    msp_dir: Path
    listen: str
    tls: TlsFiles | None
    storage: Path
    chaincode_listen: str | None = None
    orderers: OrdererSettings = OrdererSettings()
    chaincodes: ChaincodeSettings = ChaincodeSettings()
    limits: PeerLimits = PeerLimits()
    gossip: GossipSettings = GossipSettings()
    operations: OperationsSettings | None = None

    @property
    def orderer_tls(self) -> bool:
        """Whether orderer connections use TLS."""
        if self.orderers.tls is not None:
            return self.orderers.tls
        return self.tls is not None


def load_peer_config(path: Path) -> PeerConfig:
    """Read and check `peer.yaml`.

    Raises:
        ConfigError: the file is unreadable or a key is missing, unknown or wrong.
    """
    root = load_yaml(path)
    base = path.parent
    fields = root.as_mapping(
        required=(*NODE_KEYS, "storage"),
        optional=(
            "chaincode_listen",
            "orderers",
            "chaincodes",
            "limits",
            "gossip",
            "operations",
        ),
    )
    chaincode_listen = fields.get("chaincode_listen")
    return PeerConfig(
        **read_node_fields(path, fields),
        storage=read_path(fields["storage"], base),
        chaincode_listen=(
            read_address(chaincode_listen) if chaincode_listen is not None else None
        ),
        orderers=_read_orderers(fields.get("orderers"), base),
        chaincodes=_read_chaincodes(fields.get("chaincodes"), base),
        limits=_read_limits(fields.get("limits")),
        gossip=_read_gossip(fields.get("gossip"), base),
        operations=read_operations(fields.get("operations")),
    )


def _read_orderers(node: ConfigNode | None, base: Path) -> OrdererSettings:
    if node is None:
        return OrdererSettings()
    fields = node.as_mapping(
        optional=("address_overrides", "tls_root_cas", "tls", "client_auth")
    )
    tls = fields.get("tls")
    client_auth = fields.get("client_auth")
    return OrdererSettings(
        address_overrides=read_address_overrides(fields.get("address_overrides")),
        tls_root_cas=read_paths(fields, "tls_root_cas", base),
        tls=tls.as_bool() if tls is not None else None,
        client_auth=client_auth.as_bool() if client_auth is not None else False,
    )


def _read_chaincodes(node: ConfigNode | None, base: Path) -> ChaincodeSettings:
    if node is None:
        return ChaincodeSettings()
    fields = node.as_mapping(
        optional=("execute_timeout", "startup_timeout", "peer_tls_ca", "packages")
    )
    defaults = ChaincodeSettings()
    packages: dict[str, ChaincodePackage] = {}
    packages_node = fields.get("packages")
    if packages_node is not None:
        for name, package_node in packages_node.as_items():
            packages[name] = _read_package(name, package_node, base)
    execute = fields.get("execute_timeout")
    startup = fields.get("startup_timeout")
    tls_ca = fields.get("peer_tls_ca")
    return ChaincodeSettings(
        execute_timeout_s=read_duration(execute)
        if execute
        else defaults.execute_timeout_s,
        startup_timeout_s=read_duration(startup)
        if startup
        else defaults.startup_timeout_s,
        peer_tls_ca=read_path(tls_ca, base) if tls_ca else None,
        packages=MappingProxyType(packages),
    )


def _read_package(name: str, node: ConfigNode, base: Path) -> ChaincodePackage:
    fields = node.as_mapping(
        required=("package_id",), optional=("launch", "address", "tls")
    )
    package_id = fields["package_id"].as_str(
        pattern=_PACKAGE_ID, expected="a package id LABEL:HASH"
    )
    launch = fields.get("launch")
    address = fields.get("address")
    if (launch is None) == (address is None):
        raise node.error("give exactly one of 'launch' (a command) and 'address'")
    command: tuple[str, ...] = ()
    if launch is not None:
        command = tuple(item.as_str() for item in launch.as_list())
        if not command:
            raise launch.expected("a command: a non-empty list of words")
    tls_node = fields.get("tls")
    if tls_node is not None and address is None:
        raise tls_node.error("'tls' applies to chaincode servers ('address') only")
    return ChaincodePackage(
        name=name,
        package_id=package_id,
        launch=command,
        address=read_address(address) if address is not None else None,
        tls=_read_chaincode_tls(tls_node, base) if tls_node is not None else None,
    )


def _read_chaincode_tls(node: ConfigNode, base: Path) -> ChaincodeTls:
    fields = node.as_mapping(
        required=("root_cert",), optional=("client_cert", "client_key")
    )
    if ("client_cert" in fields) != ("client_key" in fields):
        raise node.error("give both 'client_cert' and 'client_key', or neither")
    return ChaincodeTls(
        root_cert=read_path(fields["root_cert"], base),
        client_cert=read_path(fields["client_cert"], base)
        if "client_cert" in fields
        else None,
        client_key=read_path(fields["client_key"], base)
        if "client_key" in fields
        else None,
    )


def _read_gossip(node: ConfigNode | None, base: Path) -> GossipSettings:
    if node is None:
        return GossipSettings()
    fields = node.as_mapping(
        optional=(
            "bootstrap",
            "peers",
            "address_overrides",
            "tls_root_cas",
            "push_timeout",
            "pull_timeout",
            "pull_attempts",
            "reconcile_interval",
        )
    )
    defaults = GossipSettings()
    bootstrap = fields.get("bootstrap")
    peers: list[KnownPeer] = []
    peers_node = fields.get("peers")
    for item in peers_node.as_list() if peers_node is not None else ():
        peer = item.as_mapping(required=("address", "mspid"))
        peers.append(
            KnownPeer(
                address=read_address(peer["address"]), mspid=peer["mspid"].as_str()
            )
        )
    attempts = fields.get("pull_attempts")

    def seconds(key: str, default: float) -> float:
        value = fields.get(key)
        return read_duration(value) if value is not None else default

    return GossipSettings(
        bootstrap=tuple(read_address(item) for item in bootstrap.as_list())
        if bootstrap is not None
        else (),
        peers=tuple(peers),
        address_overrides=read_address_overrides(fields.get("address_overrides")),
        tls_root_cas=read_paths(fields, "tls_root_cas", base),
        push_timeout_s=seconds("push_timeout", defaults.push_timeout_s),
        pull_timeout_s=seconds("pull_timeout", defaults.pull_timeout_s),
        pull_attempts=attempts.as_int(minimum=1)
        if attempts is not None
        else defaults.pull_attempts,
        reconcile_interval_s=seconds(
            "reconcile_interval", defaults.reconcile_interval_s
        ),
    )


def _read_limits(node: ConfigNode | None) -> PeerLimits:
    if node is None:
        return PeerLimits()
    fields = node.as_mapping(optional=("max_message_bytes", "deliver_time_window"))
    defaults = PeerLimits()
    size = fields.get("max_message_bytes")
    window = fields.get("deliver_time_window")
    return PeerLimits(
        max_message_bytes=(
            size.as_int(minimum=1024) if size else defaults.max_message_bytes
        ),
        deliver_time_window_s=(
            read_duration(window) if window else defaults.deliver_time_window_s
        ),
    )
