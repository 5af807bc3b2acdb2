"""Shared pieces of the chaincode support tests: a peer side over real gRPC, proposals.

`PeerSide` runs the peer's half (registry, executor, Register service on
127.0.0.1:0). `RawChaincode` is a chaincode written by hand, one message at a
time, so a test can say exactly what crosses the stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import grpc

from common.protoutil import (
    ParsedProposal,
    create_proposal,
    parse_signed_proposal,
    serialize_identity,
    sign_proposal,
)
from peer.chaincode.execute import ChaincodeExecutor, ChaincodeInfo, StaticLifecycle
from peer.chaincode.registry import ChaincodeRegistry
from peer.chaincode.support import (
    SERVER_OPTIONS,
    ChaincodeSupportService,
    add_chaincode_support,
)
from peer.simulator import TxSimulator
from protos.peer import chaincode_shim_pb2, chaincode_shim_pb2_grpc
from tests.unit.peer.simfakes import FakeReader

Message = chaincode_shim_pb2.ChaincodeMessage
CHANNEL = "medical"
READ_TIMEOUT_S = 10.0

CREATOR = serialize_identity(
    "Org1MSP",
    b"-----BEGIN CERTIFICATE-----\nnot parsed here\n-----END CERTIFICATE-----\n",
)


def proposal(
    args: Sequence[bytes],
    *,
    chaincode: str = "asset",
    transient: Mapping[str, bytes] | None = None,
    is_init: bool = False,
) -> ParsedProposal:
    created = create_proposal(
        channel_id=CHANNEL,
        chaincode_name=chaincode,
        args=args,
        creator=CREATOR,
        transient=transient,
        is_init=is_init,
    )
    signed = sign_proposal(
        created.proposal_bytes, lambda message: b"sig:" + message[:8]
    )
    return parse_signed_proposal(signed)


@dataclass
class PeerSide:
    """The peer's chaincode support, serving Register on a free local port."""

    reader: FakeReader = field(default_factory=FakeReader)
    chaincodes: dict[str, ChaincodeInfo] = field(default_factory=dict)
    execute_timeout_s: float = 10.0
    allow_unsolicited: bool = True
    registry: ChaincodeRegistry = field(init=False)
    executor: ChaincodeExecutor = field(init=False)
    server: grpc.aio.Server = field(init=False)
    address: str = field(init=False)

    async def start(self) -> PeerSide:
        self.registry = ChaincodeRegistry(allow_unsolicited=self.allow_unsolicited)
        self.executor = ChaincodeExecutor(
            self.registry,
            StaticLifecycle(self.chaincodes),
            execute_timeout_s=self.execute_timeout_s,
            startup_timeout_s=READ_TIMEOUT_S,
            simulators=self.simulator_on,
        )
        self.server = grpc.aio.server(options=SERVER_OPTIONS)
        add_chaincode_support(
            self.server, ChaincodeSupportService(self.registry, invoker=self.executor)
        )
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.address = f"127.0.0.1:{port}"
        await self.server.start()
        return self

    async def stop(self) -> None:
        await self.registry.close_all("test over")
        await self.server.stop(None)

    def simulator(self, tx_id: str = "tx") -> TxSimulator:
        return TxSimulator(self.reader, channel_id=CHANNEL, tx_id=tx_id)

    def simulator_on(self, channel_id: str, tx_id: str) -> TxSimulator:
        return TxSimulator(self.reader, channel_id=channel_id, tx_id=tx_id)


class RawChaincode:
    """A hand-driven chaincode stream: `send` and `recv` single messages."""

    def __init__(self, address: str) -> None:
        self._channel = grpc.aio.insecure_channel(address)
        stub = chaincode_shim_pb2_grpc.ChaincodeSupportStub(self._channel)
        self.call = stub.Register()  # type: ignore[call-arg]

    async def register(self, package_id: str) -> None:
        from protos.peer import chaincode_pb2

        payload = chaincode_pb2.ChaincodeID(name=package_id).SerializeToString()
        await self.send(Message(type=Message.REGISTER, payload=payload))
        assert (await self.recv()).type == Message.REGISTERED
        ready = await self.recv()
        assert ready.type == Message.READY
        assert ready.payload == b""

    async def send(self, message: Message) -> None:
        await self.call.write(message)

    async def request(self, request_type: int, payload: bytes, on: Message) -> Message:
        """Send a state request for the transaction of `on` and return the answer."""
        await self.send(
            Message(
                type=request_type,  # type: ignore[arg-type]
                payload=payload,
                txid=on.txid,
                channel_id=on.channel_id,
            )
        )
        return await self.recv()

    async def complete(self, on: Message, payload: bytes, **fields: object) -> None:
        await self.send(
            Message(
                type=Message.COMPLETED,
                payload=payload,
                txid=on.txid,
                channel_id=on.channel_id,
                **fields,  # type: ignore[arg-type]
            )
        )

    async def recv(self) -> Message:
        message = await asyncio.wait_for(self.call.read(), READ_TIMEOUT_S)
        assert isinstance(message, Message), f"stream ended: {message!r}"
        return message

    async def ended(self) -> bool:
        """Whether the peer ended the stream (reads until EOF or an error)."""
        try:
            message = await asyncio.wait_for(self.call.read(), READ_TIMEOUT_S)
        except grpc.aio.AioRpcError:
            return True
        return not isinstance(message, Message)

    async def close(self) -> None:
        self.call.cancel()
        await self._channel.close(None)
