"""Orderer test material and in-process orderers, shared by orderer (and later peer) tests.

`orderer_material(tmp_path_factory)` builds the small consortium once per session
(`network.orderer_material`); `running_orderer(...)` starts an `OrdererNode` in the
test's event loop on 127.0.0.1:0, joins the channel through the registrar and stops it
afterwards; `broadcast`/`deliver_blocks` are small gRPC clients.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any

import grpc

from common.msp import SigningIdentity
from common.protoutil import (
    BLOCK_UNTIL_READY,
    SeekPosition,
    create_seek_envelope,
)
from common.tls import TlsFiles, channel_credentials
from network.orderer_material import OrdererMaterial, write_orderer_yaml
from orderer.config import load_orderer_config
from orderer.node import OrdererNode
from protos.common import common_pb2
from protos.orderer import ab_pb2, ab_pb2_grpc

TIMEOUT_S = 20.0


@contextlib.asynccontextmanager
async def running_orderer(
    material: OrdererMaterial,
    folder: Path,
    *,
    join: bool = True,
    tls: bool = False,
    mutual_tls: bool = False,
    limits: dict[str, object] | None = None,
) -> AsyncIterator[tuple[OrdererNode, dict[str, str]]]:
    """An orderer on 127.0.0.1:0 with its storage in `folder`, stopped on exit."""
    path = write_orderer_yaml(
        folder / "orderer.yaml",
        material,
        storage=folder / "storage",
        tls=tls,
        mutual_tls=mutual_tls,
        limits=limits,
    )
    node = OrdererNode(load_orderer_config(path))
    addresses = await node.start()
    try:
        if join and material.channel not in node.registrar.names():
            await node.registrar.join(material.genesis)
        yield node, addresses
    finally:
        await node.stop(5.0)


@contextlib.asynccontextmanager
async def connected_orderer(
    material: OrdererMaterial, folder: Path, **options: Any
) -> AsyncIterator[tuple[OrdererNode, grpc.aio.Channel]]:
    """`running_orderer` plus a plaintext grpc channel to it."""
    async with (
        running_orderer(material, folder, **options) as (node, addresses),
        open_channel(addresses["grpc"]) as channel,
    ):
        yield node, channel


def open_channel(
    address: str, material: OrdererMaterial | None = None
) -> grpc.aio.Channel:
    """A grpc channel to the orderer; TLS trusting orderer0's TLS CA when material given."""
    if material is None:
        return grpc.aio.insecure_channel(address)
    credentials = channel_credentials(TlsFiles(root_cas=(material.orderer.tls_ca,)))
    return grpc.aio.secure_channel(address, credentials)


async def broadcast(
    channel: grpc.aio.Channel, envelopes: Iterable[bytes]
) -> list[ab_pb2.BroadcastResponse]:
    """Send raw envelope bytes on one Broadcast stream; return the responses in order."""
    method = channel.stream_stream(  # type: ignore[call-arg]
        "/orderer.AtomicBroadcast/Broadcast",
        response_deserializer=ab_pb2.BroadcastResponse.FromString,
    )
    call: Any = method(iter(list(envelopes)), timeout=TIMEOUT_S)
    return [response async for response in call]


def seek(
    signer: SigningIdentity,
    channel: str,
    *,
    start: SeekPosition,
    stop: SeekPosition,
    behavior: int = BLOCK_UNTIL_READY,
    **options: object,
) -> common_pb2.Envelope:
    """A signed seek envelope."""
    return create_seek_envelope(
        channel_id=channel,
        start=start,
        stop=stop,
        behavior=behavior,
        creator=signer.serialized,
        signer=signer.sign,
        **options,  # type: ignore[arg-type]
    )


async def deliver(
    channel: grpc.aio.Channel, requests: Sequence[common_pb2.Envelope]
) -> list[ab_pb2.DeliverResponse]:
    """Send seek requests on one Deliver stream; collect every response until EOF.

    The stream is half-closed after the last request is answered with a status.
    """
    stub = ab_pb2_grpc.AtomicBroadcastStub(channel)
    call: Any = stub.Deliver(timeout=TIMEOUT_S)  # type: ignore[call-arg]
    responses: list[ab_pb2.DeliverResponse] = []
    for request in requests:
        await call.write(request)
        while True:
            response: Any = await call.read()
            assert isinstance(response, ab_pb2.DeliverResponse), response
            responses.append(response)
            if response.WhichOneof("Type") == "status":
                break
    await call.done_writing()
    return responses
