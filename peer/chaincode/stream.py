"""The two ends a chaincode stream can have, behind one `ChaincodeStream` interface.

In launch mode the chaincode dials the peer and the stream is the server side
of `protos.ChaincodeSupport/Register` (`ServerStream` over the servicer
context); as a service the peer dials `protos.Chaincode/Connect` and the stream
is the client call (`CallStream`). Either way the handler reads and writes
ChaincodeMessages; `read` returns None once the other side has finished.
"""

from __future__ import annotations

from typing import Protocol

import grpc

from protos.peer import chaincode_shim_pb2

__all__ = ["CallStream", "ChaincodeStream", "ServerStream"]

Message = chaincode_shim_pb2.ChaincodeMessage


class ChaincodeStream(Protocol):
    """A bidirectional stream of ChaincodeMessages."""

    async def read(self) -> Message | None:
        """The next message, or None when the stream has ended."""
        ...

    async def write(self, message: Message) -> None:
        """Send one message (callers never overlap writes)."""
        ...

    def close(self, reason: str) -> None:
        """End the stream from this side (best effort, idempotent)."""
        ...


class ServerStream:
    """The peer's end of a Register call (the chaincode dialled in)."""

    def __init__(self, context: grpc.aio.ServicerContext[Message, Message]) -> None:
        self._context = context

    async def read(self) -> Message | None:
        message = await self._context.read()
        return message if isinstance(message, Message) else None  # else grpc.aio.EOF

    async def write(self, message: Message) -> None:
        await self._context.write(message)

    def close(self, reason: str) -> None:
        # The servicer returns after the handler stops; that ends the call.
        self._context.set_details(reason)


class CallStream:
    """The peer's end of a Connect call it made to a chaincode server."""

    def __init__(self, call: grpc.aio.StreamStreamCall[Message, Message]) -> None:
        self._call = call

    async def read(self) -> Message | None:
        try:
            message = await self._call.read()
        except grpc.aio.AioRpcError:
            return None
        return message if isinstance(message, Message) else None  # else grpc.aio.EOF

    async def write(self, message: Message) -> None:
        await self._call.write(message)

    def close(self, reason: str) -> None:
        self._call.cancel()
