"""Chaincode as a service: the peer dials `protos.Chaincode/Connect` and redials when it ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from peer.chaincode.execute import ChaincodeInfo
from peer.chaincode.support import ChaincodeService, ServiceEndpoint
from protos.peer import (
    chaincode_pb2,
    chaincode_shim_pb2,
    chaincode_shim_pb2_grpc,
    proposal_response_pb2,
)
from tests.integration.peer.chaincode_fixtures import Message, PeerSide, proposal

PACKAGE = "svc_1:feed"


class FakeChaincodeServer(chaincode_shim_pb2_grpc.ChaincodeServicer):
    """Registers on every Connect; ends the first stream after one transaction."""

    def __init__(self, package_id: str, *, drop_first: bool) -> None:
        self.package_id = package_id
        self.drop_first = drop_first
        self.connections = 0
        self.reconnected = asyncio.Event()

    async def Connect(  # type: ignore[override]
        self,
        request_iterator: object,
        context: grpc.aio.ServicerContext[Message, Message],
    ) -> None:
        self.connections += 1
        if self.connections >= 2:
            self.reconnected.set()
        payload = chaincode_pb2.ChaincodeID(name=self.package_id).SerializeToString()
        await context.write(Message(type=Message.REGISTER, payload=payload))
        assert (await context.read()).type == Message.REGISTERED
        assert (await context.read()).type == Message.READY
        connection = self.connections
        while isinstance(message := await context.read(), Message):
            if message.type == Message.TRANSACTION:
                response = proposal_response_pb2.Response(status=200, payload=b"served")
                await context.write(
                    Message(
                        type=Message.COMPLETED,
                        payload=response.SerializeToString(),
                        txid=message.txid,
                        channel_id=message.channel_id,
                    )
                )
                if self.drop_first and connection == 1:
                    return


async def serve(servicer: FakeChaincodeServer) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    chaincode_shim_pb2_grpc.add_ChaincodeServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


@pytest.fixture
async def peer() -> AsyncIterator[PeerSide]:
    side = PeerSide(
        chaincodes={"svc": ChaincodeInfo(PACKAGE, "1")}, allow_unsolicited=False
    )
    await side.start()
    yield side
    await side.stop()


async def run_once(peer: PeerSide) -> bytes:
    parsed = proposal([b"Get"], chaincode="svc")
    result = await peer.executor.execute(parsed, peer.simulator(parsed.tx_id))
    return result.response.payload


async def test_peer_dials_and_redials_the_chaincode(peer: PeerSide) -> None:
    fake = FakeChaincodeServer(PACKAGE, drop_first=True)
    server, address = await serve(fake)
    service = ChaincodeService(
        PACKAGE,
        ServiceEndpoint(address),
        peer.registry,
        invoker=peer.executor,
        backoff_initial_s=0.01,
    )
    service.start()
    try:
        assert await run_once(peer) == b"served"
        first = peer.registry.handler(PACKAGE)
        assert first is not None
        await first.wait_closed()
        assert await run_once(peer) == b"served"
        assert fake.connections == 2
        assert service.streams_opened == 2
    finally:
        await service.stop()
        await server.stop(None)
    assert peer.registry.handler(PACKAGE) is None
    assert not peer.registry.is_expected(PACKAGE)


async def test_peer_keeps_dialling_until_the_chaincode_comes_up(peer: PeerSide) -> None:
    fake = FakeChaincodeServer(PACKAGE, drop_first=False)
    server = grpc.aio.server()
    chaincode_shim_pb2_grpc.add_ChaincodeServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    service = ChaincodeService(
        PACKAGE,
        ServiceEndpoint(f"127.0.0.1:{port}", dial_timeout_s=0.05),
        peer.registry,
        backoff_initial_s=0.01,
        backoff_max_s=0.05,
    )
    service.start()
    try:
        waiting = asyncio.create_task(run_once(peer))
        await asyncio.sleep(0)  # the executor is now waiting for the registration
        await server.start()
        assert await waiting == b"served"
    finally:
        await service.stop()
        await server.stop(None)


async def test_a_chaincode_registering_under_another_id_is_dropped(
    peer: PeerSide,
) -> None:
    fake = FakeChaincodeServer("impostor:1", drop_first=False)
    server, address = await serve(fake)
    service = ChaincodeService(
        PACKAGE,
        ServiceEndpoint(address),
        peer.registry,
        backoff_initial_s=0.01,
        backoff_max_s=0.02,
    )
    service.start()
    try:
        await asyncio.wait_for(fake.reconnected.wait(), 10)
        assert peer.registry.handler(PACKAGE) is None
        assert peer.registry.handler("impostor:1") is None
    finally:
        await service.stop()
        await server.stop(None)


def test_shim_message_types_used_here_exist() -> None:
    assert chaincode_shim_pb2.ChaincodeMessage.REGISTER == 1
