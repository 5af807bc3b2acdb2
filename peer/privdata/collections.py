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
    """`_implicit_org_<mspid>`: members of `mspid` only, no expiry, no member-only rules."""
    return StaticConfig(
        name=f"{IMPLICIT_COLLECTION_PREFIX}{mspid}",
        member_orgs_policy=collection_pb2.CollectionPolicyConfig(
            signature_policy=from_string(f"OR('{mspid}.member')")
        ),
    )


def member_mspids(config: StaticConfig) -> frozenset[str]:
    """The MSP ids of a collection's member organisations (its role principals)."""
    return role_mspids(config.member_orgs_policy.signature_policy)


class CommittedCollections:
    """`peer.ledger.pvtupdates.CollectionConfigs` from committed definitions.

    `reader` gives the channel's committed public state; the committer asks while it
    commits block n, so it sees the definitions as of block n - 1. The configs of a
    namespace are read once per block.
    """

    def __init__(self, reader: Callable[[], DefinitionReader], *, mspid: str) -> None:
        self._reader = reader
        self._mspid = mspid
        self._lock = threading.Lock()
        self._block_num = -1
        self._cache: dict[tuple[str, str], StaticConfig | None] = {}

    def is_member(self, ns: str, coll: str, *, block_num: int) -> bool:
        config = self._config(ns, coll, block_num)
        return config is not None and self._mspid in member_mspids(config)

    def block_to_live(self, ns: str, coll: str, *, block_num: int) -> int:
        config = self._config(ns, coll, block_num)
        return 0 if config is None else config.block_to_live

    def _config(self, ns: str, coll: str, block_num: int) -> StaticConfig | None:
        with self._lock:
            if block_num != self._block_num:
                self._block_num, self._cache = block_num, {}
            key = (ns, coll)
            if key not in self._cache:
                self._cache[key] = static_config(self._reader(), ns, coll)
            return self._cache[key]


def _configs(reader: DefinitionReader, ns: str) -> dict[str, StaticConfig]:
    try:
        definition = read_definition(reader, ns)
        configs = () if definition is None else definition.collection_configs()
    except ChaincodeDefinitionError:
        return {}
    return {config.name: config for config in configs}
