"""A channel's configuration as a frozen, typed view, parsed from a config block.

`ChannelConfig.from_block` reads the single CONFIG envelope of a genesis or config
block; `ChannelConfig.from_config` reads a `common.Config` directly. Parsing checks the
tree as a Fabric 2.5 node would before using it:

    /Channel                HashingAlgorithm (SHA256), BlockDataHashingStructure
                            (width 2^32-1), Capabilities, [OrdererAddresses, Consortium]
    /Channel/Orderer        ConsensusType (solo | etcdraft + consenters), BatchSize,
                            BatchTimeout, [ChannelRestrictions, Capabilities]
    /Channel/Orderer/<org>  MSP, [Endpoints]
    /Channel/Application    [Capabilities, ACLs]            (the group itself is optional)
    /Channel/Application/<org>  MSP, [AnchorPeers]

Unknown groups and values, unsupported capabilities, consensus types or hashing, bad
batch sizes or timeouts, undecodable values and unusable MSPs or policies all raise
`ChannelConfigError` naming the path, such as ``/Channel/Orderer/BatchSize``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from common.channelconfig import keys
from common.channelconfig.duration import parse_go_duration
from common.errors import (
    ChannelConfigError,
    ConfigError,
    PolicyError,
    UnknownPolicy,
    WireError,
)
from common.msp import Msp, MspManager
from common.policies import PolicyManager
from common.protoutil import parse_block, parse_envelope
from protos.common import common_pb2, configtx_pb2, configuration_pb2, policies_pb2
from protos.msp import msp_config_pb2
from protos.orderer import configuration_pb2 as orderer_pb2
from protos.orderer.etcdraft import configuration_pb2 as etcdraft_pb2
from protos.peer import configuration_pb2 as peer_pb2

__all__ = [
    "ApplicationOrg",
    "BatchSize",
    "Capabilities",
    "ChannelConfig",
    "Consenter",
    "HostPort",
    "OrdererOrg",
]

M = TypeVar("M", bound=Message)

_ROOT = f"/{keys.CHANNEL}"
_ORDERER = f"{_ROOT}/{keys.ORDERER}"
_APPLICATION = f"{_ROOT}/{keys.APPLICATION}"

_CHANNEL_VALUES = frozenset(
    {
        keys.HASHING_ALGORITHM,
        keys.BLOCK_DATA_HASHING_STRUCTURE,
        keys.ORDERER_ADDRESSES,
        keys.CONSORTIUM,
        keys.CAPABILITIES,
    }
)
_ORDERER_VALUES = frozenset(
    {
        keys.CONSENSUS_TYPE,
        keys.BATCH_SIZE,
        keys.BATCH_TIMEOUT,
        keys.CHANNEL_RESTRICTIONS,
        keys.KAFKA_BROKERS,
        keys.CAPABILITIES,
        keys.ORDERERS,
    }
)
_APPLICATION_VALUES = frozenset({keys.ACLS, keys.CAPABILITIES})
_ORDERER_ORG_VALUES = frozenset({keys.MSP, keys.ENDPOINTS})
_APPLICATION_ORG_VALUES = frozenset({keys.MSP, keys.ANCHOR_PEERS})
_GROUP_POLICIES = (keys.READERS, keys.WRITERS, keys.ADMINS)
_MAX_PORT = 65535


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


@dataclass(frozen=True, kw_only=True)
class ChannelConfig:
    """Everything a peer or orderer needs from one channel config, parsed once.

    Organisations are keyed by MSP id. `batch_timeout` is in seconds, `batch_timeout_text`
    is the Go duration string it came from. `consenters` is empty for solo.
    `policy_manager` is rooted at /Channel; `msp_manager` holds every organisation's MSP.
    """

    channel_id: str
    sequence: int
    hashing_algorithm: str
    capabilities: Capabilities
    application_orgs: Mapping[str, ApplicationOrg]
    orderer_orgs: Mapping[str, OrdererOrg]
    consensus_type: str
    consensus_state: int
    consenters: tuple[Consenter, ...]
    batch_size: BatchSize
    batch_timeout: float
    batch_timeout_text: str
    max_channels: int
    orderer_addresses: tuple[str, ...]
    acls: Mapping[str, str]
    msp_manager: MspManager = field(compare=False)
    policy_manager: PolicyManager = field(compare=False)
    config_bytes: bytes = field(repr=False)

    @classmethod
    def from_block(cls, block: common_pb2.Block | bytes) -> ChannelConfig:
        """Parse the config carried by a genesis or config block.

        Raises:
            ChannelConfigError: not a block with one CONFIG envelope, or a bad config.
        """
        if isinstance(block, bytes):
            try:
                block = parse_block(block)
            except WireError as error:
                raise ChannelConfigError(str(error), path="block") from error
        where = f"block {block.header.number}"
        if len(block.data.data) != 1:
            raise ChannelConfigError(
                f"a config block holds exactly one envelope, this one holds "
                f"{len(block.data.data)}",
                path=where,
            )
        try:
            envelope = parse_envelope(block.data.data[0])
        except WireError as error:
            raise ChannelConfigError(str(error), path=where) from error
        if envelope.header_type != common_pb2.CONFIG:
            raise ChannelConfigError(
                f"not a config block: its envelope has header type "
                f"{envelope.header_type}, expected CONFIG ({common_pb2.CONFIG})",
                path=where,
            )
        if not envelope.channel_id:
            raise ChannelConfigError("the channel header has no channel id", path=where)
        config_envelope = _decode(
            configtx_pb2.ConfigEnvelope, envelope.data, path=f"{where} ConfigEnvelope"
        )
        if not config_envelope.HasField("config"):
            raise ChannelConfigError("ConfigEnvelope has no config", path=where)
        return cls.from_config(config_envelope.config, channel_id=envelope.channel_id)

    @classmethod
    def from_config(
        cls, config: configtx_pb2.Config, *, channel_id: str
    ) -> ChannelConfig:
        """Parse a `common.Config` of the channel `channel_id`.

        Raises:
            ChannelConfigError: the tree is malformed; the message names the path.
        """
        if not config.HasField("channel_group"):
            raise ChannelConfigError("the config has no channel group", path=_ROOT)
        root = config.channel_group
        _check_keys(
            root.groups, {keys.ORDERER, keys.APPLICATION}, what="group", path=_ROOT
        )
        _check_keys(root.values, _CHANNEL_VALUES, what="value", path=_ROOT)
        orderer = root.groups.get(keys.ORDERER)
        if orderer is None:
            raise ChannelConfigError("missing group", path=_ORDERER)
        application = root.groups.get(keys.APPLICATION)
        application_orgs = (
            _application_orgs(application) if application is not None else {}
        )
        orderer_orgs = _orderer_orgs(orderer)
        consensus_type, consensus_state, consenters = _consensus(orderer)
        timeout_text, timeout = _batch_timeout(orderer)
        return cls(
            channel_id=channel_id,
            sequence=config.sequence,
            hashing_algorithm=_hashing(root),
            capabilities=Capabilities(
                channel=_capabilities(root, _ROOT, keys.CHANNEL_CAPABILITIES),
                orderer=_capabilities(orderer, _ORDERER, keys.ORDERER_CAPABILITIES),
                application=(
                    _capabilities(
                        application, _APPLICATION, keys.APPLICATION_CAPABILITIES
                    )
                    if application is not None
                    else frozenset()
                ),
            ),
            application_orgs=MappingProxyType(application_orgs),
            orderer_orgs=MappingProxyType(orderer_orgs),
            consensus_type=consensus_type,
            consensus_state=consensus_state,
            consenters=consenters,
            batch_size=_batch_size(orderer),
            batch_timeout=timeout,
            batch_timeout_text=timeout_text,
            max_channels=_max_channels(orderer),
            orderer_addresses=_orderer_addresses(root),
            acls=MappingProxyType(
                _acls(application) if application is not None else {}
            ),
            msp_manager=_msp_manager(
                [
                    (f"{_APPLICATION}/{org.name}", org)
                    for org in application_orgs.values()
                ]
                + [(f"{_ORDERER}/{org.name}", org) for org in orderer_orgs.values()]
            ),
            policy_manager=_policy_manager(root),
            config_bytes=config.SerializeToString(deterministic=True),
        )

    @property
    def config(self) -> configtx_pb2.Config:
        """A fresh copy of the `common.Config` this view was parsed from."""
        return configtx_pb2.Config.FromString(self.config_bytes)

    @property
    def orderer_endpoints(self) -> tuple[str, ...]:
        """Where to reach the orderers: the orgs' Endpoints, else the channel-wide list."""
        endpoints = tuple(
            endpoint for org in self.orderer_orgs.values() for endpoint in org.endpoints
        )
        return endpoints or self.orderer_addresses

    def acl_policy(self, resource: str) -> str | None:
        """The absolute policy path an ACL names for `resource`, None when it has none.

        A relative reference (``Writers``) is relative to /Channel/Application, as in
        Fabric.
        """
        reference = self.acls.get(resource)
        if reference is None or reference.startswith("/"):
            return reference
        return f"{_APPLICATION}/{reference}"


def _hashing(root: configtx_pb2.ConfigGroup) -> str:
    hashing = _required_value(
        root, keys.HASHING_ALGORITHM, configuration_pb2.HashingAlgorithm, path=_ROOT
    )
    if hashing.name != keys.SHA256:
        raise ChannelConfigError(
            f"hashing algorithm {hashing.name!r} is not supported (expected SHA256)",
            path=f"{_ROOT}/{keys.HASHING_ALGORITHM}",
        )
    structure = _required_value(
        root,
        keys.BLOCK_DATA_HASHING_STRUCTURE,
        configuration_pb2.BlockDataHashingStructure,
        path=_ROOT,
    )
    if structure.width != keys.BLOCK_DATA_HASHING_WIDTH:
        raise ChannelConfigError(
            f"width {structure.width} is not supported (expected 4294967295)",
            path=f"{_ROOT}/{keys.BLOCK_DATA_HASHING_STRUCTURE}",
        )
    return hashing.name


def _capabilities(
    group: configtx_pb2.ConfigGroup, path: str, supported: frozenset[str]
) -> frozenset[str]:
    value = _optional_value(
        group, keys.CAPABILITIES, configuration_pb2.Capabilities, path=path
    )
    if value is None:
        return frozenset()
    names = frozenset(value.capabilities)
    unsupported = sorted(names - supported)
    if unsupported:
        raise ChannelConfigError(
            f"capabilities {', '.join(unsupported)} are required but not supported "
            f"(supported: {', '.join(sorted(supported))})",
            path=f"{path}/{keys.CAPABILITIES}",
        )
    return names


def _orderer_addresses(root: configtx_pb2.ConfigGroup) -> tuple[str, ...]:
    value = _optional_value(
        root, keys.ORDERER_ADDRESSES, configuration_pb2.OrdererAddresses, path=_ROOT
    )
    return tuple(value.addresses) if value is not None else ()


def _consensus(
    orderer: configtx_pb2.ConfigGroup,
) -> tuple[str, int, tuple[Consenter, ...]]:
    path = f"{_ORDERER}/{keys.CONSENSUS_TYPE}"
    consensus = _required_value(
        orderer, keys.CONSENSUS_TYPE, orderer_pb2.ConsensusType, path=_ORDERER
    )
    if consensus.type not in keys.CONSENSUS_TYPES:
        raise ChannelConfigError(
            f"consensus type {consensus.type!r} is not supported "
            f"(expected one of: {', '.join(sorted(keys.CONSENSUS_TYPES))})",
            path=path,
        )
    consenters: tuple[Consenter, ...] = ()
    if consensus.type == keys.CONSENSUS_ETCDRAFT:
        consenters = _etcdraft_consenters(consensus.metadata, path=path)
    return consensus.type, consensus.state, consenters


def _etcdraft_consenters(metadata: bytes, *, path: str) -> tuple[Consenter, ...]:
    decoded = _decode(etcdraft_pb2.ConfigMetadata, metadata, path=f"{path}.metadata")
    if not decoded.consenters:
        raise ChannelConfigError("etcdraft metadata lists no consenters", path=path)
    consenters = []
    for index, consenter in enumerate(decoded.consenters):
        where = f"consenter {index} ({consenter.host}:{consenter.port})"
        if not consenter.host or not 0 < consenter.port <= _MAX_PORT:
            raise ChannelConfigError(f"{where} needs a host and a port", path=path)
        if not consenter.client_tls_cert or not consenter.server_tls_cert:
            raise ChannelConfigError(
                f"{where} needs client and server TLS certificates", path=path
            )
        consenters.append(
            Consenter(
                host=consenter.host,
                port=consenter.port,
                client_tls_cert=consenter.client_tls_cert,
                server_tls_cert=consenter.server_tls_cert,
            )
        )
    return tuple(consenters)


def _batch_size(orderer: configtx_pb2.ConfigGroup) -> BatchSize:
    value = _required_value(
        orderer, keys.BATCH_SIZE, orderer_pb2.BatchSize, path=_ORDERER
    )
    path = f"{_ORDERER}/{keys.BATCH_SIZE}"
    for name in ("max_message_count", "absolute_max_bytes", "preferred_max_bytes"):
        if getattr(value, name) == 0:
            raise ChannelConfigError(f"{name} must be greater than 0", path=path)
    if value.preferred_max_bytes > value.absolute_max_bytes:
        raise ChannelConfigError(
            f"preferred_max_bytes {value.preferred_max_bytes} exceeds "
            f"absolute_max_bytes {value.absolute_max_bytes}",
            path=path,
        )
    return BatchSize(
        max_message_count=value.max_message_count,
        absolute_max_bytes=value.absolute_max_bytes,
        preferred_max_bytes=value.preferred_max_bytes,
    )


def _batch_timeout(orderer: configtx_pb2.ConfigGroup) -> tuple[str, float]:
    value = _required_value(
        orderer, keys.BATCH_TIMEOUT, orderer_pb2.BatchTimeout, path=_ORDERER
    )
    path = f"{_ORDERER}/{keys.BATCH_TIMEOUT}"
    try:
        seconds = parse_go_duration(value.timeout)
    except ValueError as error:
        raise ChannelConfigError(str(error), path=path) from error
    if seconds <= 0:
        raise ChannelConfigError(
            f"timeout {value.timeout!r} must be greater than zero", path=path
        )
    return value.timeout, seconds


def _max_channels(orderer: configtx_pb2.ConfigGroup) -> int:
    value = _optional_value(
        orderer,
        keys.CHANNEL_RESTRICTIONS,
        orderer_pb2.ChannelRestrictions,
        path=_ORDERER,
    )
    return value.max_count if value is not None else 0


def _acls(application: configtx_pb2.ConfigGroup) -> dict[str, str]:
    value = _optional_value(application, keys.ACLS, peer_pb2.ACLs, path=_APPLICATION)
    if value is None:
        return {}
    acls = {}
    for resource in sorted(value.acls):
        reference = value.acls[resource].policy_ref
        if not reference:
            raise ChannelConfigError(
                f"resource {resource!r} has no policy_ref",
                path=f"{_APPLICATION}/{keys.ACLS}",
            )
        acls[resource] = reference
    return acls


def _application_orgs(
    application: configtx_pb2.ConfigGroup,
) -> dict[str, ApplicationOrg]:
    _check_keys(
        application.values, _APPLICATION_VALUES, what="value", path=_APPLICATION
    )
    orgs: dict[str, ApplicationOrg] = {}
    for name in sorted(application.groups):
        group = application.groups[name]
        path = f"{_APPLICATION}/{name}"
        _check_org_group(group, _APPLICATION_ORG_VALUES, path=path)
        config, msp = _msp(group, path=path)
        org = ApplicationOrg(
            name=name,
            mspid=msp.mspid,
            msp_config=config,
            msp=msp,
            anchor_peers=_anchor_peers(group, path),
        )
        _add_org(orgs, org.mspid, org, path=path)
    return orgs


def _orderer_orgs(orderer: configtx_pb2.ConfigGroup) -> dict[str, OrdererOrg]:
    _check_keys(orderer.values, _ORDERER_VALUES, what="value", path=_ORDERER)
    orgs: dict[str, OrdererOrg] = {}
    for name in sorted(orderer.groups):
        group = orderer.groups[name]
        path = f"{_ORDERER}/{name}"
        _check_org_group(group, _ORDERER_ORG_VALUES, path=path)
        endpoints = _optional_value(
            group, keys.ENDPOINTS, configuration_pb2.OrdererAddresses, path=path
        )
        config, msp = _msp(group, path=path)
        org = OrdererOrg(
            name=name,
            mspid=msp.mspid,
            msp_config=config,
            msp=msp,
            endpoints=tuple(endpoints.addresses) if endpoints is not None else (),
        )
        _add_org(orgs, org.mspid, org, path=path)
    return orgs


_Org = TypeVar("_Org", ApplicationOrg, OrdererOrg)


def _add_org(orgs: dict[str, _Org], mspid: str, org: _Org, *, path: str) -> None:
    earlier = orgs.get(mspid)
    if earlier is not None:
        raise ChannelConfigError(
            f"msp id {mspid!r} is already used by organisation {earlier.name!r}",
            path=f"{path}/{keys.MSP}",
        )
    orgs[mspid] = org


def _check_org_group(
    group: configtx_pb2.ConfigGroup, allowed_values: frozenset[str], *, path: str
) -> None:
    _check_keys(group.groups, frozenset(), what="group", path=path)
    _check_keys(group.values, allowed_values, what="value", path=path)


def _msp(group: configtx_pb2.ConfigGroup, *, path: str) -> tuple[bytes, Msp]:
    """The org's FabricMSPConfig bytes and the MSP built from them."""
    value = _required_value(group, keys.MSP, msp_config_pb2.MSPConfig, path=path)
    where = f"{path}/{keys.MSP}"
    if value.type != keys.MSP_TYPE_FABRIC:
        raise ChannelConfigError(
            f"msp type {value.type} is not supported (expected 0, an X.509 MSP)",
            path=where,
        )
    config = _decode(msp_config_pb2.FabricMSPConfig, value.config, path=where)
    try:
        return value.config, Msp(config)
    except ConfigError as error:
        raise ChannelConfigError(str(error), path=where) from error


def _anchor_peers(group: configtx_pb2.ConfigGroup, path: str) -> tuple[HostPort, ...]:
    value = _optional_value(group, keys.ANCHOR_PEERS, peer_pb2.AnchorPeers, path=path)
    if value is None:
        return ()
    peers = []
    for peer in value.anchor_peers:
        if not peer.host or not 0 < peer.port <= _MAX_PORT:
            raise ChannelConfigError(
                f"anchor peer {peer.host}:{peer.port} needs a host and a port from 1 "
                f"to {_MAX_PORT}",
                path=f"{path}/{keys.ANCHOR_PEERS}",
            )
        peers.append(HostPort(peer.host, peer.port))
    return tuple(peers)


def _msp_manager(orgs: Iterable[tuple[str, ApplicationOrg | OrdererOrg]]) -> MspManager:
    """One MSP per id; an org in both groups must carry the same MSP config in each."""
    msps: dict[str, Msp] = {}
    for path, org in orgs:
        earlier = msps.setdefault(org.mspid, org.msp)
        if earlier.to_config() != org.msp.to_config():
            raise ChannelConfigError(
                f"msp {org.mspid!r} is defined again with a different config",
                path=f"{path}/{keys.MSP}",
            )
    return MspManager(msps.values())


def _policy_manager(root: configtx_pb2.ConfigGroup) -> PolicyManager:
    _check_policies(root, path=_ROOT)
    try:
        manager = PolicyManager.from_config_group(root, name=keys.CHANNEL)
    except PolicyError as error:
        raise ChannelConfigError(str(error), path=_ROOT) from error
    required = [f"{_ROOT}/{name}" for name in _GROUP_POLICIES]
    required += [f"{_ORDERER}/{name}" for name in _GROUP_POLICIES]
    required.append(f"{_ORDERER}/{keys.BLOCK_VALIDATION}")
    if keys.APPLICATION in root.groups:
        required += [f"{_APPLICATION}/{name}" for name in _GROUP_POLICIES]
    for path in required:
        try:
            manager.get(path)
        except UnknownPolicy:
            raise ChannelConfigError("missing policy", path=path) from None
    return manager


def _check_policies(group: configtx_pb2.ConfigGroup, *, path: str) -> None:
    """Each policy is set, of a supported type, and its value decodes."""
    for name in sorted(group.policies):
        config_policy = group.policies[name]
        where = f"{path}/{name}"
        if not config_policy.HasField("policy"):
            raise ChannelConfigError("empty policy", path=where)
        policy = config_policy.policy
        if policy.type == policies_pb2.Policy.SIGNATURE:
            _decode(policies_pb2.SignaturePolicyEnvelope, policy.value, path=where)
        elif policy.type == policies_pb2.Policy.IMPLICIT_META:
            _decode(policies_pb2.ImplicitMetaPolicy, policy.value, path=where)
        else:
            raise ChannelConfigError(
                f"policy type {policy.type} is not supported (expected SIGNATURE or "
                f"IMPLICIT_META)",
                path=where,
            )
    for child in sorted(group.groups):
        _check_policies(group.groups[child], path=f"{path}/{child}")


def _check_keys(
    entries: Iterable[str], allowed: Iterable[str], *, what: str, path: str
) -> None:
    allowed = frozenset(allowed)
    for key in sorted(entries):
        if key not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise ChannelConfigError(
                f"unknown {what} (allowed here: {known})", path=f"{path}/{key}"
            )


def _required_value(
    group: configtx_pb2.ConfigGroup, key: str, message_type: type[M], *, path: str
) -> M:
    value = _optional_value(group, key, message_type, path=path)
    if value is None:
        raise ChannelConfigError("missing value", path=f"{path}/{key}")
    return value


def _optional_value(
    group: configtx_pb2.ConfigGroup, key: str, message_type: type[M], *, path: str
) -> M | None:
    if key not in group.values:
        return None
    return _decode(message_type, group.values[key].value, path=f"{path}/{key}")


def _decode(message_type: type[M], data: bytes, *, path: str) -> M:
    message = message_type()
    try:
        message.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError) as error:
        raise ChannelConfigError(
            f"does not decode as {message_type.DESCRIPTOR.full_name}: {error}",
            path=path,
        ) from error
    return message
