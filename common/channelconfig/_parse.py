"""Reading each part of a channel config tree, with errors that name its path.

The helpers behind `ChannelConfig.from_config`: each reads one value or group of the
tree, checks it as a Fabric 2.5 node would, and raises `ChannelConfigError` with the
path of the element at fault (``/Channel/Orderer/BatchSize``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from common.channelconfig import keys
from common.channelconfig.duration import parse_go_duration
from common.channelconfig.elements import (
    ApplicationOrg,
    BatchSize,
    Consenter,
    HostPort,
    OrdererOrg,
)
from common.errors import ChannelConfigError, ConfigError, PolicyError, UnknownPolicy
from common.msp import Msp, MspManager
from common.policies import PolicyManager
from protos.common import configtx_pb2, configuration_pb2, policies_pb2
from protos.msp import msp_config_pb2
from protos.orderer import configuration_pb2 as orderer_pb2
from protos.orderer.etcdraft import configuration_pb2 as etcdraft_pb2
from protos.peer import configuration_pb2 as peer_pb2

M = TypeVar("M", bound=Message)

ROOT = f"/{keys.CHANNEL}"
ORDERER = f"{ROOT}/{keys.ORDERER}"
APPLICATION = f"{ROOT}/{keys.APPLICATION}"

CHANNEL_VALUES = frozenset(
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


def read_hashing(root: configtx_pb2.ConfigGroup) -> str:
    hashing = _required_value(
        root, keys.HASHING_ALGORITHM, configuration_pb2.HashingAlgorithm, path=ROOT
    )
    if hashing.name != keys.SHA256:
        raise ChannelConfigError(
            f"hashing algorithm {hashing.name!r} is not supported (expected SHA256)",
            path=f"{ROOT}/{keys.HASHING_ALGORITHM}",
        )
    structure = _required_value(
        root,
        keys.BLOCK_DATA_HASHING_STRUCTURE,
        configuration_pb2.BlockDataHashingStructure,
        path=ROOT,
    )
    if structure.width != keys.BLOCK_DATA_HASHING_WIDTH:
        raise ChannelConfigError(
            f"width {structure.width} is not supported (expected 4294967295)",
            path=f"{ROOT}/{keys.BLOCK_DATA_HASHING_STRUCTURE}",
        )
    return hashing.name


def read_capabilities(
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


def read_orderer_addresses(root: configtx_pb2.ConfigGroup) -> tuple[str, ...]:
    value = _optional_value(
        root, keys.ORDERER_ADDRESSES, configuration_pb2.OrdererAddresses, path=ROOT
    )
    return tuple(value.addresses) if value is not None else ()


def read_consensus(
    orderer: configtx_pb2.ConfigGroup,
) -> tuple[str, int, tuple[Consenter, ...]]:
    path = f"{ORDERER}/{keys.CONSENSUS_TYPE}"
    consensus = _required_value(
        orderer, keys.CONSENSUS_TYPE, orderer_pb2.ConsensusType, path=ORDERER
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
    decoded = decode(etcdraft_pb2.ConfigMetadata, metadata, path=f"{path}.metadata")
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


def read_batch_size(orderer: configtx_pb2.ConfigGroup) -> BatchSize:
    value = _required_value(
        orderer, keys.BATCH_SIZE, orderer_pb2.BatchSize, path=ORDERER
    )
    path = f"{ORDERER}/{keys.BATCH_SIZE}"
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


def read_batch_timeout(orderer: configtx_pb2.ConfigGroup) -> tuple[str, float]:
    value = _required_value(
        orderer, keys.BATCH_TIMEOUT, orderer_pb2.BatchTimeout, path=ORDERER
    )
    path = f"{ORDERER}/{keys.BATCH_TIMEOUT}"
    try:
        seconds = parse_go_duration(value.timeout)
    except ValueError as error:
        raise ChannelConfigError(str(error), path=path) from error
    if seconds <= 0:
        raise ChannelConfigError(
            f"timeout {value.timeout!r} must be greater than zero", path=path
        )
    return value.timeout, seconds


def read_max_channels(orderer: configtx_pb2.ConfigGroup) -> int:
    value = _optional_value(
        orderer,
        keys.CHANNEL_RESTRICTIONS,
        orderer_pb2.ChannelRestrictions,
        path=ORDERER,
    )
    return value.max_count if value is not None else 0


def read_acls(application: configtx_pb2.ConfigGroup) -> dict[str, str]:
    value = _optional_value(application, keys.ACLS, peer_pb2.ACLs, path=APPLICATION)
    if value is None:
        return {}
    acls = {}
    for resource in sorted(value.acls):
        reference = value.acls[resource].policy_ref
        if not reference:
            raise ChannelConfigError(
                f"resource {resource!r} has no policy_ref",
                path=f"{APPLICATION}/{keys.ACLS}",
            )
        acls[resource] = reference
    return acls


def read_application_orgs(
    application: configtx_pb2.ConfigGroup,
) -> dict[str, ApplicationOrg]:
    check_keys(application.values, _APPLICATION_VALUES, what="value", path=APPLICATION)
    orgs: dict[str, ApplicationOrg] = {}
    for name in sorted(application.groups):
        group = application.groups[name]
        path = f"{APPLICATION}/{name}"
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


def read_orderer_orgs(orderer: configtx_pb2.ConfigGroup) -> dict[str, OrdererOrg]:
    check_keys(orderer.values, _ORDERER_VALUES, what="value", path=ORDERER)
    orgs: dict[str, OrdererOrg] = {}
    for name in sorted(orderer.groups):
        group = orderer.groups[name]
        path = f"{ORDERER}/{name}"
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
    check_keys(group.groups, frozenset(), what="group", path=path)
    check_keys(group.values, allowed_values, what="value", path=path)


def _msp(group: configtx_pb2.ConfigGroup, *, path: str) -> tuple[bytes, Msp]:
    """The org's FabricMSPConfig bytes and the MSP built from them."""
    value = _required_value(group, keys.MSP, msp_config_pb2.MSPConfig, path=path)
    where = f"{path}/{keys.MSP}"
    if value.type != keys.MSP_TYPE_FABRIC:
        raise ChannelConfigError(
            f"msp type {value.type} is not supported (expected 0, an X.509 MSP)",
            path=where,
        )
    config = decode(msp_config_pb2.FabricMSPConfig, value.config, path=where)
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


def build_msp_manager(
    orgs: Iterable[tuple[str, ApplicationOrg | OrdererOrg]],
) -> MspManager:
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


def build_policy_manager(root: configtx_pb2.ConfigGroup) -> PolicyManager:
    _check_policies(root, path=ROOT)
    try:
        manager = PolicyManager.from_config_group(root, name=keys.CHANNEL)
    except PolicyError as error:
        raise ChannelConfigError(str(error), path=ROOT) from error
    required = [f"{ROOT}/{name}" for name in _GROUP_POLICIES]
    required += [f"{ORDERER}/{name}" for name in _GROUP_POLICIES]
    required.append(f"{ORDERER}/{keys.BLOCK_VALIDATION}")
    if keys.APPLICATION in root.groups:
        required += [f"{APPLICATION}/{name}" for name in _GROUP_POLICIES]
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
            decode(policies_pb2.SignaturePolicyEnvelope, policy.value, path=where)
        elif policy.type == policies_pb2.Policy.IMPLICIT_META:
            decode(policies_pb2.ImplicitMetaPolicy, policy.value, path=where)
        else:
            raise ChannelConfigError(
                f"policy type {policy.type} is not supported (expected SIGNATURE or "
                f"IMPLICIT_META)",
                path=where,
            )
    for child in sorted(group.groups):
        _check_policies(group.groups[child], path=f"{path}/{child}")


def check_keys(
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
    return decode(message_type, group.values[key].value, path=f"{path}/{key}")


def decode(message_type: type[M], data: bytes, *, path: str) -> M:
    message = message_type()
    try:
        message.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError) as error:
        raise ChannelConfigError(
            f"does not decode as {message_type.DESCRIPTOR.full_name}: {error}",
            path=path,
        ) from error
    return message
