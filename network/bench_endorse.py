"""Benchmark of the peer's endorser: endorsements/s of a one-read-one-write chaincode.

`run_endorse_bench` makes the hospital example's crypto material and channel, starts a
`PeerNode` (Hospital A's peer0) in this process with the `network.bench_contract`
chaincode launched as its own process, joins the channel and commits the chaincode's
`_lifecycle` definition, then times signed `Counter:Bump` proposals (one GET_STATE and
one PUT_STATE each) two ways:

- `in_process`: straight into `Endorser.process_proposal`, `concurrency` at a time —
  the endorser's cost (checks, simulation over the chaincode stream, signing);
- `grpc`: through `protos.Endorser/ProcessProposal` from a client in another process,
  as a gateway would call it (peer and chaincode CPU counted from when the client
  has signed its proposals);
- `in_process_without_chaincode_stream`: an endorser whose chaincode is a Python
  function doing the same read and write on the simulator — the endorser's own
  ceiling, without the chaincode process and its stream.

Proposals are signed before the clock starts. With `uvloop` installed (the `fast`
extra) the peer's loop, the chaincode's (`python -m chaincode serve`) and the client's
run on it (`common.node.loop_factory`; MEDLEDGER_EVENT_LOOP=asyncio turns it off);
the report names the loop. The chaincode opens the streams the peer's launcher asks
for (4, see `peer.chaincode.registry`; `chaincode_streams`, or the first argument of
`python -m network.bench_endorse`, overrides it) and the report says how many
registered. `medledger bench peer` prints the report next to the validate+commit
figures (`network.bench_peer`).

Where the CPU goes (2 cores, load 4, 4 streams): in process the peer spends about
660 us per endorsement, of which about 250 without the chaincode stream (ECDSA
verify and sign about 145 of those); the stream adds gRPC's cost of three messages
each way (about 170 us in the peer's loop thread and 100 in gRPC's poller thread)
and about 50 us of our Python; the chaincode about 380 (about 90 of them our SDK's
Python). Over gRPC the peer also serves the unary call (about 240 us, `medledger
bench grpc`) and three processes share the two cores.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import grpc

from chaincode.shim.dial import STREAMS_VARIABLE
from common.grpc_runtime import apply_runtime_defaults
from common.msp import Msp, MspManager, SigningIdentity, load_signing_identity
from common.node import EVENT_LOOP_VARIABLE, loop_factory
from common.protoutil import (
    ChaincodeResponse,
    ParsedProposal,
    create_proposal,
    sign_proposal,
)
from network.bench_peer import (
    CHANNEL,
    BenchNetwork,
    definition_transaction,
    orderer_block,
)
from peer.chaincode.execute import ChaincodeInfo, ExecutionResult
from peer.config import ChaincodePackage, ChaincodeSettings, OrdererSettings, PeerConfig
from peer.endorser import Endorser
from peer.lifecycle import ChaincodeDefinition, default_endorsement_policy
from peer.lifecycle_source import CommittedLifecycle
from peer.node import PeerNode
from peer.simulator import TxSimulator
from protos.peer import proposal_response_pb2

__all__ = ["EndorseBenchOptions", "run_endorse_bench"]

CHAINCODE = "counter"
PACKAGE_ID = "counter_1:" + "c0" * 32
HOSPITAL = "HospitalAMSP"
UNREACHABLE = "127.0.0.1:9"
_METHOD = "/protos.Endorser/ProcessProposal"


@dataclass(frozen=True, slots=True, kw_only=True)
class EndorseBenchOptions:
    proposals: int = 5000
    concurrency: int = 64
    keys: int = 1024
    grpc: bool = True
    folder: Path | None = None
    uvloop: bool = True
    """Run the peer, the chaincode and the client on uvloop when it is installed."""
    chaincode_streams: int | None = None
    """Streams the chaincode opens (None: what the peer's launcher asks, 4)."""


DEFAULT_OPTIONS = EndorseBenchOptions()


def run_endorse_bench(
    options: EndorseBenchOptions = DEFAULT_OPTIONS,
) -> dict[str, object]:
    """Time endorsements in process and over gRPC; a JSON-able report."""
    load_before = os.getloadavg()[0]
    factory = uvloop_factory() if options.uvloop else None
    with (
        tempfile.TemporaryDirectory(dir=options.folder) as scratch,
        asyncio.Runner(loop_factory=factory) as runner,
    ):
        report = runner.run(_bench(Path(scratch), options, uvloop=factory is not None))
    return {
        "benchmark": "peer endorsement",
        "chaincode": "Counter:Bump (1 read, 1 write), Python, launched by the peer",
        "event_loop": "uvloop" if factory is not None else "asyncio",
        "proposals": options.proposals,
        "concurrency": options.concurrency,
        **report,
        "cpus": os.cpu_count(),
        "load_average_1m_before": round(load_before, 2),
    }


def uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory when uvloop is installed (and not turned off), else None.

    uvloop cuts the CPU of each gRPC stream message by 10-15 % on both ends of the
    chaincode stream (measured on this machine); it is optional (the `fast` extra).
    """
    return loop_factory()


async def _bench(
    root: Path, options: EndorseBenchOptions, *, uvloop: bool
) -> dict[str, object]:
    network = BenchNetwork.create(root)
    client_layout = network.crypto.organization(HOSPITAL).user("dr-lee")
    client = load_signing_identity(client_layout.msp_dir, mspid=HOSPITAL)
    config = _peer_config(
        network, root, uvloop=uvloop, streams=options.chaincode_streams
    )
    node = PeerNode(config, verify_workers=1)
    addresses = await node.start()
    jobs = [asyncio.ensure_future(job) for job in node.jobs()]
    try:
        await _define_chaincode(network, node)
        await _endorse_all(node, _signed(client, 50, options.keys), 8)
        report: dict[str, object] = {
            "chaincode_streams": len(node.registry.handlers(PACKAGE_ID))
        }
        proposals = _signed(client, options.proposals, options.keys)
        chaincode_pid = _chaincode_pid(node)
        chaincode_cpu_started = _process_cpu_s(chaincode_pid)
        figures = await _timed(node.endorser, proposals, options.concurrency)
        chaincode_cpu = _process_cpu_s(chaincode_pid) - chaincode_cpu_started
        figures["chaincode_cpu_us_per_endorsement"] = round(
            chaincode_cpu / options.proposals * 1e6, 1
        )
        report["in_process"] = figures
        report["in_process_without_chaincode_stream"] = await _timed(
            _stub_endorser(network, node),
            _signed(client, options.proposals, options.keys),
            options.concurrency,
        )
        if options.grpc:
            report["grpc"] = await _grpc_figures(
                addresses["grpc"],
                client_layout.msp_dir,
                options,
                uvloop=uvloop,
                chaincode_pid=chaincode_pid,
            )
        return report
    finally:
        await node.stop(5.0)
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)


def _peer_config(
    network: BenchNetwork, root: Path, *, uvloop: bool, streams: int | None = None
) -> PeerConfig:
    peer = network.crypto.organization(HOSPITAL).peer("peer0")
    # `python -m chaincode` runs on uvloop unless MEDLEDGER_EVENT_LOOP says asyncio,
    # and opens the streams the launcher asks for unless told here.
    settings = (
        *(() if uvloop else (f"{EVENT_LOOP_VARIABLE}=asyncio",)),
        *(() if streams is None else (f"{STREAMS_VARIABLE}={streams}",)),
    )
    command = (
        *(("env", *settings) if settings else ()),
        sys.executable,
        "-m",
        "chaincode",
        "serve",
        "--module",
        "network.bench_contract",
    )
    return PeerConfig(
        source=root / "peer.yaml",
        name=peer.name,
        mspid=HOSPITAL,
        msp_dir=peer.msp_dir,
        listen="127.0.0.1:0",
        tls=None,
        storage=root / "peer",
        orderers=OrdererSettings(
            address_overrides=MappingProxyType({"127.0.0.1:7050": UNREACHABLE})
        ),
        chaincodes=ChaincodeSettings(
            packages=MappingProxyType(
                {
                    CHAINCODE: ChaincodePackage(
                        name=CHAINCODE, package_id=PACKAGE_ID, launch=command
                    )
                }
            )
        ),
    )


async def _define_chaincode(network: BenchNetwork, node: PeerNode) -> None:
    channel = await node.join(network.genesis)
    definition = ChaincodeDefinition(
        name=CHAINCODE,
        version="1",
        sequence=1,
        endorsement_policy=default_endorsement_policy(),
    )
    envelope = definition_transaction(
        definition,
        channel_id=CHANNEL,
        creator=network.identity(HOSPITAL, "Admin"),
        endorsers=network.peers(2),
    )
    store = channel.ledger.block_store
    block = orderer_block(
        1,
        previous_hash=store.blockchain_info().currentBlockHash,
        envelopes=[envelope],
        orderer=network.orderer,
    )
    codes = await channel.commit(block)
    assert list(codes) == [0], codes


def _signed(client: SigningIdentity, count: int, keys: int) -> list[bytes]:
    signed: list[bytes] = []
    for index in range(count):
        created = create_proposal(
            channel_id=CHANNEL,
            chaincode_name=CHAINCODE,
            args=[b"Bump", f"key-{index % keys}".encode()],
            creator=client.serialized,
        )
        signed.append(
            sign_proposal(created.proposal_bytes, client.sign).SerializeToString()
        )
    return signed


async def _endorse_all(
    node: PeerNode, proposals: Sequence[bytes], concurrency: int
) -> list[int]:
    return await _endorse_with(node.endorser, proposals, concurrency)


async def _timed(
    endorser: Endorser, proposals: Sequence[bytes], concurrency: int
) -> dict[str, object]:
    started = time.perf_counter()
    cpu_started = time.process_time()
    statuses = await _endorse_with(endorser, proposals, concurrency)
    return _figures(
        statuses, time.perf_counter() - started, time.process_time() - cpu_started
    )


async def _endorse_with(
    endorser: Endorser, proposals: Sequence[bytes], concurrency: int
) -> list[int]:
    statuses: list[int] = []
    queue = iter(proposals)

    async def worker() -> None:
        for proposal in queue:
            response = await endorser.process_proposal(proposal)
            statuses.append(response.response.status)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


def _figures(
    statuses: Sequence[int], elapsed_s: float, cpu_s: float
) -> dict[str, object]:
    ok = sum(1 for status in statuses if status == 200)
    return {
        "endorsed": ok,
        "failed": len(statuses) - ok,
        "seconds": round(elapsed_s, 3),
        "endorsements_per_s": round(len(statuses) / elapsed_s, 1),
        "peer_cpu_us_per_endorsement": round(cpu_s / len(statuses) * 1e6, 1),
    }


async def _grpc_figures(
    address: str,
    msp_dir: Path,
    options: EndorseBenchOptions,
    *,
    uvloop: bool,
    chaincode_pid: int | None,
) -> dict[str, object]:
    """Run the client in a spawned process (proposals pre-signed there) and time it.

    The client says when its proposals are signed; the peer's and the chaincode's CPU
    count from then on.
    """
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(
        target=_client_main,
        args=(
            child,
            address,
            str(msp_dir),
            options.proposals,
            options.keys,
            options.concurrency,
            uvloop,
        ),
    )
    process.start()
    try:
        await asyncio.to_thread(parent.recv)  # signed, about to start
        cpu_started = time.process_time()
        chaincode_started = _process_cpu_s(chaincode_pid)
        result: dict[str, Any] = await asyncio.to_thread(parent.recv)
        cpu = time.process_time() - cpu_started
        chaincode_cpu = _process_cpu_s(chaincode_pid) - chaincode_started
    finally:
        await asyncio.to_thread(process.join, 60)
    statuses = result["statuses"]
    figures = _figures(statuses, result["seconds"], cpu)
    figures["chaincode_cpu_us_per_endorsement"] = round(
        chaincode_cpu / max(len(statuses), 1) * 1e6, 1
    )
    return figures


def _client_main(
    connection: Any,
    address: str,
    msp_dir: str,
    count: int,
    keys: int,
    concurrency: int,
    uvloop: bool,
) -> None:
    client = load_signing_identity(msp_dir, mspid=HOSPITAL)
    proposals = _signed(client, count, keys)
    factory = uvloop_factory() if uvloop else None
    connection.send("signed")
    with asyncio.Runner(loop_factory=factory) as runner:
        statuses, seconds = runner.run(_client_run(address, proposals, concurrency))
    connection.send({"statuses": statuses, "seconds": seconds})


async def _client_run(
    address: str, proposals: Sequence[bytes], concurrency: int
) -> tuple[list[int], float]:
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(  # type: ignore[call-arg]
            _METHOD,
            response_deserializer=proposal_response_pb2.ProposalResponse.FromString,
        )
        statuses: list[int] = []
        queue = iter(proposals)

        async def worker() -> None:
            for proposal in queue:
                response = await call(proposal, timeout=30)
                statuses.append(response.response.status)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return statuses, time.perf_counter() - started


class _InProcessCounter:
    """`Counter:Bump` as a Python function on the simulator (no chaincode process)."""

    async def execute(
        self,
        proposal: ParsedProposal,
        simulator: TxSimulator,
        *,
        info: ChaincodeInfo | None = None,
    ) -> ExecutionResult:
        key = proposal.args[1].decode()
        current = simulator.get_state(CHAINCODE, key)
        value = int(current) + 1 if current else 1
        simulator.set_state(CHAINCODE, key, str(value).encode())
        return ExecutionResult(
            response=ChaincodeResponse(200, "", str(value).encode()),
            events=b"",
            simulation=simulator.results(),
            chaincode_name=CHAINCODE,
            chaincode_version="1",
        )


def _stub_endorser(network: BenchNetwork, node: PeerNode) -> Endorser:
    """An endorser of the same peer whose chaincode runs in process."""
    peer = network.crypto.organization(HOSPITAL).peer("peer0")
    return Endorser(
        channels=node.channels.get,
        local_msp=MspManager([Msp.from_folder(peer.msp_dir, mspid=HOSPITAL)]),
        signer=load_signing_identity(peer.msp_dir, mspid=HOSPITAL),
        runner=_InProcessCounter(),
        definitions=CommittedLifecycle(
            readers=lambda channel_id: node.channels.require(channel_id).ledger,
            package_ids={CHAINCODE: PACKAGE_ID},
        ),
        system_chaincodes={},
    )


def _chaincode_pid(node: PeerNode) -> int | None:
    status = node.launcher.status(PACKAGE_ID)
    return None if status is None else status.pid


def _process_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of a process (Linux /proc); 0 when unknown."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    import json

    if "GRPC_EXPERIMENTS" not in os.environ:
        # gRPC reads its settings when imported (above): start again with ours, as
        # `medledger bench peer` has them.
        apply_runtime_defaults()
        argv = [sys.executable, "-m", "network.bench_endorse", *sys.argv[1:]]
        os.execv(sys.executable, argv)
    streams = int(sys.argv[1]) if len(sys.argv) > 1 else None
    options = EndorseBenchOptions(chaincode_streams=streams)
    print(json.dumps(run_endorse_bench(options), indent=2))
