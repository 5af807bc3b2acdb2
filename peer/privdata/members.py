"""Collection membership and the identities of peers exchanging private data.

A collection's members are the organisations its `member_orgs_policy` names. Both
ends of a private data exchange are peers: a valid identity of the channel's MSPs
holding the peer role (where the MSP has NodeOUs), with a signature over the exact
payload bytes it sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from google.protobuf.timestamp_pb2 import Timestamp

from common.channelconfig import ChannelConfig
from common.errors import CryptoError, IdentityError
from common.msp import Identity, Role
from peer.errors import AccessDenied, MalformedProposal
from peer.lifecycle import DefinitionReader
from peer.privdata.collections import member_mspids, static_config
from protos.peer import collection_pb2

__all__ = [
    "check_timestamp",
    "collection_config",
    "member_mspids",
    "verify_peer",
]

StaticConfig = collection_pb2.StaticCollectionConfig


def collection_config(
    reader: DefinitionReader, ns: str, coll: str
) -> StaticConfig | None:
    """The config of collection `coll` of chaincode `ns` (implicit or committed), or None."""
    return static_config(reader, ns, coll)


def configs_of(
    package: collection_pb2.CollectionConfigPackage,
) -> dict[str, StaticConfig]:
    """A package's static collection configs by name."""
    return {
        item.static_collection_config.name: item.static_collection_config
        for item in package.config
        if item.HasField("static_collection_config")
    }


def verify_peer(
    config: ChannelConfig, serialized: bytes, payload: bytes, signature: bytes
) -> Identity:
    """The verified identity of a peer of the channel that signed `payload`.

    Raises:
        AccessDenied: unknown or invalid identity, not a peer, or a bad signature.
    """
    msps = config.msp_manager
    try:
        identity = msps.deserialize_identity(serialized)
        msp = msps.msp(identity.mspid)
        if msp.node_ous_enabled and not msp.has_role(identity, Role.PEER):
            raise AccessDenied(f"the signer of {identity.mspid} is not a peer")
        msps.validate(identity)
        identity.verify(payload, signature)
    except (IdentityError, CryptoError) as error:
        raise AccessDenied(f"the signing peer is not accepted: {error}") from None
    return identity


def check_timestamp(
    timestamp: Timestamp,
    *,
    window_s: float,
    clock: Callable[[], float] = time.time,
) -> None:
    """Raises MalformedProposal when `timestamp` is further than `window_s` from now."""
    skew = abs(clock() - timestamp.seconds - timestamp.nanos / 1e9)
    if skew > window_s:
        raise MalformedProposal(
            f"the request's timestamp is {skew:.0f}s away from this peer's time "
            f"(window {window_s:.0f}s)"
        )


def names(pairs: Iterable[tuple[str, str]]) -> str:
    """ "ns/coll, ns/coll" for messages."""
    return ", ".join(f"{ns}/{coll}" for ns, coll in pairs)
