"""Channel genesis: the channel config tree and block 0, laid out as configtxgen does.

`build_channel_config` turns one channel of the consortium spec, together with the
organisations' MSP folders from the crypto generator, into a `common.Config`:

    Channel     policies; HashingAlgorithm, BlockDataHashingStructure, Capabilities
      Orderer   policies (with BlockValidation); ConsensusType, BatchSize, BatchTimeout,
                ChannelRestrictions, Capabilities
        <MSPID> policies; MSP, Endpoints (the org's consenters, host:port)
      Application  policies; Capabilities, [ACLs]
        <MSPID> policies; MSP, [AnchorPeers]

Organisation groups are named by MSP id. Every group, value and policy has mod_policy
``Admins`` and version 0. Orderer addresses are given per organisation (Fabric 2.x
``Endpoints``), not in the deprecated channel-wide ``OrdererAddresses``. An etcd
channel presents as ``etcdraft``, with its consenters and Fabric's default Raft options
in the ConsensusType metadata, so Fabric tools decode it.

`build_genesis_block` wraps a config in block 0 as configtxgen does: one unsigned CONFIG
envelope (channel header version 1, epoch 0, a timestamp in whole seconds; signature
header with an empty creator and a random nonce; tx id = SHA-256 of the nonce), and
metadata with LAST_CONFIG and SIGNATURES both recording config index 0 and no signature.
A `.block` file is the serialized Block (`write_block`, `read_block`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from google.protobuf.message import Message

from common.channelconfig import keys
from common.errors import ConfigError
from common.msp import load_msp_config
from common.policies import from_string, implicit_meta_from_string
from common.protoutil import (
    Timestamp,
    compute_tx_id,
    header_bytes,
    new_block,
    new_nonce,
    parse_block,
    payload_bytes,
    signature_header_bytes,
)
from network.cryptogen import CryptoLayout, OrganizationLayout
from network.spec import ConsortiumSpec, NodeSpec
from network.spec_channels import (
    ChannelSpec,
    OrdererType,
    PolicyKind,
    PolicyRule,
)
from protos.common import common_pb2, configtx_pb2, configuration_pb2, policies_pb2
from protos.msp import msp_config_pb2
from protos.orderer import configuration_pb2 as orderer_pb2
from protos.orderer.etcdraft import configuration_pb2 as etcdraft_pb2
from protos.peer import configuration_pb2 as peer_pb2

__all__ = [
    "CONFIG_HEADER_VERSION",
    "build_channel_config",
    "build_genesis_block",
    "organization_group",
    "read_block",
    "write_block",
]

CONFIG_HEADER_VERSION = 1
"""ChannelHeader.version configtxgen writes in a genesis block."""

MOD_POLICY = keys.ADMINS

# Fabric's default etcdraft options (configtxgen fills these in when none are given).
# medledger's etcd backend does not use them; they keep the metadata complete for
# Fabric tools.
ETCDRAFT_OPTIONS = etcdraft_pb2.Options(
    tick_interval="500ms",
    election_tick=10,
    heartbeat_tick=1,
    max_inflight_blocks=5,
    snapshot_interval_size=16 * 1024 * 1024,
)

_BLOCK_FILE_MODE = 0o644


def build_channel_config(
    spec: ConsortiumSpec, channel_name: str, crypto: CryptoLayout
) -> configtx_pb2.Config:
    """The genesis config (sequence 0) of one channel of the spec.

    Raises:
        ConfigError: the spec's channels section is wrong, has no such channel, or an
            organisation's crypto material is missing or unreadable.
    """
    channel = spec.channel(channel_name)
    root = _group(channel.policies.channel)
    _set_value(
        root,
        keys.HASHING_ALGORITHM,
        configuration_pb2.HashingAlgorithm(name=keys.SHA256),
    )
    _set_value(
        root,
        keys.BLOCK_DATA_HASHING_STRUCTURE,
        configuration_pb2.BlockDataHashingStructure(
            width=keys.BLOCK_DATA_HASHING_WIDTH
        ),
    )
    _set_value(root, keys.CAPABILITIES, _capabilities(channel.capabilities.channel))
    root.groups[keys.ORDERER].CopyFrom(_orderer_group(channel, crypto))
    root.groups[keys.APPLICATION].CopyFrom(_application_group(channel, crypto))
    return configtx_pb2.Config(sequence=0, channel_group=root)


def build_genesis_block(
    config: configtx_pb2.Config,
    channel_id: str,
    *,
    timestamp: Timestamp | None = None,
    nonce: bytes | None = None,
) -> common_pb2.Block:
    """Block 0 of `channel_id`, carrying `config` in one unsigned CONFIG envelope.

    The timestamp defaults to now (whole seconds) and the nonce to fresh random bytes;
    pass both for a byte-for-byte reproducible block.
    """
    nonce = new_nonce() if nonce is None else nonce
    when = timestamp if timestamp is not None else Timestamp(Timestamp.now().seconds)
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.CONFIG,
        version=CONFIG_HEADER_VERSION,
        channel_id=channel_id,
        tx_id=compute_tx_id(nonce=nonce, creator=b""),
        epoch=0,
    )
    channel_header.timestamp.seconds = when.seconds
    channel_header.timestamp.nanos = when.nanos
    header = header_bytes(
        channel_header=_encode(channel_header),
        signature_header=signature_header_bytes(creator=b"", nonce=nonce),
    )
    data = _encode(configtx_pb2.ConfigEnvelope(config=config))
    envelope = _encode(
        common_pb2.Envelope(payload=payload_bytes(header=header, data=data))
    )
    block = new_block(0, previous_hash=b"", envelopes=[envelope])
    last_config = common_pb2.LastConfig(index=0)
    block.metadata.metadata[common_pb2.LAST_CONFIG] = _encode(
        common_pb2.Metadata(value=_encode(last_config))
    )
    block.metadata.metadata[common_pb2.SIGNATURES] = _encode(
        common_pb2.Metadata(
            value=_encode(common_pb2.OrdererBlockMetadata(last_config=last_config))
        )
    )
    return block


def write_block(path: Path, block: common_pb2.Block) -> None:
    """Write `block` as a Fabric ``.block`` file (the serialized Block), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(
        temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _BLOCK_FILE_MODE
    )
    try:
        os.write(descriptor, _encode(block))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(temporary, path)


def read_block(path: Path) -> common_pb2.Block:
    """Read a ``.block`` file.

    Raises:
        ConfigError: the file cannot be read.
        WireError: its bytes are not a block.
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the block: {error.strerror}") from error
    return parse_block(data)


def _orderer_group(
    channel: ChannelSpec, crypto: CryptoLayout
) -> configtx_pb2.ConfigGroup:
    orderer = channel.orderer
    group = _group(channel.policies.orderer)
    batch = orderer.batch_size
    _set_value(
        group,
        keys.BATCH_SIZE,
        orderer_pb2.BatchSize(
            max_message_count=batch.max_message_count,
            absolute_max_bytes=batch.absolute_max_bytes,
            preferred_max_bytes=batch.preferred_max_bytes,
        ),
    )
    _set_value(
        group,
        keys.BATCH_TIMEOUT,
        orderer_pb2.BatchTimeout(timeout=orderer.batch_timeout),
    )
    _set_value(group, keys.CHANNEL_RESTRICTIONS, orderer_pb2.ChannelRestrictions())
    _set_value(group, keys.CAPABILITIES, _capabilities(channel.capabilities.orderer))
    metadata = b""
    if orderer.type is OrdererType.ETCD:
        metadata = _encode(_etcdraft_metadata(orderer.consenters, crypto))
    _set_value(
        group,
        keys.CONSENSUS_TYPE,
        orderer_pb2.ConsensusType(type=orderer.type.consensus_type, metadata=metadata),
    )
    for mspid in orderer.organizations:
        organization = _organization_layout(crypto, mspid)
        org_group = _org_group(channel.policies.orderer_orgs[mspid], organization)
        endpoints = [
            node.address
            for node in orderer.consenters
            if node.domain == organization.domain
        ]
        if endpoints:
            _set_value(
                org_group,
                keys.ENDPOINTS,
                configuration_pb2.OrdererAddresses(addresses=endpoints),
            )
        group.groups[mspid].CopyFrom(org_group)
    return group


def _etcdraft_metadata(
    consenters: Iterable[NodeSpec], crypto: CryptoLayout
) -> etcdraft_pb2.ConfigMetadata:
    metadata = etcdraft_pb2.ConfigMetadata(options=ETCDRAFT_OPTIONS)
    for node in consenters:
        organization = next(
            (org for org in crypto.organizations if org.domain == node.domain), None
        )
        if organization is None:
            raise ConfigError(f"{crypto.root}: no crypto material for {node.full_name}")
        tls_cert = _read(organization.orderer(node.name).tls_cert)
        metadata.consenters.append(
            etcdraft_pb2.Consenter(
                host=node.host,
                port=node.port,
                client_tls_cert=tls_cert,
                server_tls_cert=tls_cert,
            )
        )
    return metadata


def _application_group(
    channel: ChannelSpec, crypto: CryptoLayout
) -> configtx_pb2.ConfigGroup:
    group = _group(channel.policies.application)
    if channel.acls:
        acls = peer_pb2.ACLs()
        for resource, reference in channel.acls.items():
            acls.acls[resource].policy_ref = reference
        _set_value(group, keys.ACLS, acls)
    _set_value(
        group, keys.CAPABILITIES, _capabilities(channel.capabilities.application)
    )
    for mspid in channel.members:
        organization = _organization_layout(crypto, mspid)
        org_group = _org_group(channel.policies.application_orgs[mspid], organization)
        anchors = channel.anchor_peers.get(mspid, ())
        if anchors:
            _set_value(
                org_group,
                keys.ANCHOR_PEERS,
                peer_pb2.AnchorPeers(
                    anchor_peers=[
                        peer_pb2.AnchorPeer(host=peer.host, port=peer.port)
                        for peer in anchors
                    ]
                ),
            )
        group.groups[mspid].CopyFrom(org_group)
    return group


def _org_group(
    policies: Mapping[str, PolicyRule], organization: OrganizationLayout
) -> configtx_pb2.ConfigGroup:
    return organization_group(
        policies, msp_dir=organization.msp_dir, mspid=organization.mspid
    )


def organization_group(
    policies: Mapping[str, PolicyRule], *, msp_dir: Path, mspid: str
) -> configtx_pb2.ConfigGroup:
    """An organisation's group: its policies and the verifying MSP of `msp_dir`.

    Raises:
        ConfigError: the MSP folder is missing or unreadable.
    """
    group = _group(policies)
    fabric_msp = load_msp_config(msp_dir, mspid=mspid)
    _set_value(
        group,
        keys.MSP,
        msp_config_pb2.MSPConfig(type=keys.MSP_TYPE_FABRIC, config=_encode(fabric_msp)),
    )
    return group


def _organization_layout(crypto: CryptoLayout, mspid: str) -> OrganizationLayout:
    try:
        return crypto.organization(mspid)
    except KeyError:
        raise ConfigError(
            f"{crypto.root}: no crypto material for organisation {mspid}; "
            "generate it with the same consortium spec"
        ) from None


def _group(policies: Mapping[str, PolicyRule]) -> configtx_pb2.ConfigGroup:
    group = configtx_pb2.ConfigGroup(mod_policy=MOD_POLICY)
    for name, rule in policies.items():
        group.policies[name].CopyFrom(
            configtx_pb2.ConfigPolicy(policy=_policy(rule), mod_policy=MOD_POLICY)
        )
    return group


def _policy(rule: PolicyRule) -> policies_pb2.Policy:
    if rule.kind is PolicyKind.IMPLICIT_META:
        return policies_pb2.Policy(
            type=policies_pb2.Policy.IMPLICIT_META,
            value=_encode(implicit_meta_from_string(rule.rule)),
        )
    return policies_pb2.Policy(
        type=policies_pb2.Policy.SIGNATURE, value=_encode(from_string(rule.rule))
    )


def _capabilities(names: Iterable[str]) -> configuration_pb2.Capabilities:
    capabilities = configuration_pb2.Capabilities()
    for name in names:
        capabilities.capabilities[name].SetInParent()
    return capabilities


def _set_value(group: configtx_pb2.ConfigGroup, key: str, message: Message) -> None:
    group.values[key].CopyFrom(
        configtx_pb2.ConfigValue(value=_encode(message), mod_policy=MOD_POLICY)
    )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from error


def _encode(message: Message) -> bytes:
    return message.SerializeToString(deterministic=True)
