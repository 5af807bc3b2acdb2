"""The orderer's own configuration file, `orderer.yaml`, as frozen dataclasses.

Relative paths are relative to the file's folder. Errors name the file, line and key.

    name: orderer0.commission.example.com   # the node's name (logs, bench output)
    msp:
      id: HealthCommissionMSP                # the MSP the orderer signs blocks as
      dir: orderers/orderer0/msp             # its local MSP (signcerts/, keystore/)
    listen: 127.0.0.1:7050                   # gRPC AtomicBroadcast; port 0 = any free
    tls:                                     # TLS of the gRPC listener
      enabled: true                          # false = plaintext (only when you mean it)
      cert: orderers/orderer0/tls/server.crt
      key: orderers/orderer0/tls/server.key
      client_root_cas: [orderers/orderer0/tls/ca.crt]  # CAs of client certificates
      mutual: false                          # true = clients must present a certificate
    admin:                                   # the channel participation REST API
      listen: 127.0.0.1:7053
      tls: {enabled: true, cert: ..., key: ..., client_root_cas: [...], mutual: true}
    storage: data/orderer0                   # one folder per joined channel below it
    backend:
      type: solo                             # solo | etcd
      etcd:                                  # only for type etcd
        endpoints: [127.0.0.1:2379]
        prefix: /medledger                   # key prefix of this ordering service
        tls: {enabled: true, cert: ..., key: ..., root_cas: [...]}
    limits:                                  # all optional; the defaults are shown
      max_message_bytes: 104857600           # largest gRPC message sent or received
      broadcast_window: 10000                # envelopes in flight per Broadcast stream
      deliver_time_window: 15m               # allowed clock skew of Deliver requests
    operations:                              # optional: /healthz, /metrics, /version
      listen: 127.0.0.1:9444                 # plain HTTP (common.operations)

`tls` and `admin.tls` may be left out only with `enabled: false` spelled out
(plaintext must be deliberate).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common.config import ConfigNode, load_yaml
from common.config_fields import (
    parse_address,
    read_address,
    read_duration,
    read_path,
    read_paths,
    read_server_tls,
)
from common.node_setup import NODE_KEYS, read_node_fields
from common.operations import OperationsSettings, read_operations
from common.tls import TlsFiles

__all__ = [
    "AdminConfig",
    "BackendConfig",
    "EtcdConfig",
    "Limits",
    "OrdererConfig",
    "load_orderer_config",
    "parse_address",
]

BACKENDS = ("solo", "etcd")


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    max_message_bytes: int = 100 * 1024 * 1024
    broadcast_window: int = 10_000
    deliver_time_window_s: float = 15 * 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminConfig:
    """The participation API listener; `tls` None means plaintext HTTP."""

    listen: str
    tls: TlsFiles | None


@dataclass(frozen=True, slots=True, kw_only=True)
class EtcdConfig:
    """Where the etcd cluster is and how to reach it; `tls` None means plaintext."""

    endpoints: tuple[str, ...]
    prefix: str
    tls: TlsFiles | None


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendConfig:
    type: str
    etcd: EtcdConfig | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrdererConfig:
    """One orderer node's settings; `tls` None means a plaintext gRPC listener."""

    source: Path
    name: str
    mspid: str
    msp_dir: Path
    listen: str
    tls: TlsFiles | None
    admin: AdminConfig
    storage: Path
    backend: BackendConfig
    limits: Limits = Limits()
    operations: OperationsSettings | None = None


def load_orderer_config(path: Path) -> OrdererConfig:
    """Read and check `orderer.yaml`.

    Raises:
        ConfigError: the file is unreadable or a key is missing, unknown or wrong.
    """
    root = load_yaml(path)
    base = path.parent
    fields = root.as_mapping(
        required=(*NODE_KEYS, "admin", "storage", "backend"),
        optional=("limits", "operations"),
    )
    node_fields = read_node_fields(path, fields)
    admin = fields["admin"].as_mapping(required=("listen", "tls"))
    return OrdererConfig(
        **node_fields,
        admin=AdminConfig(
            listen=read_address(admin["listen"]),
            tls=read_server_tls(admin["tls"], base),
        ),
        storage=read_path(fields["storage"], base),
        backend=_read_backend(fields["backend"], base),
        limits=_read_limits(fields.get("limits")),
        operations=read_operations(fields.get("operations")),
    )


def _read_etcd_tls(node: ConfigNode, base: Path) -> TlsFiles | None:
    """The ``backend.etcd.tls`` block: the cluster's CAs, our pair when it wants one."""
    fields = node.as_mapping(
        required=("enabled",), optional=("cert", "key", "root_cas", "mutual")
    )
    if not fields["enabled"].as_bool():
        return None
    mutual = fields.get("mutual")
    files = TlsFiles(
        cert=read_path(fields["cert"], base) if "cert" in fields else None,
        key=read_path(fields["key"], base) if "key" in fields else None,
        root_cas=read_paths(fields, "root_cas", base),
        mutual=mutual.as_bool() if mutual is not None else False,
    )
    if files.mutual and not files.root_cas:
        raise node.error("mutual TLS needs 'root_cas'")
    return files


def _read_backend(node: ConfigNode, base: Path) -> BackendConfig:
    fields = node.as_mapping(required=("type",), optional=("etcd",))
    kind = fields["type"].as_str(expected="the backend 'solo' or 'etcd'")
    if kind not in BACKENDS:
        raise fields["type"].expected("the backend 'solo' or 'etcd'")
    etcd_node = fields.get("etcd")
    if kind == "etcd" and etcd_node is None:
        raise node.error("missing key 'etcd' (the backend is etcd)")
    if etcd_node is None:
        return BackendConfig(type=kind)
    etcd = etcd_node.as_mapping(required=("endpoints",), optional=("prefix", "tls"))
    endpoints = tuple(read_address(item) for item in etcd["endpoints"].as_list())
    if not endpoints:
        raise etcd["endpoints"].expected("at least one host:port")
    tls_node = etcd.get("tls")
    return BackendConfig(
        type=kind,
        etcd=EtcdConfig(
            endpoints=endpoints,
            prefix=etcd["prefix"].as_str() if "prefix" in etcd else "/medledger",
            tls=_read_etcd_tls(tls_node, base) if tls_node else None,
        ),
    )


def _read_limits(node: ConfigNode | None) -> Limits:
    if node is None:
        return Limits()
    fields = node.as_mapping(
        optional=(
            "max_message_bytes",
            "broadcast_window",
            "deliver_time_window",
        )
    )
    defaults = Limits()
    window = fields.get("deliver_time_window")
    return Limits(
        max_message_bytes=_int(fields, "max_message_bytes", defaults.max_message_bytes),
        broadcast_window=_int(fields, "broadcast_window", defaults.broadcast_window),
        deliver_time_window_s=(
            read_duration(window, example="15m or 90s")
            if window
            else defaults.deliver_time_window_s
        ),
    )


def _int(
    fields: dict[str, ConfigNode], key: str, default: int, *, minimum: int = 1
) -> int:
    node = fields.get(key)
    return default if node is None else node.as_int(minimum=minimum)
