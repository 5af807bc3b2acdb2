"""One transaction as a chaincode stream sees it: simulator, proposal, open queries.

A `TransactionContext` lives from the TRANSACTION/INIT message the peer sends
until the chaincode's COMPLETED or ERROR (or the timeout). It carries what the
state requests of that transaction need: the namespace (the chaincode's name),
the simulator every read and write goes to, the client's signed proposal (for
chaincode-to-chaincode calls), whether it is an Init, the collection access
rules of the proposal's creator, and the query iterators the chaincode has
open, keyed by the id the peer handed out.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

from common.protoutil import ParsedProposal
from peer.errors import CollectionError, QueryError, UnsupportedTransaction
from peer.simulator import TxSimulator
from peer.simulator.iterators import ResultsIterator
from protos.peer import chaincode_shim_pb2, proposal_pb2

__all__ = ["CollectionAccess", "QueryCursor", "TransactionContext"]


class CollectionAccess(Protocol):
    """May the proposal's creator read and write a collection (memberOnlyRead/Write)?"""

    def permissions(self, namespace: str, collection: str) -> tuple[bool, bool]:
        """(may read, may write) for the creator; raise CollectionError if undefined."""
        ...


@dataclass(slots=True)
class QueryCursor:
    """An open query of the chaincode: the iterator, the batch being built, the count."""

    iterator: ResultsIterator[Any]
    pending: list[chaincode_shim_pb2.QueryResultBytes] = field(default_factory=list)
    returned: int = 0


@dataclass(slots=True, kw_only=True)
class TransactionContext:
    """The state of one transaction running on one chaincode stream."""

    channel_id: str
    tx_id: str
    namespace: str
    simulator: TxSimulator
    signed_proposal: proposal_pb2.SignedProposal | None = None
    proposal: ParsedProposal | None = None
    is_init: bool = False
    collection_access: CollectionAccess | None = None
    key_level_endorsement: bool = True
    """Channel application capability V1_3: state metadata requests are allowed."""
    purge_enabled: bool = True
    """Channel application capability V2_5: PURGE_PRIVATE_DATA is allowed."""
    queries: dict[str, QueryCursor] = field(default_factory=dict)
    response: asyncio.Future[chaincode_shim_pb2.ChaincodeMessage] | None = None
    busy: bool = False
    _permissions: dict[str, tuple[bool, bool]] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.channel_id, self.tx_id)

    def check_private_access(self, collection: str, *, write: bool) -> None:
        """Refuse private data in Init, and reads or writes the creator may not make."""
        if self.is_init:
            raise UnsupportedTransaction(
                "private data APIs are not allowed in chaincode Init()"
            )
        if self.collection_access is None:
            return
        permissions = self._permissions.get(collection)
        if permissions is None:
            permissions = self.collection_access.permissions(self.namespace, collection)
            self._permissions[collection] = permissions
        may_read, may_write = permissions
        if write and not may_write:
            raise CollectionError(
                "the transaction creator may not write private data of chaincode "
                f"{self.namespace}, collection {collection}"
            )
        if not write and not may_read:
            raise CollectionError(
                "the transaction creator may not read private data of chaincode "
                f"{self.namespace}, collection {collection}"
            )

    def check_not_init(self) -> None:
        if self.is_init:
            raise UnsupportedTransaction(
                "private data APIs are not allowed in chaincode Init()"
            )

    def open_query(self, query_id: str, iterator: ResultsIterator[Any]) -> QueryCursor:
        cursor = QueryCursor(iterator)
        self.queries[query_id] = cursor
        return cursor

    def cursor(self, query_id: str) -> QueryCursor:
        cursor = self.queries.get(query_id)
        if cursor is None:
            raise QueryError(f"query iterator {query_id!r} not found")
        return cursor

    def close_query(self, query_id: str) -> None:
        cursor = self.queries.pop(query_id, None)
        if cursor is not None:
            cursor.iterator.close()

    def close_queries(self) -> None:
        for query_id in list(self.queries):
            self.close_query(query_id)
