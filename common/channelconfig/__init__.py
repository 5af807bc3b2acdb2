"""Channel configuration: the typed view of a channel's config tree, and its names.

`ChannelConfig.from_block(genesis_block)` gives a peer or orderer everything it needs
about a channel: member and ordering organisations with their MSPs, anchor peers and
orderer endpoints, consensus type and consenters, batch size and timeout, capabilities,
ACLs, an `MspManager` of all the organisations and a `PolicyManager` rooted at
/Channel. `keys` holds the group, value and policy names of the tree; `duration` reads
and writes the Go duration strings it uses for timeouts. The genesis block itself is
built by `network.genesis` from the consortium spec.
"""

from common.channelconfig import keys
from common.channelconfig.duration import (
    format_go_duration,
    parse_go_duration,
    parse_go_duration_ns,
)
from common.channelconfig.elements import (
    ApplicationOrg,
    BatchSize,
    Capabilities,
    Consenter,
    HostPort,
    OrdererOrg,
)
from common.channelconfig.view import ChannelConfig

__all__ = [
    "ApplicationOrg",
    "BatchSize",
    "Capabilities",
    "ChannelConfig",
    "Consenter",
    "HostPort",
    "OrdererOrg",
    "format_go_duration",
    "keys",
    "parse_go_duration",
    "parse_go_duration_ns",
]
