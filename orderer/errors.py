"""Errors the orderer raises on purpose, all under the project root.

MedledgerError
└── OrdererError                    the orderer could not do what was asked
    ├── BroadcastRejected           an envelope fails a Broadcast check (carries the
    │                               common.Status to answer with)
    ├── BackendUnavailable          the ordering backend cannot order now
    │                               (answered SERVICE_UNAVAILABLE)
    ├── ChannelExists               join: the channel is already joined
    ├── ChannelNotJoined            info/remove: no such channel on this orderer
    └── JoinRejected                join: the block cannot start a channel here
"""

from __future__ import annotations

from common.errors import MedledgerError


class OrdererError(MedledgerError):
    """The orderer could not do what was asked."""


class BroadcastRejected(OrdererError):
    """An envelope failed a Broadcast check; `status` is the common.Status to answer."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class BackendUnavailable(OrdererError):
    """The ordering backend cannot order now (stopped, no leader, lost its store)."""


class ChannelExists(OrdererError):
    """The orderer has already joined this channel."""


class ChannelNotJoined(OrdererError):
    """The orderer has not joined this channel."""


class JoinRejected(OrdererError):
    """The join block cannot start a channel on this orderer."""
