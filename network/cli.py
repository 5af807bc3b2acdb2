"""The `medledger` console command: one entry point, one subcommand per job.

Subcommands import their packages lazily so that `medledger --help` stays fast and
works even when an optional part is broken. Every subcommand reports bad input as a
one-line message on stderr and exits non-zero; it never prints a traceback for an
error medledger raised on purpose.

The pieces several subcommands share live here: `add_command_group` (a command that
prints its help without a subcommand), `add_start_command` and `serve_node` (the
orderer, peer and gateway `start` commands), and the arguments, target and refusal
message of calls to a peer's admin service (`channel join`, `peer purges`).
`network_cli`, `purges_cli` and `lifecycle_cli` import them; this module imports those
three only when it adds their commands.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

from common.errors import ConfigError, MedledgerError
from common.grpc_runtime import apply_runtime_defaults

if TYPE_CHECKING:
    import grpc

    from common.node import Node
    from peer.admin import AdminTarget

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2

DEFAULT_SPEC = Path(__file__).parent / "examples" / "hospital-consortium.yaml"

Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    apply_runtime_defaults()
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        return print_help_of(parser)
    try:
        return handler(args)
    except MedledgerError as error:
        print(f"medledger: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medledger",
        description=(
            "A permissioned blockchain for hospital consortia, "
            "wire-compatible with Hyperledger Fabric 2.5."
        ),
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {package_version()}"
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    add_crypto_commands(commands)
    add_orderer_commands(commands)
    add_peer_commands(commands)
    add_channel_commands(commands)
    add_chaincode_commands(commands)
    add_gateway_commands(commands)
    add_network_commands(commands)
    add_demo_command(commands)
    add_bench_commands(commands)
    return parser


def add_demo_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """`medledger demo`: the hospital records story on the running network."""
    demo = commands.add_parser(
        "demo",
        help="tell the hospital records story on the running network, step by step",
        description=(
            "On the network of `medledger network up` (started first if it does not "
            "run): hospital A's clinician records a diagnosis, the patient grants "
            "hospital B consent, A shares the record, B reads it (audited), C is "
            "refused, the patient reads the audit trail and asks for erasure, and "
            "the record's hash still verifies. Each step prints its tx id and block; "
            "the exit status is 1 when a step's outcome is not the expected one."
        ),
    )
    where = demo.add_mutually_exclusive_group()
    where.add_argument(
        "--workdir",
        type=Path,
        default=Path(".medledger"),
        help="the work directory of `network up` (default ./.medledger)",
    )
    where.add_argument(
        "--generated",
        type=Path,
        help="instead: an output folder of `network generate` whose nodes run",
    )
    demo.set_defaults(handler=run_demo_command)


def run_demo_command(args: argparse.Namespace) -> int:
    from network.demo import run_demo

    def out(line: str) -> None:
        print(line, flush=True)

    generated: Path | None = args.generated
    steps = run_demo(
        workdir=None if generated else args.workdir, generated=generated, out=out
    )
    return EXIT_OK if steps and all(step.passed for step in steps) else EXIT_ERROR


def add_chaincode_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """`medledger chaincode package|install|approve|commit|...` (the lifecycle)."""
    from network.lifecycle_cli import add_chaincode_commands as add_lifecycle

    add_lifecycle(commands)


def add_network_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """`medledger network up|down|status|logs|generate|deploy`."""
    from network.network_cli import add_network_commands as add_network

    add_network(commands)


def add_gateway_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """`medledger gateway start`, `medledger tx ...` and `medledger events ...`."""
    from gateway.cli import add_commands

    gateway_commands = add_command_group(
        commands, "gateway", summary="run an organisation's gateway"
    )
    add_start_command(
        gateway_commands,
        "gateway",
        summary="start a gateway from its gateway.yaml",
        description=(
            "Start a gateway: it serves gateway.Gateway and protos.Deliver for its "
            "organisation's applications, prints one READY line with its address, and "
            "stops gracefully on SIGTERM or SIGINT."
        ),
        handler=run_gateway_start,
    )
    add_commands(commands)


def run_gateway_start(args: argparse.Namespace) -> int:
    from gateway.config import load_gateway_config
    from gateway.node import GatewayNode

    return serve_node(lambda: GatewayNode(load_gateway_config(args.config)))


def add_crypto_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    crypto_commands = add_command_group(
        commands, "crypto", summary="X.509 material for a consortium"
    )
    generate = crypto_commands.add_parser(
        "generate",
        help="make CAs, node and user certificates (MSP folders) for every organisation",
        description=(
            "Make, per organisation, a signing CA and a TLS CA, peer/orderer/user "
            "certificates with NodeOUs, in Fabric's MSP folder layout. Existing "
            "material in the output folder is kept."
        ),
    )
    generate.add_argument(
        "-c",
        "--config",
        type=Path,
        default=DEFAULT_SPEC,
        help="consortium YAML file (default: the hospital example)",
    )
    generate.add_argument(
        "-o", "--output", type=Path, required=True, help="output folder"
    )
    generate.set_defaults(handler=run_crypto_generate)
    from network.crypto_revoke import add_crypto_revoke_command

    add_crypto_revoke_command(crypto_commands)


def add_orderer_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    orderer_commands = add_command_group(
        commands, "orderer", summary="run an ordering node, manage its channels"
    )
    add_start_command(
        orderer_commands,
        "orderer",
        summary="start an orderer from its orderer.yaml",
        description=(
            "Start an orderer: it reopens the channels it has joined, serves "
            "orderer.AtomicBroadcast and the channel participation API, prints one "
            "READY line with its addresses, and stops gracefully on SIGTERM or SIGINT."
        ),
        handler=run_orderer_start,
    )
    from network.osnadmin_cli import add_orderer_channel_commands

    add_orderer_channel_commands(orderer_commands)


def run_orderer_start(args: argparse.Namespace) -> int:
    from orderer.config import load_orderer_config
    from orderer.node import OrdererNode

    return serve_node(lambda: OrdererNode(load_orderer_config(args.config)))


def add_peer_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    peer_commands = add_command_group(commands, "peer", summary="run a peer node")
    from network.purges_cli import add_purges_command

    add_start_command(
        peer_commands,
        "peer",
        summary="start a peer from its peer.yaml",
        description=(
            "Start a peer: it reopens the channels it has joined and pulls their "
            "blocks, serves protos.Endorser, protos.Deliver and the admin API, runs "
            "its chaincodes, prints one READY line with its addresses, and stops "
            "gracefully on SIGTERM or SIGINT."
        ),
        handler=run_peer_start,
    )
    add_purges_command(peer_commands)


def run_peer_start(args: argparse.Namespace) -> int:
    from peer.config import load_peer_config
    from peer.node import PeerNode

    return serve_node(lambda: PeerNode(load_peer_config(args.config)))


def add_channel_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    channel_commands = add_command_group(
        commands, "channel", summary="join, inspect and reconfigure channels"
    )
    join = channel_commands.add_parser(
        "join",
        help="make a peer join a channel from its genesis block",
        description=(
            "Send a join command signed by an admin of the peer's organisation; the "
            "peer commits the genesis block and starts pulling the channel's blocks "
            "from its orderers."
        ),
    )
    join.add_argument(
        "-b", "--block", type=Path, required=True, help="the channel's genesis block"
    )
    add_peer_admin_arguments(join)
    join.add_argument(
        "--mspid", help="the admin's MSP id (default: found from the genesis block)"
    )
    add_peer_tls_arguments(join)
    join.set_defaults(handler=run_channel_join)
    from network.channel_update_cli import add_channel_update_commands

    add_channel_update_commands(channel_commands)
    from network.channel_cli import add_channel_query_commands

    add_channel_query_commands(channel_commands)
    from network.channel_org_cli import add_channel_org_commands

    add_channel_org_commands(channel_commands)
    from network.channel_msp_cli import add_channel_msp_commands

    add_channel_msp_commands(channel_commands)


def add_peer_admin_arguments(parser: argparse.ArgumentParser) -> None:
    """--peer and --identity: which peer's admin service to call, signed by whom."""
    parser.add_argument("--peer", required=True, help="the peer's HOST:PORT")
    parser.add_argument(
        "--identity",
        type=Path,
        required=True,
        help="MSP folder of an admin of the peer's organisation",
    )


def add_peer_tls_arguments(parser: argparse.ArgumentParser) -> None:
    """--tls-ca (TLS on when given), --tls-cert, --tls-key and --server-name."""
    parser.add_argument(
        "--tls-ca", type=Path, help="the CA of the peer's TLS certificate (TLS on)"
    )
    parser.add_argument("--tls-cert", type=Path, help="client certificate (mutual TLS)")
    parser.add_argument("--tls-key", type=Path, help="client key (mutual TLS)")
    parser.add_argument("--server-name", help="TLS name to expect from the peer")


def peer_admin_target(args: argparse.Namespace) -> AdminTarget:
    """The peer that `add_peer_admin_arguments` and `add_peer_tls_arguments` name."""
    from common.tls import TlsFiles
    from peer.admin import AdminTarget

    tls = None
    if args.tls_ca is not None:
        tls = TlsFiles(cert=args.tls_cert, key=args.tls_key, root_cas=(args.tls_ca,))
    return AdminTarget(address=args.peer, tls=tls, server_name=args.server_name)


def report_refusal(error: grpc.aio.AioRpcError) -> int:
    """Say on stderr that the peer refused the call; returns the exit status."""
    print(
        f"medledger: error: the peer refused: {error.code().name}: {error.details()}",
        file=sys.stderr,
    )
    return EXIT_ERROR


def run_channel_join(args: argparse.Namespace) -> int:
    import asyncio

    import grpc

    from peer.admin import admin_identity_for_block, join_channel

    try:
        block = args.block.read_bytes()
    except OSError as error:
        print(f"medledger: error: {args.block}: {error.strerror}", file=sys.stderr)
        return EXIT_ERROR
    signer = admin_identity_for_block(args.identity, block, mspid=args.mspid)
    target = peer_admin_target(args)
    try:
        response = asyncio.run(join_channel(target, signer=signer, genesis_block=block))
    except grpc.aio.AioRpcError as error:
        return report_refusal(error)
    print(f"joined channel {response.channel_id} (height {response.height})")
    return EXIT_OK


def add_bench_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    bench_commands = add_command_group(
        commands,
        "bench",
        summary="measure throughput (JSON on stdout)",
        title="benchmarks",
        metavar="BENCHMARK",
    )
    orderer = bench_commands.add_parser(
        "orderer",
        help="envelopes/s through one Broadcast stream and Deliver fan-out",
        description=(
            "Start a solo orderer process (or three on a local etcd cluster), "
            "broadcast signed envelopes on one stream, then again while Deliver "
            "subscribers follow the chain; print JSON."
        ),
    )
    orderer.add_argument("--envelopes", type=int, default=20_000)
    orderer.add_argument("--envelope-bytes", type=int, default=3000)
    orderer.add_argument("--subscribers", type=int, default=3)
    orderer.add_argument("--tls", action="store_true", help="TLS on the gRPC link")
    orderer.add_argument(
        "--backend",
        choices=("solo", "etcd"),
        default="solo",
        help="solo, or etcd: three orderers on a local three-member etcd cluster",
    )
    orderer.set_defaults(handler=run_bench_orderer)
    add_bench_ledger_command(bench_commands)
    add_bench_peer_command(bench_commands)
    from network.bench_e2e import add_e2e_command
    from network.bench_floor import add_floor_command
    from network.bench_grpc import add_grpc_command

    add_e2e_command(bench_commands)
    add_grpc_command(bench_commands)
    add_floor_command(bench_commands)


def add_bench_peer_command(
    bench_commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    peer = bench_commands.add_parser(
        "peer",
        help="endorsements/s (Python chaincode) and validate+commit tx/s of a peer",
        description=(
            "Endorse 1-read-1-write proposals against a Python chaincode launched by a "
            "peer (in process and over gRPC), then validate and commit blocks of "
            "endorser transactions with two endorsements each; print JSON."
        ),
    )
    peer.add_argument("--proposals", type=int, default=5000)
    peer.add_argument("--concurrency", type=int, default=64)
    peer.add_argument("--blocks", type=int, default=8, help="blocks to validate+commit")
    peer.add_argument("--txs", type=int, default=500, help="transactions per block")
    peer.add_argument(
        "--workers", type=int, default=2, help="signature-checking processes (0: none)"
    )
    peer.set_defaults(handler=run_bench_peer)


def run_bench_peer(args: argparse.Namespace) -> int:
    import json

    from network.bench_endorse import EndorseBenchOptions, run_endorse_bench
    from network.bench_peer import run_commit_bench

    endorse = run_endorse_bench(
        EndorseBenchOptions(proposals=args.proposals, concurrency=args.concurrency)
    )
    commit = run_commit_bench(
        blocks=args.blocks, txs_per_block=args.txs, workers=args.workers
    )
    print(json.dumps({"endorse": endorse, "commit": commit}, indent=2))
    return EXIT_OK


def add_bench_ledger_command(
    bench_commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    ledger = bench_commands.add_parser(
        "ledger",
        help="committed writes/s, point reads/s and range scans of a channel ledger",
        description=(
            "Commit blocks of endorser transactions through a fresh channel ledger "
            "(block store append with one fsync per block, one SQLite transaction), "
            "at --baseline-keys and at --keys keys of state; print JSON."
        ),
    )
    ledger.add_argument(
        "--blocks", type=int, default=100, help="update blocks per size"
    )
    ledger.add_argument("--txs", type=int, default=500, help="transactions per block")
    ledger.add_argument("--writes", type=int, default=2, help="writes per transaction")
    ledger.add_argument("--value-bytes", type=int, default=200)
    ledger.add_argument("--keys", type=int, default=1_000_000)
    ledger.add_argument("--baseline-keys", type=int, default=10_000)
    ledger.add_argument("--point-reads", type=int, default=50_000)
    ledger.add_argument("--range-keys", type=int, default=200_000)
    ledger.add_argument("--seed", type=int, default=0)
    ledger.add_argument(
        "--dir", type=Path, default=None, help="parent of the temporary ledger folder"
    )
    ledger.set_defaults(handler=run_bench_ledger)


def run_bench_ledger(args: argparse.Namespace) -> int:
    from network.bench_ledger import run_from_args

    return run_from_args(args)


def run_bench_orderer(args: argparse.Namespace) -> int:
    import json

    from network.bench_orderer import BenchOptions, run_orderer_bench

    options = BenchOptions(
        envelopes=args.envelopes,
        envelope_bytes=args.envelope_bytes,
        subscribers=args.subscribers,
        tls=args.tls,
        backend=args.backend,
    )
    print(json.dumps(run_orderer_bench(options), indent=2))
    return EXIT_OK


def add_command_group(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    *,
    summary: str,
    title: str | None = None,
    metavar: str = "COMMAND",
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """`medledger NAME`, which prints its help when no subcommand follows.

    Returns its subcommands (titled "NAME commands" unless `title` says otherwise).
    """
    group = commands.add_parser(name, help=summary)
    subcommands = group.add_subparsers(
        title=title or f"{name} commands", metavar=metavar
    )
    group.set_defaults(handler=lambda _args: print_help_of(group))
    return subcommands


def add_start_command(
    node_commands: argparse._SubParsersAction[argparse.ArgumentParser],
    node: str,
    *,
    summary: str,
    description: str,
    handler: Handler,
) -> None:
    """`medledger NODE start -c NODE.yaml`, run by `handler`."""
    start = node_commands.add_parser("start", help=summary, description=description)
    start.add_argument(
        "-c", "--config", type=Path, required=True, help=f"the {node}.yaml file"
    )
    start.set_defaults(handler=handler)


def serve_node(make: Callable[[], Node]) -> int:
    """Set up logging, then run the node `make` builds until SIGTERM or SIGINT."""
    from common.node import run, serve

    configure_logging()
    run(serve(make()))
    return EXIT_OK


LOGGING_SPEC_VARIABLE = "MEDLEDGER_LOGGING_SPEC"
"""A node's log spec at start (Fabric's FABRIC_LOGGING_SPEC), e.g. ``peer.endorser=debug:info``."""


def configure_logging() -> None:
    """Log to stderr, one line per record (stdout carries the READY line), at INFO or
    as `LOGGING_SPEC_VARIABLE` says (the operations endpoint's /logspec changes it later).

    Raises:
        ConfigError: the variable holds a malformed spec.
    """
    import logging

    from common.logspec import LOG_LEVELS, parse_logspec

    spec = os.environ.get(LOGGING_SPEC_VARIABLE, "").strip()
    try:
        parsed = parse_logspec(spec) if spec else None  # refused before anything starts
    except ConfigError as error:
        raise ConfigError(f"{LOGGING_SPEC_VARIABLE}: {error}") from None
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if parsed is not None:
        LOG_LEVELS.activate(parsed)


def run_crypto_generate(args: argparse.Namespace) -> int:
    from network.cryptogen import generate_crypto
    from network.spec import load_spec

    spec = load_spec(args.config)
    layout = generate_crypto(spec, args.output)
    print(
        f"crypto material for {len(spec.organizations)} organisations in {args.output}"
    )
    for line in describe_layout(layout):
        print(f"  {line}")
    return EXIT_OK


def describe_layout(layout: object) -> list[str]:
    """One line per organisation folder, if the layout says where they are."""
    folders = getattr(layout, "organization_dirs", None)
    if not isinstance(folders, dict):
        return []
    return [f"{name}: {path}" for name, path in sorted(folders.items())]


def print_help_of(parser: argparse.ArgumentParser) -> int:
    """A command without its subcommand: a usage error, so the help goes to stderr."""
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def package_version() -> str:
    try:
        return version("medledger")
    except PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
