"""The orderer as a real process started through the CLI, over TLS.

Method: `medledger orderer start -c orderer.yaml` in a subprocess; tests wait on its
READY line (never sleep), join the channel over HTTP and talk gRPC over TLS. The crash
test SIGKILLs the process after a seeded random number of acknowledgements, restarts
it on the same storage and checks every acknowledged envelope is in the chain, once,
in order, in signed blocks that chain, and that numbering continues.
"""

from __future__ import annotations

import itertools
import random
import signal
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest

from common.channelconfig import ChannelConfig
from common.policies import SignedData as PolicySignedData
from common.protoutil import (
    SeekPosition,
    block_signature_messages,
    verify_block_hash_chain,
)
from network.orderer_material import (
    HOSPITAL,
    OrdererMaterial,
    build_orderer_material,
    new_envelope,
    write_orderer_yaml,
)
from protos.common import common_pb2
from protos.orderer import ab_pb2
from tests.support.orderer import broadcast, deliver, open_channel, seek
from tests.support.processes import CliProcess, start_cli

pytestmark = pytest.mark.e2e

ENVELOPES = 3000


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> OrdererMaterial:
    return build_orderer_material(tmp_path_factory.mktemp("e2e-material"))


def start_orderer(config: Path, folder: Path) -> tuple[CliProcess, dict[str, str]]:
    process = start_cli(
        ["orderer", "start", "-c", str(config)],
        stderr_path=folder / f"orderer-{len(list(folder.glob('orderer-*.log')))}.log",
    )
    return process, process.wait_ready()


async def join(admin: str, material: OrdererMaterial) -> None:
    form = aiohttp.FormData()
    form.add_field(
        "config-block", material.genesis.SerializeToString(), filename="genesis.block"
    )
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://{admin}/participation/v1/channels", data=form) as response,
    ):
        assert response.status == 201, await response.text()


async def broadcast_until_killed(
    address: str,
    material: OrdererMaterial,
    envelopes: list[bytes],
    *,
    kill_after: int,
    process: CliProcess,
) -> int:
    """Stream envelopes; SIGKILL the orderer after `kill_after` SUCCESSes.

    Returns how many envelopes were acknowledged (a prefix, answers are in order).
    """
    acknowledged = 0
    async with open_channel(address, material) as channel:
        method = channel.stream_stream(  # type: ignore[call-arg]
            "/orderer.AtomicBroadcast/Broadcast",
            response_deserializer=ab_pb2.BroadcastResponse.FromString,
        )
        call: Any = method(iter(envelopes), timeout=60)
        failure: grpc.aio.AioRpcError | None = None
        try:
            async for response in call:
                assert response.status == common_pb2.SUCCESS, response
                acknowledged += 1
                if acknowledged == kill_after:
                    process.popen.send_signal(signal.SIGKILL)
        except grpc.aio.AioRpcError as error:
            failure = error
    if failure is not None:
        assert failure.code() in {
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.CANCELLED,
            grpc.StatusCode.INTERNAL,
            grpc.StatusCode.UNKNOWN,
        }, failure
    return acknowledged


async def read_chain(address: str, material: OrdererMaterial) -> list[common_pb2.Block]:
    reader = material.signing_identity(HOSPITAL, "dr-lee")
    request = seek(
        reader,
        material.channel,
        start=SeekPosition.oldest(),
        stop=SeekPosition.newest(),
    )
    async with open_channel(address, material) as channel:
        responses = await deliver(channel, [request])
    assert responses[-1].status == common_pb2.SUCCESS
    return [response.block for response in responses[:-1]]


def check_chain(blocks: list[common_pb2.Block], material: OrdererMaterial) -> None:
    config = ChannelConfig.from_block(material.genesis)
    policy = config.policy_manager.get("/Channel/Orderer/BlockValidation")
    assert [block.header.number for block in blocks] == list(range(len(blocks)))
    for previous, block in itertools.pairwise(blocks):
        verify_block_hash_chain(previous, block)
        signed = [
            PolicySignedData(
                data=item.message, identity=item.identity, signature=item.signature
            )
            for item in block_signature_messages(block)
        ]
        policy.evaluate(signed, config.msp_manager)


async def crash_and_recover(material: OrdererMaterial, folder: Path, seed: int) -> None:
    rng = random.Random(seed)
    kill_after = rng.randrange(1, ENVELOPES // 2)
    print(f"seed={seed} kill_after={kill_after}")
    config = write_orderer_yaml(
        folder / "orderer.yaml", material, storage=folder / "storage", tls=True
    )
    client = material.signing_identity(HOSPITAL, "dr-lee")
    envelopes = [
        new_envelope(client, data=rng.randbytes(300)) for _ in range(ENVELOPES)
    ]

    process, addresses = start_orderer(config, folder)
    try:
        await join(addresses["admin"], material)
        acknowledged = await broadcast_until_killed(
            addresses["grpc"],
            material,
            envelopes,
            kill_after=kill_after,
            process=process,
        )
    finally:
        process.kill()
    assert acknowledged >= kill_after

    process, addresses = start_orderer(config, folder)
    try:
        blocks = await read_chain(addresses["grpc"], material)
        stored = [envelope for block in blocks[1:] for envelope in block.data.data]
        assert stored == envelopes[: len(stored)], "stored envelopes are not a prefix"
        assert len(stored) >= acknowledged
        more = [new_envelope(client) for _ in range(5)]
        async with open_channel(addresses["grpc"], material) as channel:
            responses = await broadcast(channel, more)
        assert {response.status for response in responses} == {common_pb2.SUCCESS}
        after = await read_chain(addresses["grpc"], material)
        check_chain(after, material)
        assert [e for block in after[len(blocks) :] for e in block.data.data] == more
    finally:
        assert process.terminate() == 0, process.stderr()


async def test_ready_line_and_graceful_sigterm(
    material: OrdererMaterial, tmp_path: Path
) -> None:
    config = write_orderer_yaml(
        tmp_path / "orderer.yaml", material, storage=tmp_path / "storage", tls=True
    )
    process, addresses = start_orderer(config, tmp_path)
    try:
        assert set(addresses) == {"grpc", "admin"}
        assert not addresses["grpc"].endswith(":0")
        await join(addresses["admin"], material)
    finally:
        code = process.terminate()
    assert code == 0, process.stderr()
    assert "orderer stopped" in process.stderr()
    assert len([line for line in process.lines if line.startswith("READY ")]) == 1


async def test_kill_9_during_broadcast_loses_no_acknowledged_block(
    material: OrdererMaterial, tmp_path: Path, seed: int
) -> None:
    await crash_and_recover(material, tmp_path, seed)


@pytest.mark.slow
async def test_kill_9_repeated_with_derived_seeds(
    material: OrdererMaterial, tmp_path: Path, seed: int
) -> None:
    for run in range(10):
        await crash_and_recover(material, tmp_path / f"run-{run}", seed + run)
