"""The consortium spec: the organisations of a network, their nodes and their users.

An operator describes the whole consortium in one YAML file (see
``network/examples/hospital-consortium.yaml``); `load_spec` validates it and returns a
frozen `ConsortiumSpec`, from which the crypto generator, and later the channel and
launcher code, derive everything else.

Top-level keys read here are ``consortium`` and ``organizations``.  The other sections
(`RESERVED_SECTIONS`) are kept unparsed in `ConsortiumSpec.reserved` and read on demand
by the modules that use them: ``channels`` by `ConsortiumSpec.channels`
(`network.spec_channels`), ``chaincodes`` by `network.spec_chaincodes`, ``tls`` and
``orderers`` by `network.spec_network`.  Any other unknown key, at any level, is an
error.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from common.config import ConfigNode, check_unique, load_yaml, optional_list, parse_yaml
from common.errors import ConfigError

if TYPE_CHECKING:
    from network.spec_channels import ChannelSpec

__all__ = [
    "RESERVED_SECTIONS",
    "ConsortiumSpec",
    "GatewaySpec",
    "NodeRole",
    "NodeSpec",
    "OrganizationSpec",
    "UserSpec",
    "load_spec",
    "parse_spec",
    "read_spec",
    "tls_names",
]

RESERVED_SECTIONS = ("orderers", "channels", "chaincodes", "collections", "tls")
"""Top-level sections read on demand by other modules; kept unparsed here."""

# X.509 limits a common name to 64 characters; names below end up in common names.
COMMON_NAME_MAX = 64

_ORGANIZATION_NAME = re.compile(r"\S(?:[^\n]{0,62}\S)?")
_CONSORTIUM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_MSPID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,126}[A-Za-z0-9])?")
_DNS_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"(?=.{{1,200}}$){_DNS_LABEL}(?:\.{_DNS_LABEL})*")
_NODE_NAME = re.compile(_DNS_LABEL)
_HOST_NAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,63}")

_EXPECT_MSPID = (
    "an MSP id: letters, digits, '.' and '-', starting and ending with a letter "
    "or digit (for example 'HospitalAMSP')"
)
_EXPECT_DOMAIN = (
    "a lower-case DNS domain such as 'hospital-a.example.com' "
    "(labels of a-z, 0-9 and '-', separated by dots)"
)
_EXPECT_NODE_NAME = "a lower-case DNS label such as 'peer0' (a-z, 0-9 and '-')"
_EXPECT_HOST = "a host name or IP address that other nodes can dial"
_EXPECT_USER_NAME = (
    "a user name of letters, digits, '.', '_' and '-', starting with a letter or digit"
)
_EXPECT_ATTRIBUTE_NAME = (
    "an attribute name of letters, digits, '.', '_' and '-', starting with a letter"
)


class NodeRole(StrEnum):
    """What a node does; also the NodeOU written into its certificate."""

    PEER = "peer"
    ORDERER = "orderer"


@dataclass(frozen=True)
class NodeSpec:
    """A peer or orderer: where it listens and how it is named."""

    name: str
    role: NodeRole
    domain: str
    host: str
    port: int
    sans: tuple[str, ...] = ()
    admin_port: int | None = None
    """Orderers only: the channel participation API's port (None: not given)."""

    @property
    def full_name(self) -> str:
        """The node's name in its organisation: ``peer0.hospital-a.example.com``."""
        return f"{self.name}.{self.domain}"

    @property
    def address(self) -> str:
        """``host:port`` as other nodes dial it (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class GatewaySpec:
    """A gateway of an organisation, attached to one of its peers.

    As Fabric's gateway, which runs inside the peer, it signs and presents TLS as that
    peer: it uses the peer's MSP and TLS material, so its host must be one the peer's
    TLS certificate covers.
    """

    name: str
    domain: str
    host: str
    port: int
    peer: str

    @property
    def full_name(self) -> str:
        """``gateway0.hospital-a.example.com``."""
        return f"{self.name}.{self.domain}"

    @property
    def address(self) -> str:
        """``host:port`` as applications dial it (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class UserSpec:
    """A person or application of an organisation, with its Fabric CA attributes."""

    name: str
    domain: str
    admin: bool = False
    attributes: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )

    @property
    def full_name(self) -> str:
        """The user's enrolment name: ``dr-lee@hospital-a.example.com``."""
        return f"{self.name}@{self.domain}"


@dataclass(frozen=True)
class OrganizationSpec:
    """One member of the consortium: its MSP, its nodes and its users."""

    name: str
    mspid: str
    domain: str
    peers: tuple[NodeSpec, ...] = ()
    orderers: tuple[NodeSpec, ...] = ()
    users: tuple[UserSpec, ...] = ()
    gateways: tuple[GatewaySpec, ...] = ()

    @property
    def nodes(self) -> tuple[NodeSpec, ...]:
        """Peers first, then orderers."""
        return self.peers + self.orderers

    @property
    def admins(self) -> tuple[UserSpec, ...]:
        return tuple(user for user in self.users if user.admin)


@dataclass(frozen=True)
class ConsortiumSpec:
    """The whole consortium as the operator wrote it."""

    name: str
    organizations: tuple[OrganizationSpec, ...]
    source: Path | None = None
    reserved: Mapping[str, ConfigNode] = field(
        default_factory=lambda: MappingProxyType({}), hash=False, compare=False
    )

    def organization(self, mspid: str) -> OrganizationSpec:
        """The organisation with this MSP id.

        Raises:
            KeyError: no organisation has that MSP id.
        """
        for organization in self.organizations:
            if organization.mspid == mspid:
                return organization
        raise KeyError(mspid)

    @property
    def channels(self) -> tuple[ChannelSpec, ...]:
        """The ``channels`` section, read and checked against the organisations.

        Raises:
            ConfigError: the section is wrong; the message names file, line and key.
        """
        from network.spec_channels import read_channels

        return read_channels(self)

    def channel(self, name: str) -> ChannelSpec:
        """The channel with this name.

        Raises:
            ConfigError: the channels section is wrong, or has no such channel.
        """
        channels = self.channels
        for channel in channels:
            if channel.name == name:
                return channel
        known = ", ".join(channel.name for channel in channels) or "none"
        where = self.source if self.source is not None else "the consortium spec"
        raise ConfigError(f"{where}: no channel named {name!r} (channels: {known})")


def load_spec(path: Path) -> ConsortiumSpec:
    """Read and validate a consortium YAML file.

    Raises:
        ConfigError: naming the file, the key path and what was expected.
    """
    return dataclasses.replace(read_spec(load_yaml(path)), source=path)


def parse_spec(text: str, *, source: str = "<consortium>") -> ConsortiumSpec:
    """Validate consortium YAML given as text (`source` names it in errors)."""
    return read_spec(parse_yaml(text, source=source))


def read_spec(root: ConfigNode) -> ConsortiumSpec:
    """Build the spec from an already parsed YAML document."""
    fields = root.as_mapping(
        required=("consortium", "organizations"), optional=RESERVED_SECTIONS
    )
    name = fields["consortium"].as_str(
        pattern=_CONSORTIUM_NAME,
        expected="a consortium name of up to 64 letters, digits, '.', '_' and '-'",
    )
    organization_nodes = fields["organizations"].as_list()
    if not organization_nodes:
        raise fields["organizations"].error("expected at least one organisation")
    organizations = tuple(_read_organization(node) for node in organization_nodes)
    _check_consortium(organization_nodes, organizations)
    reserved = {key: node for key, node in fields.items() if key in RESERVED_SECTIONS}
    return ConsortiumSpec(name, organizations, None, MappingProxyType(reserved))


def _read_organization(node: ConfigNode) -> OrganizationSpec:
    fields = node.as_mapping(
        required=("name", "mspid", "domain", "users"),
        optional=("peers", "orderers", "gateways"),
    )
    name = fields["name"].as_str(
        pattern=_ORGANIZATION_NAME,
        expected="an organisation name of 1 to 64 characters on one line",
    )
    mspid = fields["mspid"].as_str(pattern=_MSPID, expected=_EXPECT_MSPID)
    domain = _read_domain(fields["domain"])
    peers = optional_list(
        fields, "peers", lambda item: _read_node(item, NodeRole.PEER, domain)
    )
    orderers = optional_list(
        fields, "orderers", lambda item: _read_node(item, NodeRole.ORDERER, domain)
    )
    users = optional_list(fields, "users", lambda item: _read_user(item, domain))
    gateways = optional_list(
        fields, "gateways", lambda item: _read_gateway(item, domain, peers)
    )
    _check_organization(fields, peers + orderers, users)
    check_unique(
        (
            (item.child("name"), gateway.name)
            for item, gateway in zip(_items(fields, "gateways"), gateways, strict=True)
        ),
        what="gateway name",
    )
    return OrganizationSpec(name, mspid, domain, peers, orderers, users, gateways)


def _read_domain(node: ConfigNode) -> str:
    domain = node.as_str(pattern=_DOMAIN, expected=_EXPECT_DOMAIN)
    if len(f"tlsca.{domain}") > COMMON_NAME_MAX:
        raise node.error(
            f"domain '{domain}' is too long: 'tlsca.{domain}' must fit in a "
            f"{COMMON_NAME_MAX}-character certificate common name"
        )
    return domain


def _read_node(node: ConfigNode, role: NodeRole, domain: str) -> NodeSpec:
    optional = ("sans", "admin_port") if role is NodeRole.ORDERER else ("sans",)
    fields = node.as_mapping(required=("name", "host", "port"), optional=optional)
    name = fields["name"].as_str(pattern=_NODE_NAME, expected=_EXPECT_NODE_NAME)
    _check_common_name(fields["name"], f"{name}.{domain}")
    host = _read_host(fields["host"])
    port = fields["port"].as_int(minimum=1, maximum=65535)
    sans = optional_list(fields, "sans", _read_san)
    admin_node = fields.get("admin_port")
    admin_port = (
        admin_node.as_int(minimum=1, maximum=65535) if admin_node is not None else None
    )
    if admin_node is not None and admin_port == port:
        raise admin_node.error(f"the admin port must differ from 'port' ({port})")
    return NodeSpec(name, role, domain, host, port, sans, admin_port)


def _read_gateway(
    node: ConfigNode, domain: str, peers: tuple[NodeSpec, ...]
) -> GatewaySpec:
    fields = node.as_mapping(required=("name", "host", "port"), optional=("peer",))
    name = fields["name"].as_str(pattern=_NODE_NAME, expected=_EXPECT_NODE_NAME)
    _check_common_name(fields["name"], f"{name}.{domain}")
    host = _read_host(fields["host"])
    port = fields["port"].as_int(minimum=1, maximum=65535)
    if not peers:
        raise node.error(
            "a gateway runs with one of its organisation's peers, and this "
            "organisation has none"
        )
    peer_node = fields.get("peer")
    peer = peers[0]
    if peer_node is not None:
        wanted = peer_node.as_str(expected=_EXPECT_NODE_NAME)
        by_name = {candidate.name: candidate for candidate in peers}
        if wanted not in by_name:
            raise peer_node.error(
                f"no peer {wanted!r} in this organisation (peers: {', '.join(by_name)})"
            )
        peer = by_name[wanted]
    if host not in tls_names(peer):
        raise fields["host"].error(
            f"{host} is not covered by the TLS certificate of {peer.full_name}, which "
            f"the gateway presents; use one of {', '.join(tls_names(peer))} or add "
            f"{host} to the peer's 'sans'"
        )
    return GatewaySpec(name, domain, host, port, peer.name)


def tls_names(node: NodeSpec) -> tuple[str, ...]:
    """Every DNS name and IP address the node's TLS server certificate covers."""
    names = [node.full_name, node.name, node.host, "localhost", *node.sans]
    return tuple(dict.fromkeys([*names, "127.0.0.1", "::1"]))


def _read_host(node: ConfigNode) -> str:
    host = node.as_str(expected=_EXPECT_HOST)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if not _HOST_NAME.fullmatch(host):
            raise node.expected(_EXPECT_HOST) from None
        return host
    if address.is_unspecified:
        raise node.error(
            f"{host} is the listen-on-all address; expected {_EXPECT_HOST}"
        )
    return host


def _read_san(node: ConfigNode) -> str:
    san = node.as_str(expected="a host name or IP address for the TLS certificate")
    try:
        ipaddress.ip_address(san)
    except ValueError:
        wildcard = san.removeprefix("*.")
        if not _HOST_NAME.fullmatch(wildcard):
            raise node.expected(
                "a host name (optionally '*.'-prefixed) or IP address"
            ) from None
    return san


def _read_user(node: ConfigNode, domain: str) -> UserSpec:
    fields = node.as_mapping(required=("name",), optional=("admin", "attributes"))
    name = fields["name"].as_str(pattern=_USER_NAME, expected=_EXPECT_USER_NAME)
    _check_common_name(fields["name"], f"{name}@{domain}")
    admin_node = fields.get("admin")
    admin = admin_node.as_bool() if admin_node is not None else False
    attributes_node = fields.get("attributes")
    attributes = (
        _read_attributes(attributes_node)
        if attributes_node is not None and not attributes_node.is_null
        else {}
    )
    return UserSpec(name, domain, admin, MappingProxyType(attributes))


def _read_attributes(node: ConfigNode) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for key, value in node.as_items():
        if not _ATTRIBUTE_NAME.fullmatch(key):
            raise value.error(f"expected {_EXPECT_ATTRIBUTE_NAME}, got {key!r}")
        if key.startswith("hf."):
            raise value.error(
                f"attribute '{key}' is reserved: the generator writes the 'hf.' "
                "attributes (hf.EnrollmentID, hf.Type, hf.Affiliation) itself"
            )
        attributes[key] = value.as_str(
            expected="a text value (quote numbers, e.g. '0017')"
        )
    return attributes


def _check_common_name(node: ConfigNode, common_name: str) -> None:
    if len(common_name) > COMMON_NAME_MAX:
        raise node.error(
            f"'{common_name}' is longer than {COMMON_NAME_MAX} characters, the limit "
            "for a certificate common name; use a shorter name"
        )


def _check_organization(
    fields: dict[str, ConfigNode],
    nodes: tuple[NodeSpec, ...],
    users: tuple[UserSpec, ...],
) -> None:
    node_items = _items(fields, "peers") + _items(fields, "orderers")
    check_unique(
        (
            (item.child("name"), spec.name)
            for item, spec in zip(node_items, nodes, strict=True)
        ),
        what="node name",
    )
    check_unique(
        (
            (item.child("name"), user.name.casefold())
            for item, user in zip(_items(fields, "users"), users, strict=True)
        ),
        what="user name",
    )
    if not any(user.admin for user in users):
        raise fields["users"].error(
            "expected at least one user with 'admin: true'; an organisation needs an "
            "admin to sign channel configuration"
        )


def _check_consortium(
    items: list[ConfigNode], organizations: tuple[OrganizationSpec, ...]
) -> None:
    pairs = list(zip(items, organizations, strict=True))
    check_unique(
        ((item.child("name"), org.name.casefold()) for item, org in pairs),
        what="organisation name",
    )
    check_unique(
        ((item.child("mspid"), org.mspid) for item, org in pairs), what="MSP id"
    )
    check_unique(
        ((item.child("domain"), org.domain) for item, org in pairs), what="domain"
    )
    endpoints: list[tuple[ConfigNode, tuple[str, int]]] = []
    for item, org in pairs:
        fields = dict(item.as_items())
        node_items = _items(fields, "peers") + _items(fields, "orderers")
        for node_item, spec in zip(node_items, org.nodes, strict=True):
            endpoints.append((node_item.child("port"), (spec.host, spec.port)))
            if spec.admin_port is not None:
                endpoints.append(
                    (node_item.child("admin_port"), (spec.host, spec.admin_port))
                )
        endpoints.extend(
            (gateway_item.child("port"), (gateway.host, gateway.port))
            for gateway_item, gateway in zip(
                _items(fields, "gateways"), org.gateways, strict=True
            )
        )
    check_unique(endpoints, what="host and port")


def _items(fields: dict[str, ConfigNode], key: str) -> list[ConfigNode]:
    """The items of an optional list that has already been read."""
    node = fields.get(key)
    return [] if node is None or node.is_null else node.as_list()
