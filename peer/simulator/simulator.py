"""The transaction simulator: runs a transaction's reads and writes against a snapshot.

Execute phase. The chaincode handler turns each state request of a chaincode
into a call here; nothing is written to the ledger, everything is recorded in
the read-write set (`peer.simulator.rwset`) that the endorser signs.

Fabric's semantics, which this follows on purpose:
- reads return the *committed* value, never the transaction's own earlier
  write, and every read records the committed version (None when absent);
- a write of an empty value is a delete; the last write of a key wins;
- public range queries record what the caller pulled (phantom protection);
  rich queries record each returned key as a read but no range; history and
  private-data range and rich queries record nothing (not even hashed reads);
- paginated queries and private-data range and rich queries are only allowed in
  transactions that write nothing, in either order
  (`UnsupportedTransaction`);
- `GetPrivateData` fails when this peer's plaintext is not the version the
  hashed state says is current (private data missing here); a range or rich
  query on private data returns the committed plaintext this peer holds, and
  fails on a peer whose organisation is not a member of the collection
  (`membership`).

Written keys must be non-empty UTF-8. Like Fabric's peer, the simulator takes
range keys as given: the rules for them (a simple key may not start with
U+0000; a "" start key becomes U+0001 so that composite keys stay out of
simple ranges) are applied by the chaincode shim.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from peer.errors import CollectionError, InvalidKey, QueryError, UnsupportedTransaction
from peer.ledger.history import KeyModification
from peer.ledger.statedb import KV, Version
from peer.simulator.iterators import (
    PlainIterator,
    QueryIterator,
    RangeIterator,
    ResultsIterator,
)
from peer.simulator.reader import Snapshots, StateReader
from peer.simulator.rwset import RwSetBuilder, SimulationResults, key_hash

__all__ = ["CollectionValidator", "TxSimulator", "open_simulator", "validate_key"]

_I = TypeVar("_I", bound=ResultsIterator[Any])


class CollectionValidator(Protocol):
    """Which collections a chaincode defined (from its committed definition)."""

    def validate_collection(self, namespace: str, collection: str) -> None:
        """Return if `collection` exists for `namespace`; raise CollectionError otherwise."""
        ...


def validate_key(key: str) -> None:
    """Reject keys the state database cannot hold: empty, or not valid UTF-8."""
    if not key:
        raise InvalidKey("key must not be empty")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidKey(f"key {key!r} is not valid UTF-8: {error.reason}") from error


class TxSimulator:
    """Simulates one transaction over a `StateReader`; call `done` when finished.

    Not thread-safe: one transaction's requests arrive one at a time.
    `on_done` runs once from `done` (for example to close the snapshot).
    """

    def __init__(
        self,
        reader: StateReader,
        *,
        channel_id: str,
        tx_id: str,
        collections: CollectionValidator | None = None,
        on_done: Callable[[], None] | None = None,
        membership: Callable[[str, str], bool] | None = None,
    ) -> None:
        self.channel_id = channel_id
        self.tx_id = tx_id
        self._reader = reader
        self._collections = collections
        self._membership = membership
        self._on_done = on_done
        self._builder = RwSetBuilder()
        self._iterators: list[tuple[str, ResultsIterator[Any]]] = []
        self._private_reads: set[tuple[str, str]] = set()
        self._private_writes: set[tuple[str, str]] = set()
        self._writeset_metadata: dict[tuple[str, str, str], Mapping[str, bytes]] = {}
        self._read_metadata: dict[tuple[str, str], Mapping[str, bytes] | None] = {}
        """Metadata of public keys read so far (None: absent), from this snapshot."""
        self._write_performed = False
        self._paginated_query_performed = False
        self._private_query_performed = False
        self._results_taken = False
        self._done = False

    # ------------------------------------------------------------ public reads

    def get_state(self, ns: str, key: str) -> bytes | None:
        """The committed value (None when absent); records the read."""
        self._check_open()
        committed = self._reader.get_state(ns, key)
        if committed is None:
            self._builder.add_read(ns, key, None)
            self._read_metadata[(ns, key)] = None
            return None
        self._builder.add_read(ns, key, committed.version)
        self._read_metadata[(ns, key)] = committed.metadata
        return committed.value

    def get_state_metadata(self, ns: str, key: str) -> dict[str, bytes]:
        """The committed metadata ({} when none or absent); records a read of the key."""
        self._check_open()
        committed = self._reader.get_state(ns, key)
        self._builder.add_read(
            ns, key, None if committed is None else committed.version
        )
        self._read_metadata[(ns, key)] = (
            None if committed is None else committed.metadata
        )
        return {} if committed is None else dict(committed.metadata)

    def get_state_range(self, ns: str, start_key: str, end_key: str) -> RangeIterator:
        """Keys in [start_key, end_key) ("" end = unbounded); records what is pulled."""
        self._check_open()
        source = self._reader.get_state_range(ns, start_key, end_key)
        iterator = RangeIterator(source, start_key=start_key, end_key=end_key)
        return self._track(ns, iterator)

    def get_state_range_page(
        self, ns: str, start_key: str, end_key: str, *, page_size: int
    ) -> RangeIterator:
        """At most `page_size` keys from start_key; read-only transactions only."""
        self._check_open()
        if page_size <= 0:
            raise QueryError(f"page size must be positive, got {page_size}")
        self._before_paginated_query()
        source = self._reader.get_state_range(ns, start_key, end_key)
        iterator = RangeIterator(
            source, start_key=start_key, end_key=end_key, page_size=page_size
        )
        return self._track(ns, iterator)

    def execute_query(self, ns: str, query: str) -> QueryIterator:
        """Every match of a Mango query; each returned key is recorded as a read."""
        self._check_open()
        source = self._reader.get_query_result(ns, query)
        return self._track(ns, QueryIterator(source, self._read_recorder(ns)))

    def execute_query_page(
        self, ns: str, query: str, *, page_size: int, bookmark: str
    ) -> QueryIterator:
        """One page of a Mango query; read-only transactions only."""
        self._check_open()
        if page_size <= 0:
            raise QueryError(f"page size must be positive, got {page_size}")
        self._before_paginated_query()
        page = self._reader.get_query_result_page(
            ns, query, page_size=page_size, bookmark=bookmark
        )
        iterator = QueryIterator(
            iter(page.records), self._read_recorder(ns), bookmark=page.bookmark
        )
        return self._track(ns, iterator)

    def get_history_for_key(self, ns: str, key: str) -> PlainIterator[KeyModification]:
        """The key's committed writes, newest first; records nothing."""
        self._check_open()
        iterator = PlainIterator(self._reader.get_history_for_key(ns, key))
        return self._track(ns, iterator)

    # ------------------------------------------------------------ private reads

    def get_private_data(self, ns: str, coll: str, key: str) -> bytes | None:
        """The plaintext of a private key; records a hashed read.

        Raises:
            QueryError: this peer's plaintext is not the version the hashed state
                holds (the private data has not reached this peer).
        """
        self._validate_collection(ns, coll)
        self._check_open()
        plain = self._reader.get_private_data(ns, coll, key)
        hashed = self._reader.get_private_data_hash(ns, coll, key_hash(key))
        plain_version = None if plain is None else plain.version
        hashed_version = None if hashed is None else hashed.version
        if plain_version != hashed_version:
            raise QueryError(
                "private data matching the public hash version is not available on "
                f"this peer: hash version {_describe(hashed_version)}, private data "
                f"version {_describe(plain_version)}"
            )
        self._builder.add_hashed_read(ns, coll, key, plain_version)
        self._private_reads.add((ns, coll))
        return None if plain is None else plain.value

    def get_private_data_hash(self, ns: str, coll: str, key: str) -> bytes | None:
        """SHA-256 of the private value (any channel member may ask); records a hashed read."""
        self._validate_collection(ns, coll)
        self._check_open()
        hashed = self._reader.get_private_data_hash(ns, coll, key_hash(key))
        self._builder.add_hashed_read(
            ns, coll, key, None if hashed is None else hashed.version
        )
        return None if hashed is None else hashed.value

    def get_private_data_metadata(
        self, ns: str, coll: str, key: str
    ) -> dict[str, bytes]:
        """The private key's metadata (kept with its hash); records a hashed read."""
        self._validate_collection(ns, coll)
        self._check_open()
        hashed = self._reader.get_private_data_hash(ns, coll, key_hash(key))
        self._builder.add_hashed_read(
            ns, coll, key, None if hashed is None else hashed.version
        )
        return {} if hashed is None else dict(hashed.metadata)

    def get_private_data_range(
        self, ns: str, coll: str, start_key: str, end_key: str
    ) -> PlainIterator[KV]:
        """Private keys in [start_key, end_key); read-only transactions only.

        Raises:
            CollectionError: this peer is not a member of the collection.
        """
        self._before_private_query(ns, coll)
        iterator = PlainIterator(
            self._reader.get_private_data_range(ns, coll, start_key, end_key)
        )
        return self._track(ns, iterator)

    def execute_query_on_private_data(
        self, ns: str, coll: str, query: str
    ) -> PlainIterator[KV]:
        """Matches of a Mango query among the collection's committed plaintext.

        Read-only transactions only; records nothing. `membership` (namespace,
        collection) says whether this peer's organisation holds the plaintext.

        Raises:
            CollectionError: this peer is not a member of the collection.
        """
        self._before_private_query(ns, coll)
        iterator = PlainIterator(
            self._reader.get_private_data_query_result(ns, coll, query)
        )
        return self._track(ns, iterator)

    # ------------------------------------------------------------ writes

    def set_state(self, ns: str, key: str, value: bytes) -> None:
        """Write a value; an empty value deletes the key."""
        self._before_write(key)
        self._builder.add_write(ns, key, value)
        self._note_metadata(ns, "", key, self._committed_metadata(ns, key))

    def delete_state(self, ns: str, key: str) -> None:
        self.set_state(ns, key, b"")

    def set_state_metadata(
        self, ns: str, key: str, metadata: Mapping[str, bytes]
    ) -> None:
        """Replace the key's metadata at commit ({} removes it)."""
        self._before_write(key)
        self._builder.add_metadata_write(ns, key, metadata)
        self._note_metadata(ns, "", key, self._committed_metadata(ns, key))

    def delete_state_metadata(self, ns: str, key: str) -> None:
        self.set_state_metadata(ns, key, {})

    def set_private_data(self, ns: str, coll: str, key: str, value: bytes) -> None:
        """Write a private value (hash on chain, plaintext to members); empty deletes."""
        self._validate_collection(ns, coll)
        self._before_write(key)
        self._builder.add_private_write(ns, coll, key, value)
        self._private_writes.add((ns, coll))
        self._note_private_metadata(ns, coll, key)

    def delete_private_data(self, ns: str, coll: str, key: str) -> None:
        self.set_private_data(ns, coll, key, b"")

    def purge_private_data(self, ns: str, coll: str, key: str) -> None:
        """Delete the key and have every member purge its plaintext history at commit."""
        self._validate_collection(ns, coll)
        self._before_write(key)
        self._builder.add_private_purge(ns, coll, key)
        self._private_writes.add((ns, coll))
        self._note_private_metadata(ns, coll, key)

    def set_private_data_metadata(
        self, ns: str, coll: str, key: str, metadata: Mapping[str, bytes]
    ) -> None:
        """Replace a private key's metadata at commit ({} removes it)."""
        self._validate_collection(ns, coll)
        self._before_write(key)
        self._builder.add_private_metadata_write(ns, coll, key, metadata)
        self._private_writes.add((ns, coll))
        self._note_private_metadata(ns, coll, key)

    def delete_private_data_metadata(self, ns: str, coll: str, key: str) -> None:
        self.set_private_data_metadata(ns, coll, key, {})

    # ------------------------------------------------------------ end

    def results(self) -> SimulationResults:
        """The read-write sets; may be called once (later calls raise)."""
        if self._results_taken:
            raise UnsupportedTransaction("simulation results may be taken only once")
        self._results_taken = True
        for ns, iterator in self._iterators:
            if isinstance(iterator, RangeIterator):
                self._builder.add_range_query(ns, iterator.range_query_info())
        public, private = self._builder.build()
        return SimulationResults(
            public_rwset=public,
            private_rwset=private,
            private_reads=frozenset(self._private_reads),
            private_writes=frozenset(self._private_writes),
            writeset_metadata=dict(self._writeset_metadata),
        )

    def done(self) -> None:
        """Close every iterator and release the snapshot (idempotent)."""
        if self._done:
            return
        self._done = True
        for _, iterator in self._iterators:
            iterator.close()
        if self._on_done is not None:
            self._on_done()

    @property
    def is_done(self) -> bool:
        return self._done

    @property
    def write_performed(self) -> bool:
        return self._write_performed

    # ------------------------------------------------------------ helpers

    def _track(self, ns: str, iterator: _I) -> _I:
        self._iterators.append((ns, iterator))
        return iterator

    def _read_recorder(self, ns: str) -> Callable[[str, Version], None]:
        def record(key: str, version: Version) -> None:
            self._builder.add_read(ns, key, version)

        return record

    def _check_open(self) -> None:
        if self._done:
            raise UnsupportedTransaction(
                f"transaction {self.tx_id}: the simulator was used after done()"
            )

    def _check_member(self, ns: str, coll: str) -> None:
        """Private range and rich queries read plaintext only members hold."""
        if self._membership is not None and not self._membership(ns, coll):
            raise CollectionError(
                f"this peer is not a member of collection {coll} of chaincode {ns}, "
                "so it holds no private data to query; send the query to a member peer"
            )

    def _validate_collection(self, ns: str, coll: str) -> None:
        if self._collections is not None:
            self._collections.validate_collection(ns, coll)
        elif not coll:
            raise CollectionError("collection name must not be empty")

    def _before_write(self, key: str) -> None:
        self._check_open()
        if self._private_query_performed:
            raise UnsupportedTransaction(
                f"transaction {self.tx_id} queried a private-data range; such "
                "transactions may not write"
            )
        if self._paginated_query_performed:
            raise UnsupportedTransaction(
                f"transaction {self.tx_id} ran a paginated query; such transactions "
                "may not write"
            )
        self._write_performed = True
        validate_key(key)

    def _before_paginated_query(self) -> None:
        if self._write_performed:
            raise UnsupportedTransaction(
                f"transaction {self.tx_id} has written; paginated queries are only "
                "allowed in read-only transactions"
            )
        self._paginated_query_performed = True

    def _before_private_query(self, ns: str, coll: str) -> None:
        """Check a private range or rich query: read-only transaction, member peer."""
        if self._write_performed:
            raise UnsupportedTransaction(
                f"transaction {self.tx_id} has written; private-data range and rich "
                "queries are only allowed in read-only transactions"
            )
        self._private_query_performed = True
        self._validate_collection(ns, coll)
        self._check_open()
        self._check_member(ns, coll)

    def _committed_metadata(self, ns: str, key: str) -> Mapping[str, bytes] | None:
        """The key's committed metadata: as read before in this snapshot, else asked."""
        known = (ns, key)
        if known in self._read_metadata:
            return self._read_metadata[known]
        return self._reader.get_state_metadata(ns, key)

    def _note_metadata(
        self, ns: str, coll: str, key: str, metadata: Mapping[str, bytes] | None
    ) -> None:
        if metadata:
            self._writeset_metadata[(ns, coll, key)] = dict(metadata)

    def _note_private_metadata(self, ns: str, coll: str, key: str) -> None:
        hashed = self._reader.get_private_data_hash(ns, coll, key_hash(key))
        if hashed is not None:
            self._note_metadata(ns, coll, key, hashed.metadata)


def _describe(version: Version | None) -> str:
    return "none" if version is None else f"({version.block_num}, {version.tx_num})"


def open_simulator(
    snapshots: Snapshots,
    *,
    channel_id: str,
    tx_id: str,
    collections: CollectionValidator | None = None,
    membership: Callable[[str, str], bool] | None = None,
) -> TxSimulator:
    """A simulator over a fresh snapshot of the channel; `done` closes the snapshot."""
    snapshot = snapshots.open()
    return TxSimulator(
        snapshot,
        channel_id=channel_id,
        tx_id=tx_id,
        collections=collections,
        on_done=snapshot.close,
        membership=membership,
    )
