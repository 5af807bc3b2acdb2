"""memberOnlyRead / memberOnlyWrite: may a proposal's creator touch a collection?

Execute phase. While a chaincode runs for a proposal, each private data read or
write asks `CreatorAccess.permissions` (the `peer.chaincode.CollectionAccess` of the
transaction): a collection with `memberOnlyRead` (`memberOnlyWrite`) lets only
identities satisfying its member policy read (write) it; implicit collections
allow everyone, as in Fabric; an undefined collection is an error. Hashes
(`GetPrivateDataHash`) are never restricted. `CollectionAccessFactory` builds one
per proposal from the channel's committed definitions, cached by definition
sequence.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from common.errors import IdentityError, PolicyError
from common.msp import Identity, MspManager
from common.policies import evaluate_identities
from common.protoutil import ParsedProposal
from peer.errors import CollectionError
from peer.lifecycle import (
    LIFECYCLE_NAMESPACE,
    DefinitionReader,
    field_key,
)
from peer.privdata.collections import (
    IMPLICIT_COLLECTION_PREFIX,
    StaticConfig,
    static_config,
)

__all__ = ["AccessChannel", "CollectionAccessFactory", "CreatorAccess"]


@dataclass(frozen=True, slots=True)
class AccessChannel:
    """What access checks need of a channel: its MSPs and committed state."""

    msps: MspManager
    reader: DefinitionReader


ChannelLookup = Callable[[str], AccessChannel | None]
"""Channel id → its MSPs and committed state, or None for an unknown channel."""


class CreatorAccess:
    """The collection permissions of one proposal's creator (a `CollectionAccess`)."""

    def __init__(
        self,
        *,
        creator: bytes,
        msps: MspManager,
        configs: Callable[[str, str], StaticConfig | None],
    ) -> None:
        self._creator = creator
        self._msps = msps
        self._configs = configs
        self._identity: Identity | None = None

    def permissions(self, namespace: str, collection: str) -> tuple[bool, bool]:
        """(may read, may write) of the creator.

        Raises:
            CollectionError: the chaincode defines no such collection.
        """
        config = self._configs(namespace, collection)
        if config is None:
            raise CollectionError(
                f"collection {collection} is not defined for chaincode {namespace}"
            )
        if not (config.member_only_read or config.member_only_write):
            return True, True
        member = self._is_member(config)
        return (
            member or not config.member_only_read,
            member or not config.member_only_write,
        )

    def _is_member(self, config: StaticConfig) -> bool:
        try:
            if self._identity is None:
                self._identity = self._msps.deserialize_identity(self._creator)
            evaluate_identities(
                config.member_orgs_policy.signature_policy,
                [self._identity],
                self._msps,
            )
        except (IdentityError, PolicyError):
            return False
        return True


class CollectionAccessFactory:
    """Builds the `CreatorAccess` of a proposal; caches configs per definition sequence."""

    def __init__(self, channels: ChannelLookup) -> None:
        self._channels = channels
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str, str], tuple[bytes, StaticConfig | None]] = {}

    def __call__(self, proposal: ParsedProposal) -> CreatorAccess | None:
        """The creator's access on the proposal's channel (None: unknown channel)."""
        channel = self._channels(proposal.channel_id)
        if channel is None:
            return None

        def configs(ns: str, coll: str) -> StaticConfig | None:
            return self._config(proposal.channel_id, channel.reader, ns, coll)

        return CreatorAccess(
            creator=proposal.creator, msps=channel.msps, configs=configs
        )

    def _config(
        self, channel_id: str, reader: DefinitionReader, ns: str, coll: str
    ) -> StaticConfig | None:
        if coll.startswith(IMPLICIT_COLLECTION_PREFIX):
            return static_config(reader, ns, coll)
        stored = reader.get_state(LIFECYCLE_NAMESPACE, field_key(ns, "Sequence"))
        sequence = b"" if stored is None else stored.value
        key = (channel_id, ns, coll)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and cached[0] == sequence:
            return cached[1]
        config = static_config(reader, ns, coll)
        with self._lock:
            self._cache[key] = (sequence, config)
        return config
