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

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from common.channelconfig import keys
from common.channelconfig._parse import (
    APPLICATION,
    CHANNEL_VALUES,
    ORDERER,
    ROOT,
    build_msp_manager,
    build_policy_manager,
    check_keys,
    decode,
    read_acls,
    read_application_orgs,
    read_batch_size,
    read_batch_timeout,
    read_capabilities,
    read_consensus,
    read_hashing,
    read_max_channels,
    read_orderer_addresses,
    read_orderer_orgs,
)
from common.channelconfig.elements import (
    ApplicationOrg,
    BatchSize,
    Capabilities,
    Consenter,
    OrdererOrg,
)
from common.errors import ChannelConfigError, WireError
from common.msp import MspManager
from common.policies import PolicyManager
from common.protoutil import parse_block, parse_envelope
from protos.common import common_pb2, configtx_pb2

__all__ = ["ChannelConfig"]


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
        config_envelope = decode(
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
            raise ChannelConfigError("the config has no channel group", path=ROOT)
        root = config.channel_group
        check_keys(
            root.groups, {keys.ORDERER, keys.APPLICATION}, what="group", path=ROOT
        )
        check_keys(root.values, CHANNEL_VALUES, what="value", path=ROOT)
        orderer = root.groups.get(keys.ORDERER)
        if orderer is None:
            raise ChannelConfigError("missing group", path=ORDERER)
        application = root.groups.get(keys.APPLICATION)
        application_orgs = (
            read_application_orgs(application) if application is not None else {}
        )
        orderer_orgs = read_orderer_orgs(orderer)
        consensus_type, consensus_state, consenters = read_consensus(orderer)
        timeout_text, timeout = read_batch_timeout(orderer)
        return cls(
            channel_id=channel_id,
            sequence=config.sequence,
            hashing_algorithm=read_hashing(root),
            capabilities=Capabilities(
                channel=read_capabilities(root, ROOT, keys.CHANNEL_CAPABILITIES),
                orderer=read_capabilities(orderer, ORDERER, keys.ORDERER_CAPABILITIES),
                application=(
                    read_capabilities(
                        application, APPLICATION, keys.APPLICATION_CAPABILITIES
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
            batch_size=read_batch_size(orderer),
            batch_timeout=timeout,
            batch_timeout_text=timeout_text,
            max_channels=read_max_channels(orderer),
            orderer_addresses=read_orderer_addresses(root),
            acls=MappingProxyType(
                read_acls(application) if application is not None else {}
            ),
            msp_manager=build_msp_manager(
                [
                    (f"{APPLICATION}/{org.name}", org)
                    for org in application_orgs.values()
                ]
                + [(f"{ORDERER}/{org.name}", org) for org in orderer_orgs.values()]
            ),
            policy_manager=build_policy_manager(root),
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
        return f"{APPLICATION}/{reference}"
