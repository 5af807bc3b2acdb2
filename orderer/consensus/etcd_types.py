"""Values and errors of the etcd backend: key-values, transaction parts, watch batches.

Plain frozen dataclasses, so the block log, the election and their tests never touch
etcd's generated protobuf classes; `orderer.consensus.etcd_client` converts. Errors:

    MedledgerError
    ├── EtcdError                   etcd could not do what the backend asked
    │   ├── EtcdUnavailable         no member answered in time, or a watch stream ended
    │   ├── EtcdRevisionCompacted   the revision asked for is older than the compaction
    │   ├── EtcdRequestRejected     etcd refused the request (too large, invalid, ...)
    │   ├── BlocksPruned            (etcd_log) blocks below etcd's base are needed
    │   └── ChainDiverged           (etcd_follow) the local store is ahead of etcd
    └── OrdererError (orderer.errors)
        ├── BackendUnavailable      order() could not finish in time (SERVICE_UNAVAILABLE)
        └── BroadcastRejected
            └── EnvelopeTooLarge    no block etcd accepts can hold the envelope
"""

from __future__ import annotations

from dataclasses import dataclass

from common.errors import MedledgerError
from orderer.errors import BroadcastRejected
from protos.common import common_pb2


class EtcdError(MedledgerError):
    """etcd could not do what the ordering backend asked."""


class EtcdUnavailable(EtcdError):
    """No member answered in time, a stream ended or a connection broke; retry later."""


class EtcdRevisionCompacted(EtcdError):
    """The revision asked for is gone; `compact_revision` is the oldest kept (0: unknown)."""

    def __init__(self, message: str, *, compact_revision: int) -> None:
        super().__init__(f"{message} (compacted up to revision {compact_revision})")
        self.compact_revision = compact_revision


class EtcdRequestRejected(EtcdError):
    """etcd refused the request itself (for instance a value above its size limit)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EtcdTlsConfig:
    """PEM material for a TLS connection with a client certificate.

    `server_name` overrides the name checked in the server certificate (when the
    endpoints are IP addresses that the certificate does not list).
    """

    ca_pem: bytes
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    server_name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyValue:
    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    lease: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RangeResult:
    """Keys of a range read, in key order; `more` is set when a limit cut it short."""

    kvs: tuple[KeyValue, ...]
    more: bool
    revision: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TxnResult:
    """Whether the compares held, the store revision after it, and its range reads."""

    succeeded: bool
    revision: int
    ranges: tuple[RangeResult, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchEvent:
    is_delete: bool
    kv: KeyValue


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchBatch:
    """One watch response: the events of one or more revisions, or just progress.

    `revision` is the store revision when the response was sent; every later event has
    a higher revision.
    """

    revision: int
    events: tuple[WatchEvent, ...]


# Transaction compares


@dataclass(frozen=True, slots=True)
class KeyMissing:
    """Holds when `key` does not exist (its create revision is 0)."""

    key: bytes


@dataclass(frozen=True, slots=True)
class ValueEquals:
    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class CreatedAt:
    """Holds when `key` exists and was created at `revision` (fencing by creation)."""

    key: bytes
    revision: int


Compare = KeyMissing | ValueEquals | CreatedAt


# Transaction operations


@dataclass(frozen=True, slots=True)
class Put:
    key: bytes
    value: bytes
    lease: int = 0


@dataclass(frozen=True, slots=True)
class Get:
    """Read `key`, or the range [key, range_end) when `range_end` is given."""

    key: bytes
    range_end: bytes = b""


@dataclass(frozen=True, slots=True)
class DeleteRange:
    key: bytes
    range_end: bytes


Op = Put | Get | DeleteRange


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key above every key that starts with `prefix` (a range end)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return b"\x00"
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


class EnvelopeTooLarge(BroadcastRejected):
    """No block etcd accepts can hold the envelope (answered REQUEST_ENTITY_TOO_LARGE)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=common_pb2.REQUEST_ENTITY_TOO_LARGE)
