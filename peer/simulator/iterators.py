"""Result iterators a simulation hands out, pulled one result at a time.

They follow Fabric's iterator contract: `next()` returns the next result or
None once exhausted, `close()` releases the underlying cursor, and paginated
ones answer `bookmark_and_close()`. What the caller pulls is what gets recorded:

- `RangeIterator` (public key ranges) records every key it returns as a read
  of the range and moves the range's end key along, so the validator can re-run
  exactly the part of the range the chaincode saw (phantom protection);
- `QueryIterator` (rich queries) records each returned key as a plain read,
  without phantom protection, as Fabric does;
- `PlainIterator` (history, private-data ranges) records nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from peer.ledger.statedb import KV, Version
from peer.simulator.rangequery import RangeQueryResults, apply_reads_info
from peer.simulator.rwset import kv_read
from protos.ledger.rwset.kvrwset import kv_rwset_pb2

__all__ = ["PlainIterator", "QueryIterator", "RangeIterator", "ResultsIterator"]

T = TypeVar("T")


class ResultsIterator(Generic[T]):
    """Pulls results from a source iterator; subclasses record what they return."""

    def __init__(self, source: Iterator[T], *, bookmark: str = "") -> None:
        self._source: Iterator[T] | None = source
        self._bookmark = bookmark

    def next(self) -> T | None:
        """The next result, or None when there are no more (or after close)."""
        if self._source is None:
            return None
        item = next(self._source, None)
        self._returned(item)
        return item

    def close(self) -> None:
        """Release the cursor; further `next` calls return None."""
        source, self._source = self._source, None
        close = getattr(source, "close", None)
        if close is not None:
            close()

    def bookmark_and_close(self) -> str:
        """Where the next page starts ("" when nothing follows), then close."""
        bookmark = self._bookmark
        self.close()
        return bookmark

    @property
    def closed(self) -> bool:
        return self._source is None

    def _returned(self, item: T | None) -> None:
        """Hook: `item` is about to be returned (None: the source is exhausted)."""


class PlainIterator(ResultsIterator[T]):
    """Records nothing (history queries, private-data ranges)."""


class QueryIterator(ResultsIterator[KV]):
    """A rich-query iterator: every returned key becomes a read (no phantom check)."""

    def __init__(
        self,
        source: Iterator[KV],
        record_read: Callable[[str, Version], None],
        *,
        bookmark: str = "",
    ) -> None:
        super().__init__(source, bookmark=bookmark)
        self._record_read = record_read

    def _returned(self, item: KV | None) -> None:
        if item is not None:
            self._record_read(item.key, item.version)


class RangeIterator(ResultsIterator[KV]):
    """A public range iterator that keeps the RangeQueryInfo of what it returned.

    With `page_size` > 0 it stops after that many results, as Fabric's paginated
    scanner does, and `bookmark_and_close` names the key after the page.
    """

    def __init__(
        self,
        source: Iterator[KV],
        *,
        start_key: str,
        end_key: str,
        page_size: int = 0,
    ) -> None:
        super().__init__(source)
        self._end_key = end_key
        self._page_size = page_size
        self._count = 0
        self._info = kv_rwset_pb2.RangeQueryInfo(start_key=start_key)
        self._results = RangeQueryResults()

    def next(self) -> KV | None:
        if self._page_size and self._count >= self._page_size and not self.closed:
            self._returned(None)
            return None
        return super().next()

    def bookmark_and_close(self) -> str:
        if self._source is None:
            return ""
        following = next(self._source, None)
        self.close()
        return "" if following is None else following.key

    def range_query_info(self) -> kv_rwset_pb2.RangeQueryInfo:
        """The info to put in the rwset; call once, when the simulation ends."""
        raw_reads, summary = self._results.done()
        apply_reads_info(self._info, raw_reads, summary)
        return self._info

    def _returned(self, item: KV | None) -> None:
        if item is None:
            self._info.itr_exhausted = True
            self._info.end_key = self._end_key
            return
        self._count += 1
        self._results.add(kv_read(item.key, item.version))
        self._info.end_key = item.key
