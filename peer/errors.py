"""Errors the peer raises on purpose, all under `common.errors.MedledgerError`.

    PeerError
    ├── QueryError              a state request cannot be answered as asked (the
    │   │                       chaincode or client sent something wrong)
    │   ├── InvalidKey          a key or composite-key part breaks Fabric's key rules
    │   ├── InvalidBookmark     a pagination bookmark this peer did not hand out
    │   └── MangoQueryError     a rich (Mango) query or index definition is malformed
    └── LedgerError             local storage is unusable; the process must stop

A `QueryError` is returned to the caller (the chaincode sees an error); a
`LedgerError` means the channel's database cannot be trusted.
"""

from __future__ import annotations

from common.errors import MedledgerError


class PeerError(MedledgerError):
    """Root of every error the peer raises on purpose."""


class QueryError(PeerError):
    """A state request that cannot be answered as asked."""


class InvalidKey(QueryError):
    """A key, or a part of a composite key, that breaks Fabric's key rules."""


class InvalidBookmark(QueryError):
    """A pagination bookmark that is not one this peer hands out for that query."""


class MangoQueryError(QueryError):
    """A malformed Mango query, selector or index definition; the message says what is wrong."""


class LedgerError(PeerError):
    """The channel database is unusable (schema too new, corrupt, or unwritable)."""
