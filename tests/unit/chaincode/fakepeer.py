"""A stand-in for the peer side of the chaincode stream, over real gRPC, for SDK tests.

`FakePeer` serves `protos.ChaincodeSupport/Register` (chaincode dials in) and dials
`protos.Chaincode/Connect` (chaincode as a service). After the handshake (REGISTER →
REGISTERED, READY) it drives TRANSACTION messages carrying a real (unsigned) proposal,
answers state requests from a dict-backed ledger (`chaincode.testing`'s simulator),
routes INVOKE_CHAINCODE to the other registered chaincode in the same transaction, and
commits the writes of successful submits. It has the same `submit`/`evaluate` surface as
`chaincode.testing.MockPeer`, so the scenarios in `scenarios.py` run against either; the
real peer can be put behind the same surface later.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Self

import grpc
import grpc.aio

from chaincode.shim import ClientTls, ServerTls, messages
from chaincode.shim.dial import EOF
from chaincode.shim.transaction import transaction_info
from chaincode.testing import (
    DEFAULT_CHANNEL,
    InvocationResult,
    MockLedger,
    TransactionSimulator,
    invocation_result,
    make_identity,
    transaction_message,
)
from common.protoutil import SerializedIdentity, Timestamp
from protos.peer import chaincode_pb2, chaincode_shim_pb2, chaincode_shim_pb2_grpc

Message = chaincode_shim_pb2.ChaincodeMessage
TIMEOUT_S = 10.0
"""Upper bound on every wait of the fake peer (tests fail instead of hanging)."""


class FakeConnection:
    """One registered chaincode stream, seen from the peer."""

    def __init__(
        self,
        peer: FakePeer,
        read: Callable[[], Awaitable[object]],
        write: Callable[[Message], Awaitable[None]],
    ) -> None:
        self._peer = peer
        self._read = read
        self._write = write
        self.chaincode_id = ""
        self.received: list[Message] = []
        self._transactions: dict[
            tuple[str, str], tuple[TransactionSimulator, asyncio.Future[Message]]
        ] = {}
        self.closed = asyncio.Event()
        self._send_lock = asyncio.Lock()

    @property
    def name(self) -> str:
        """The chaincode name: the label part of the package id."""
        return self.chaincode_id.partition(":")[0]

    async def read(self) -> Message | None:
        try:
            message = await self._read()
        except grpc.aio.AioRpcError:
            return None
        if message is EOF or message is None:
            return None
        assert isinstance(message, Message)
        self.received.append(message)
        return message

    async def send(self, message: Message) -> None:
        async with self._send_lock:  # grpc.aio allows one write at a time
            await self._write(message)

    async def handshake(self) -> None:
        """Expect REGISTER, answer REGISTERED then READY."""
        first = await self.read()
        assert first is not None, "stream ended before REGISTER"
        assert first.type == messages.REGISTER, first
        chaincode_id = chaincode_pb2.ChaincodeID()
        chaincode_id.ParseFromString(first.payload)
        self.chaincode_id = chaincode_id.name
        await self.send(Message(type=messages.REGISTERED))
        await self.send(Message(type=messages.READY))

    async def serve(self) -> None:
        """Answer the chaincode's messages until the stream ends."""
        try:
            async with asyncio.TaskGroup() as group:
                while (message := await self.read()) is not None:
                    await self._dispatch(message, group)
        finally:
            self.closed.set()
            for _, future in self._transactions.values():
                if not future.done():
                    future.cancel()

    async def execute(
        self, message: Message, simulator: TransactionSimulator
    ) -> Message:
        """Send a TRANSACTION and wait for its COMPLETED or ERROR."""
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        key = messages.tx_key(message)
        self._transactions[key] = (simulator, future)
        try:
            await self.send(message)
            async with asyncio.timeout(TIMEOUT_S):
                return await future
        finally:
            del self._transactions[key]

    async def _dispatch(self, message: Message, group: asyncio.TaskGroup) -> None:
        entry = self._transactions.get(messages.tx_key(message))
        if message.type == messages.KEEPALIVE or entry is None:
            return
        simulator, future = entry
        if message.type in (messages.COMPLETED, messages.ERROR):
            if not future.done():
                future.set_result(message)
        elif message.type == chaincode_shim_pb2.ChaincodeMessage.INVOKE_CHAINCODE:
            group.create_task(self._invoke(message))
        else:
            await self.send(simulator.handle(message))

    async def _invoke(self, message: Message) -> None:
        key = messages.tx_key(message)
        try:
            reply = await self._peer.invoke_nested(message)
        except LookupError as error:
            await self.send(messages.error_message(str(error), key=key))
            return
        answer = Message(
            type=chaincode_shim_pb2.ChaincodeMessage.RESPONSE,
            payload=reply.SerializeToString(),
            txid=message.txid,
            channel_id=message.channel_id,
        )
        await self.send(answer)


class FakePeer:
    """The peer stand-in (see the module docstring); use as `async with FakePeer() as p`."""

    def __init__(
        self,
        *,
        channel_id: str = DEFAULT_CHANNEL,
        batch_size: int = 2,
        default_chaincode: str = "scenario",
    ) -> None:
        self.ledger = MockLedger()
        self.channel_id = channel_id
        self.default_chaincode = default_chaincode
        self.batch_size = batch_size
        self.connections: dict[str, FakeConnection] = {}
        self._registered = asyncio.Condition()
        self._group = asyncio.TaskGroup()
        self._server: grpc.aio.Server | None = None
        self._channels: list[grpc.aio.Channel] = []
        self._pending: dict[tuple[str, str], list[TransactionSimulator]] = {}

    async def __aenter__(self) -> Self:
        await self._group.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop_server()
        for channel in self._channels:
            await channel.close(None)
        await self._group.__aexit__(exc_type, exc, traceback)

    async def stop_server(self) -> None:
        """Stop serving Register; every dialled-in chaincode sees its stream end."""
        if self._server is not None:
            await self._server.stop(0)
            self._server = None

    # ------------------------------------------------------------ connecting

    async def start_server(self, *, tls: ServerTls | None = None) -> str:
        """Serve ChaincodeSupport/Register on 127.0.0.1 (with TLS if given); the address."""
        server = grpc.aio.server()
        handler = grpc.stream_stream_rpc_method_handler(
            self._register,
            request_deserializer=Message.FromString,
            response_serializer=Message.SerializeToString,
        )
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "protos.ChaincodeSupport", {"Register": handler}
                ),
            )
        )
        if tls is None:
            port = server.add_insecure_port("127.0.0.1:0")
        else:
            port = server.add_secure_port("127.0.0.1:0", tls.credentials())
        await server.start()
        self._server = server
        return f"127.0.0.1:{port}"

    async def connect(
        self, address: str, *, tls: ClientTls | None = None
    ) -> FakeConnection:
        """Dial a chaincode server's Connect (with TLS if given), handshake, keep serving."""
        if tls is None:
            channel = grpc.aio.insecure_channel(address)
        else:
            channel = grpc.aio.secure_channel(address, tls.credentials())
        self._channels.append(channel)
        call = chaincode_shim_pb2_grpc.ChaincodeStub(channel).Connect()  # type: ignore[call-arg]
        connection = FakeConnection(self, call.read, call.write)
        async with asyncio.timeout(TIMEOUT_S):
            await connection.handshake()
        await self._add(connection)
        self._group.create_task(connection.serve())
        return connection

    async def wait_registered(self, name: str) -> FakeConnection:
        """The connection of chaincode `name`, once it has registered."""
        async with asyncio.timeout(TIMEOUT_S), self._registered:
            await self._registered.wait_for(lambda: name in self.connections)
        return self.connections[name]

    async def _register(
        self,
        request_iterator: object,
        context: grpc.aio.ServicerContext[Message, Message],
    ) -> None:
        connection = FakeConnection(self, context.read, context.write)
        await connection.handshake()
        await self._add(connection)
        await connection.serve()

    async def _add(self, connection: FakeConnection) -> None:
        async with self._registered:
            self.connections[connection.name] = connection
            self._registered.notify_all()

    # ------------------------------------------------------------ invoking

    async def submit(
        self,
        function: str,
        *args: str | bytes,
        chaincode: str | None = None,
        creator: SerializedIdentity | None = None,
        transient: Mapping[str, bytes] | None = None,
        is_init: bool = False,
    ) -> InvocationResult:
        """Invoke; commit every namespace's writes when the status is below 400."""
        return await self._invoke(
            function, args, chaincode, creator, transient, commit=True, is_init=is_init
        )

    async def evaluate(
        self,
        function: str,
        *args: str | bytes,
        chaincode: str | None = None,
        creator: SerializedIdentity | None = None,
        transient: Mapping[str, bytes] | None = None,
    ) -> InvocationResult:
        """Invoke without committing."""
        return await self._invoke(
            function, args, chaincode, creator, transient, commit=False
        )

    async def invoke_nested(self, request: Message) -> Message:
        """Run an INVOKE_CHAINCODE request on the target chaincode, same transaction."""
        spec = chaincode_pb2.ChaincodeSpec()
        spec.ParseFromString(request.payload)
        name = spec.chaincode_id.name.partition("/")[0]
        connection = self.connections.get(name)
        if connection is None:
            raise LookupError(f"chaincode {name} is not registered")
        key = messages.tx_key(request)
        simulator = self._simulator(name, key)
        message = Message(
            type=messages.TRANSACTION,
            payload=spec.input.SerializeToString(),
            txid=request.txid,
            channel_id=request.channel_id,
        )
        return await connection.execute(message, simulator)

    async def _invoke(
        self,
        function: str,
        args: Sequence[str | bytes],
        chaincode: str | None,
        creator: SerializedIdentity | None,
        transient: Mapping[str, bytes] | None,
        *,
        commit: bool,
        is_init: bool = False,
    ) -> InvocationResult:
        name = chaincode or self.default_chaincode
        connection = await self.wait_registered(name)
        message = transaction_message(
            channel_id=self.channel_id,
            chaincode=name,
            args=[
                function.encode(),
                *(a.encode() if isinstance(a, str) else a for a in args),
            ],
            creator=creator or make_identity(),
            transient=transient,
            is_init=is_init,
        )
        key = messages.tx_key(message)
        self._pending[key] = []
        try:
            timestamp = transaction_info(message).timestamp
            simulator = self._simulator(name, key, is_init=is_init, timestamp=timestamp)
            reply = await connection.execute(message, simulator)
            result = invocation_result(message.txid, reply)
            if commit and result.status < 400:
                for each in self._pending[key]:
                    each.commit()
            return result
        finally:
            del self._pending[key]

    def _simulator(
        self,
        name: str,
        key: tuple[str, str],
        *,
        is_init: bool = False,
        timestamp: Timestamp | None = None,
    ) -> TransactionSimulator:
        simulator = TransactionSimulator(
            self.ledger,
            namespace=name,
            tx_id=key[1],
            is_init=is_init,
            timestamp=timestamp,
            batch_size=self.batch_size,
        )
        self._pending[key].append(simulator)
        return simulator


@contextlib.asynccontextmanager
async def fake_peer(**options: object) -> AsyncIterator[FakePeer]:
    """`async with fake_peer() as peer`, for fixtures."""
    async with FakePeer(**options) as peer:  # type: ignore[arg-type]
        yield peer
