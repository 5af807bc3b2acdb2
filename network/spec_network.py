"""Network-wide settings of the consortium spec: TLS, the etcd cluster, every listener.

Two top-level sections, both optional:

    tls: true                      # false: every link in plaintext (only when you mean it)
    orderers:
      etcd:                        # the etcd cluster of channels ordered with type etcd
        prefix: /medledger         # key prefix of this ordering service
        members:
          - {name: etcd0, host: 127.0.0.1, client_port: 2379, peer_port: 2380}

Without ``orderers.etcd`` an etcd channel gets one member, `DEFAULT_ETCD_MEMBER`.
`listeners` lists every port the local network opens (orderer gRPC and admin, peer,
gateway, etcd client and peer ports) with the node that owns it; `check_listeners`
rejects two on one host and port, naming both, including ports the spec implies
(an orderer's admin port defaults to its port + `ADMIN_PORT_OFFSET`, as Fabric's
7050/7053).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from common.config import ConfigNode, check_unique
from common.errors import ConfigError
from network.spec import ConsortiumSpec, NodeSpec

__all__ = [
    "ADMIN_PORT_OFFSET",
    "DEFAULT_ETCD_MEMBER",
    "EtcdMemberSpec",
    "EtcdSpec",
    "Listener",
    "NetworkSettings",
    "admin_port",
    "check_listeners",
    "listeners",
    "read_network_settings",
]

ADMIN_PORT_OFFSET = 3
"""An orderer's participation API listens on its port + 3 unless `admin_port` says."""

_MEMBER_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PREFIX = re.compile(r"/[A-Za-z0-9._/-]*")


@dataclass(frozen=True)
class EtcdMemberSpec:
    """One etcd server of the ordering service's cluster."""

    name: str
    host: str
    client_port: int
    peer_port: int

    @property
    def client_address(self) -> str:
        return _join(self.host, self.client_port)

    @property
    def peer_address(self) -> str:
        return _join(self.host, self.peer_port)


DEFAULT_ETCD_MEMBER = EtcdMemberSpec("etcd0", "127.0.0.1", 2379, 2380)


@dataclass(frozen=True)
class EtcdSpec:
    """The etcd cluster that etcd-ordered channels use."""

    members: tuple[EtcdMemberSpec, ...] = (DEFAULT_ETCD_MEMBER,)
    prefix: str = "/medledger"


@dataclass(frozen=True)
class NetworkSettings:
    """The ``tls`` and ``orderers`` sections, defaults applied."""

    tls: bool = True
    etcd: EtcdSpec = EtcdSpec()


@dataclass(frozen=True)
class Listener:
    """One port a node of the network listens on."""

    node: str
    what: str
    host: str
    port: int

    @property
    def address(self) -> str:
        return _join(self.host, self.port)


def read_network_settings(spec: ConsortiumSpec) -> NetworkSettings:
    """Read the ``tls`` and ``orderers`` sections.

    Raises:
        ConfigError: naming the file, line and key, and what was expected.
    """
    tls_node = spec.reserved.get("tls")
    tls = True if tls_node is None or tls_node.is_null else tls_node.as_bool()
    orderers_node = spec.reserved.get("orderers")
    etcd = EtcdSpec()
    if orderers_node is not None and not orderers_node.is_null:
        fields = orderers_node.as_mapping(optional=("etcd",))
        etcd_node = fields.get("etcd")
        if etcd_node is not None and not etcd_node.is_null:
            etcd = _read_etcd(etcd_node)
    return NetworkSettings(tls=tls, etcd=etcd)


def admin_port(orderer: NodeSpec) -> int:
    """The orderer's participation API port: `admin_port`, or its port + 3."""
    if orderer.admin_port is not None:
        return orderer.admin_port
    return orderer.port + ADMIN_PORT_OFFSET


def listeners(
    spec: ConsortiumSpec, *, etcd: EtcdSpec | None = None
) -> tuple[Listener, ...]:
    """Every port of the network's nodes (etcd members only when `etcd` is given)."""
    found: list[Listener] = []
    for organization in spec.organizations:
        for peer in organization.peers:
            found.append(Listener(peer.full_name, "gRPC", peer.host, peer.port))
        for orderer in organization.orderers:
            found.append(
                Listener(orderer.full_name, "gRPC", orderer.host, orderer.port)
            )
            found.append(
                Listener(orderer.full_name, "admin", orderer.host, admin_port(orderer))
            )
        for gateway in organization.gateways:
            found.append(
                Listener(gateway.full_name, "gRPC", gateway.host, gateway.port)
            )
    for member in etcd.members if etcd is not None else ():
        found.append(
            Listener(member.name, "etcd client", member.host, member.client_port)
        )
        found.append(Listener(member.name, "etcd peer", member.host, member.peer_port))
    return tuple(found)


def check_listeners(found: tuple[Listener, ...], *, source: str) -> None:
    """Two listeners on one host and port are an error naming both.

    Raises:
        ConfigError: the first clash, e.g. an orderer's implied admin port that a peer
            also uses.
    """
    owners: dict[tuple[str, int], Listener] = {}
    for listener in found:
        if not 1 <= listener.port <= 65535:
            raise ConfigError(
                f"{source}: {listener.node}: its {listener.what} port {listener.port} "
                "is outside 1 to 65535" + _admin_hint(listener)
            )
        earlier = owners.setdefault((listener.host, listener.port), listener)
        if earlier is not listener:
            raise ConfigError(
                f"{source}: port clash on {listener.address}: {earlier.node} "
                f"({earlier.what}) and {listener.node} ({listener.what})"
                + _admin_hint(listener, earlier)
            )


def _admin_hint(*clashing: Listener) -> str:
    if any(listener.what == "admin" for listener in clashing):
        return (
            f"; an orderer's admin port is its port + {ADMIN_PORT_OFFSET} unless "
            "'admin_port' sets it"
        )
    return ""


def _read_etcd(node: ConfigNode) -> EtcdSpec:
    fields = node.as_mapping(optional=("members", "prefix"))
    prefix_node = fields.get("prefix")
    prefix = (
        prefix_node.as_str(
            pattern=_PREFIX,
            expected="a key prefix starting with '/', such as '/medledger'",
        )
        if prefix_node is not None
        else EtcdSpec().prefix
    )
    members_node = fields.get("members")
    if members_node is None or members_node.is_null:
        return EtcdSpec(prefix=prefix)
    items = members_node.as_list()
    if not items:
        raise members_node.error("expected at least one etcd member")
    members = tuple(_read_member(item) for item in items)
    check_unique(
        (
            (item.child("name"), member.name)
            for item, member in zip(items, members, strict=True)
        ),
        what="etcd member name",
    )
    return EtcdSpec(members=members, prefix=prefix)


def _read_member(node: ConfigNode) -> EtcdMemberSpec:
    fields = node.as_mapping(required=("name", "host", "client_port", "peer_port"))
    name = fields["name"].as_str(
        pattern=_MEMBER_NAME, expected="a lower-case DNS label such as 'etcd0'"
    )
    host = fields["host"].as_str(expected="a host name or IP address")
    client_port = fields["client_port"].as_int(minimum=1, maximum=65535)
    peer_port = fields["peer_port"].as_int(minimum=1, maximum=65535)
    if client_port == peer_port:
        raise fields["peer_port"].error(
            f"the peer port must differ from the client port ({client_port})"
        )
    return EtcdMemberSpec(name, host, client_port, peer_port)


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
