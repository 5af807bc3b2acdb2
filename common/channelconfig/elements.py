"""The parts of a channel config view: organisations, consenters, batch size, capabilities.

Frozen values that `common.channelconfig.ChannelConfig` is made of.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common.msp import Msp

__all__ = [
    "ApplicationOrg",
    "BatchSize",
    "Capabilities",
    "Consenter",
    "HostPort",
    "OrdererOrg",
]


@dataclass(frozen=True, slots=True)
class HostPort:
    """An anchor peer's address."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Consenter:
    """An etcdraft consenter: where it listens and its TLS certificates (PEM)."""

    host: str
    port: int
    client_tls_cert: bytes
    server_tls_cert: bytes


@dataclass(frozen=True, slots=True)
class BatchSize:
    """When the orderer cuts a block: message count and byte limits."""

    max_message_count: int
    absolute_max_bytes: int
    preferred_max_bytes: int


@dataclass(frozen=True, slots=True)
class Capabilities:
    """The capability names switched on at each level (empty when the value is absent)."""

    channel: frozenset[str] = frozenset()
    orderer: frozenset[str] = frozenset()
    application: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplicationOrg:
    """A member organisation: its group name, MSP and anchor peers.

    `msp_config` is the serialized FabricMSPConfig; `msp` the MSP built from it.
    """

    name: str
    mspid: str
    msp_config: bytes = field(repr=False)
    msp: Msp = field(compare=False, repr=False)
    anchor_peers: tuple[HostPort, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class OrdererOrg:
    """An ordering organisation: its group name, MSP and orderer endpoints (host:port).

    `msp_config` is the serialized FabricMSPConfig; `msp` the MSP built from it.
    """

    name: str
    mspid: str
    msp_config: bytes = field(repr=False)
    msp: Msp = field(compare=False, repr=False)
    endpoints: tuple[str, ...]
