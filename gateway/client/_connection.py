"""The client's gRPC connection to a gateway: identity, signer, deadlines, method calls.

Shared by every client object. Each call has a deadline (`CallTimeouts`); event
streams have none and end when the caller stops iterating.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from gateway.client._identity import Identity, Signer
from protos.gateway import gateway_pb2

__all__ = ["CallTimeouts", "Connection"]

_GATEWAY = "/gateway.Gateway/"
_DELIVER = "/protos.Deliver/"


@dataclass(frozen=True, slots=True, kw_only=True)
class CallTimeouts:
    """Deadlines of the gateway calls, in seconds."""

    evaluate_s: float = 30.0
    endorse_s: float = 30.0
    submit_s: float = 30.0
    commit_status_s: float = 120.0


class Connection:
    """A grpc.aio channel to one gateway, with who is calling and how they sign."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        identity: Identity,
        signer: Signer | None,
        timeouts: CallTimeouts,
    ) -> None:
        self.channel = channel
        self.identity = identity
        self._signer = signer
        self.timeouts = timeouts
        self._unary: dict[str, Callable[..., Any]] = {}

    @property
    def can_sign(self) -> bool:
        return self._signer is not None

    def sign(self, message: bytes) -> bytes:
        """Sign with the configured signer.

        Raises:
            ValueError: the gateway was connected without a signer (offline signing).
        """
        if self._signer is None:
            raise ValueError(
                "no signer: sign the digest yourself and use the new_signed_* methods"
            )
        return self._signer(message)

    def unary(self, method: str, response_type: Any) -> Callable[..., Any]:
        """The callable of a unary gateway method (made once per method)."""
        call = self._unary.get(method)
        if call is None:
            call = self._unary[method] = self.channel.unary_unary(
                _GATEWAY + method,
                request_serializer=_serialize,
                response_deserializer=response_type.FromString,
            )
        return call

    def chaincode_events(self) -> Callable[..., Any]:
        return self.channel.unary_stream(
            _GATEWAY + "ChaincodeEvents",
            request_serializer=_serialize,
            response_deserializer=gateway_pb2.ChaincodeEventsResponse.FromString,
        )

    def deliver(self, method: str, response_type: Any) -> Callable[..., Any]:
        return self.channel.stream_stream(
            _DELIVER + method,
            request_serializer=_serialize,
            response_deserializer=response_type.FromString,
        )


def _serialize(message: Any) -> bytes:
    data: bytes = message.SerializeToString()
    return data
