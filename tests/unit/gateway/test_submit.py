"""Submit against scripted orderers: next on failure, 4xx final, all failed unavailable."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from common.channelconfig import ChannelConfig
from gateway.channels import Channels
from gateway.config import GatewayTimeouts, OrdererSettings
from gateway.connections import DialSettings, OrdererClient
from gateway.context import GatewayContext
from gateway.errors import StatusError
from gateway.orderers import OrdererDirectory, orderer_endpoints
from gateway.registry import Registry
from gateway.submit import submit
from protos.common import common_pb2
from protos.gateway import gateway_pb2
from protos.orderer import ab_pb2
from tests.support.peer import HOSPITAL_A, PeerMaterial

CHANNEL = "medical-records"
Behaviour = Callable[[], ab_pb2.BroadcastResponse]


class RpcError(grpc.aio.AioRpcError):
    def __init__(self) -> None:
        super().__init__(
            grpc.StatusCode.UNAVAILABLE,
            grpc.aio.Metadata(),
            grpc.aio.Metadata(),
            "down",
            "",
        )


class FakeOrderer(OrdererClient):
    def __init__(self, address: str, behaviour: Behaviour) -> None:
        super().__init__(address, "HealthCommissionMSP", DialSettings(root_certs=None))
        self.behaviour = behaviour
        self.calls = 0

    async def broadcast(
        self, envelope: common_pb2.Envelope, *, deadline_s: float
    ) -> ab_pb2.BroadcastResponse:
        self.calls += 1
        return self.behaviour()


class FakeDirectory(OrdererDirectory):
    def __init__(self, orderers: list[FakeOrderer]) -> None:
        super().__init__(
            OrdererSettings(), use_tls=False, base=DialSettings(root_certs=None)
        )
        self.orderers = orderers

    def clients(self, config: ChannelConfig) -> list[OrdererClient]:
        return list(self.orderers)


def status(code: int) -> Behaviour:
    return lambda: ab_pb2.BroadcastResponse(status=code, info="why")  # type: ignore[arg-type]


def down() -> ab_pb2.BroadcastResponse:
    raise RpcError()


async def run(material: PeerMaterial, orderers: list[FakeOrderer]) -> None:
    channels = Channels((CHANNEL,))
    view = channels.get(CHANNEL)
    assert view is not None
    view.apply_block(material.genesis)
    view.mark_ready()
    client = material.user(HOSPITAL_A, "dr-lee")
    ctx = GatewayContext(
        registry=Registry(HOSPITAL_A, []),
        channels=channels,
        orderers=FakeDirectory(orderers),
        creator=client.serialized,
        signer=client.sign,
        timeouts=GatewayTimeouts(),
    )
    request = gateway_pb2.SubmitRequest(
        channel_id=CHANNEL,
        prepared_transaction=common_pb2.Envelope(payload=b"p", signature=b"s"),
    )
    await submit(request, ctx, time_remaining=5)


async def test_a_failed_orderer_gives_way_to_the_next(material: PeerMaterial) -> None:
    orderers = [FakeOrderer("o0", down), FakeOrderer("o1", status(common_pb2.SUCCESS))]
    await run(material, orderers)
    assert orderers[1].calls == 1


async def test_a_client_error_from_an_orderer_is_not_retried(
    material: PeerMaterial,
) -> None:
    orderers = [FakeOrderer(f"o{i}", status(common_pb2.BAD_REQUEST)) for i in range(2)]
    with pytest.raises(StatusError) as raised:
        await run(material, orderers)
    assert raised.value.code is grpc.StatusCode.ABORTED
    assert raised.value.message == (
        "received unsuccessful response from orderer: status=BAD_REQUEST, info=why"
    )
    assert sum(orderer.calls for orderer in orderers) == 1


async def test_when_every_orderer_fails_the_transaction_is_unavailable(
    material: PeerMaterial,
) -> None:
    orderers = [
        FakeOrderer("o0", down),
        FakeOrderer("o1", status(common_pb2.SERVICE_UNAVAILABLE)),
    ]
    with pytest.raises(StatusError) as raised:
        await run(material, orderers)
    assert raised.value.code is grpc.StatusCode.UNAVAILABLE
    assert raised.value.message == "no orderers could successfully process transaction"
    assert sorted(detail.address for detail in raised.value.details) == ["o0", "o1"]


def test_orderer_endpoints_come_from_the_config_with_overrides(
    channel_config: ChannelConfig,
) -> None:
    settings = OrdererSettings(address_overrides={"127.0.0.1:7050": "10.0.0.5:7050"})
    [endpoint] = orderer_endpoints(channel_config, settings)
    assert (endpoint.address, endpoint.mspid) == (
        "10.0.0.5:7050",
        "HealthCommissionMSP",
    )
    assert endpoint.tls_roots.startswith(b"-----BEGIN CERTIFICATE-----")
