"""The names inside a Fabric channel config tree, and the values medledger accepts there.

A channel config is a tree of `common.ConfigGroup`s rooted at the group `Channel`; its
groups, values and policies are found by these keys, spelled exactly as Fabric spells
them. The channel genesis builder (`network.genesis`) writes them and
`common.channelconfig` reads them.
"""

from __future__ import annotations

__all__ = [
    "ACLS",
    "ADMINS",
    "ANCHOR_PEERS",
    "APPLICATION",
    "APPLICATION_CAPABILITIES",
    "BATCH_SIZE",
    "BATCH_TIMEOUT",
    "BLOCK_DATA_HASHING_STRUCTURE",
    "BLOCK_DATA_HASHING_WIDTH",
    "BLOCK_VALIDATION",
    "CAPABILITIES",
    "CHANNEL",
    "CHANNEL_CAPABILITIES",
    "CHANNEL_RESTRICTIONS",
    "CONSENSUS_ETCDRAFT",
    "CONSENSUS_SOLO",
    "CONSENSUS_TYPE",
    "CONSENSUS_TYPES",
    "CONSORTIUM",
    "CONSORTIUMS",
    "ENDORSEMENT",
    "ENDPOINTS",
    "HASHING_ALGORITHM",
    "KAFKA_BROKERS",
    "LIFECYCLE_ENDORSEMENT",
    "MSP",
    "MSP_TYPE_FABRIC",
    "ORDERER",
    "ORDERERS",
    "ORDERER_ADDRESSES",
    "ORDERER_CAPABILITIES",
    "READERS",
    "SHA256",
    "WRITERS",
]

# Groups.
CHANNEL = "Channel"
APPLICATION = "Application"
ORDERER = "Orderer"
CONSORTIUMS = "Consortiums"
"""Only in the system channel, which Fabric 2.5 no longer needs; medledger rejects it."""

# Values of the Channel group.
HASHING_ALGORITHM = "HashingAlgorithm"
BLOCK_DATA_HASHING_STRUCTURE = "BlockDataHashingStructure"
ORDERER_ADDRESSES = "OrdererAddresses"
"""Channel-wide orderer addresses: deprecated since 1.4.2 in favour of org `Endpoints`."""
CONSORTIUM = "Consortium"
CAPABILITIES = "Capabilities"
"""Also a value of the Orderer and Application groups."""

# Values of the Orderer group.
CONSENSUS_TYPE = "ConsensusType"
BATCH_SIZE = "BatchSize"
BATCH_TIMEOUT = "BatchTimeout"
CHANNEL_RESTRICTIONS = "ChannelRestrictions"
KAFKA_BROKERS = "KafkaBrokers"
ORDERERS = "Orderers"
"""Fabric 3's BFT consenter mapping; accepted and ignored."""

# Values of the Application group.
ACLS = "ACLs"

# Values of organisation groups.
MSP = "MSP"
ENDPOINTS = "Endpoints"
"""An orderer organisation's orderer addresses (`common.OrdererAddresses`)."""
ANCHOR_PEERS = "AnchorPeers"
"""An application organisation's anchor peers (`protos.AnchorPeers`)."""

# Policies.
READERS = "Readers"
WRITERS = "Writers"
ADMINS = "Admins"
BLOCK_VALIDATION = "BlockValidation"
ENDORSEMENT = "Endorsement"
LIFECYCLE_ENDORSEMENT = "LifecycleEndorsement"

SHA256 = "SHA256"
"""The only hashing algorithm medledger accepts (Fabric also knows SHA3_256)."""

BLOCK_DATA_HASHING_WIDTH = 0xFFFFFFFF
"""The only width Fabric accepts: the data hash is one hash over all envelopes."""

MSP_TYPE_FABRIC = 0
"""`MSPConfig.type` of an X.509 MSP (1 would be idemix, which medledger does not offer)."""

CONSENSUS_SOLO = "solo"
CONSENSUS_ETCDRAFT = "etcdraft"
CONSENSUS_TYPES = frozenset({CONSENSUS_SOLO, CONSENSUS_ETCDRAFT})
"""ConsensusType.type values medledger runs (its etcd backend presents as etcdraft)."""

# The capabilities Fabric 2.5 defines, per level; medledger behaves as the newest.
CHANNEL_CAPABILITIES = frozenset({"V1_1", "V1_3", "V1_4_2", "V1_4_3", "V2_0"})
ORDERER_CAPABILITIES = frozenset({"V1_1", "V1_4_2", "V2_0"})
APPLICATION_CAPABILITIES = frozenset({"V1_1", "V1_2", "V1_3", "V1_4_2", "V2_0", "V2_5"})
