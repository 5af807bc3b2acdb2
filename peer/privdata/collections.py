"""Collection configs as the channel's committed chaincode definitions give them.

Commit and execute phases. A chaincode's collections live in its committed
`_lifecycle` definition; every chaincode (and `_lifecycle` itself) also has one
implicit collection per organisation, `_implicit_org_<MSPID>`, whose only member is
that organisation and which never expires. `static_config` finds either kind;
`CommittedCollections` is the ledger's `CollectionConfigs` over them, so a peer
stores plaintext only for collections its organisation is a member of and expires it
after the collection's `blockToLive`.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

from common.policies import from_string, role_mspids
from peer.errors import ChaincodeDefinitionError
from peer.lifecycle import DefinitionReader, read_definition
from protos.peer import collection_pb2

__all__ = [
    "IMPLICIT_COLLECTION_PREFIX",
    "CommittedCollections",
    "implicit_collection",
    "member_mspids",
    "static_config",
]

IMPLICIT_COLLECTION_PREFIX = "_implicit_org_"

StaticConfig = collection_pb2.StaticCollectionConfig


def static_config(reader: DefinitionReader, ns: str, coll: str) -> StaticConfig | None:
    """The config of collection `coll` of chaincode `ns`: implicit, committed or None.

    An undefined chaincode, a collection it does not define, or a definition that
    does not decode gives None.
    """
    if coll.startswith(IMPLICIT_COLLECTION_PREFIX):
        return implicit_collection(coll.removeprefix(IMPLICIT_COLLECTION_PREFIX))
    return _configs(reader, ns).get(coll)


def implicit_collection(mspid: str) -> StaticConfig:
    """`_implicit_org_<mspid>`: members of `mspid` only, no expiry, no member-only rules.

    A fresh message each call (callers may change it); building it from the cached
    encoding costs a decode instead of a policy parse on every endorsement.
    """
    return StaticConfig.FromString(_implicit_collection_bytes(mspid))


@functools.lru_cache(maxsize=256)
def _implicit_collection_bytes(mspid: str) -> bytes:
    config = StaticConfig(
        name=f"{IMPLICIT_COLLECTION_PREFIX}{mspid}",
        member_orgs_policy=collection_pb2.CollectionPolicyConfig(
            signature_policy=from_string(f"OR('{mspid}.member')")
        ),
    )
    return config.SerializeToString(deterministic=True)


def member_mspids(config: StaticConfig) -> frozenset[str]:
    """The MSP ids of a collection's member organisations (its role principals)."""
    return role_mspids(config.member_orgs_policy.signature_policy)


class CommittedCollections:
    """`peer.ledger.pvtupdates.CollectionConfigs` from committed definitions.

    `reader` gives the channel's committed public state; the committer asks while it
    commits block n, so it sees the definitions as of block n - 1. The configs of a
    namespace are read once per block, and so is whether this peer's organisation is
    a member of each collection.
    """

    def __init__(self, reader: Callable[[], DefinitionReader], *, mspid: str) -> None:
        self._reader = reader
        self._mspid = mspid
        self._lock = threading.Lock()
        self._block_num = -1
        self._cache: dict[tuple[str, str], tuple[bool, int]] = {}

    def is_member(self, ns: str, coll: str, *, block_num: int) -> bool:
        return self._lookup(ns, coll, block_num)[0]

    def block_to_live(self, ns: str, coll: str, *, block_num: int) -> int:
        return self._lookup(ns, coll, block_num)[1]

    def _lookup(self, ns: str, coll: str, block_num: int) -> tuple[bool, int]:
        """(this organisation is a member, block-to-live) of a collection, cached per block."""
        with self._lock:
            if block_num != self._block_num:
                self._block_num, self._cache = block_num, {}
            key = (ns, coll)
            found = self._cache.get(key)
            if found is None:
                found = _membership(
                    static_config(self._reader(), ns, coll), self._mspid
                )
                self._cache[key] = found
            return found


def _membership(config: StaticConfig | None, mspid: str) -> tuple[bool, int]:
    if config is None:
        return False, 0
    return mspid in member_mspids(config), config.block_to_live


def _configs(reader: DefinitionReader, ns: str) -> dict[str, StaticConfig]:
    try:
        definition = read_definition(reader, ns)
        configs = () if definition is None else definition.collection_configs()
    except ChaincodeDefinitionError:
        return {}
    return {config.name: config for config in configs}
