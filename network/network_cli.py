"""`medledger network up|down|status|logs|generate|deploy`: the local network's commands.

`add_network_commands` adds them to the console command's parser (`network.cli`);
each handler imports its module only when it runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from network.cli import add_command_group

__all__ = ["add_network_commands"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2

_EXAMPLE = Path(__file__).parent / "examples" / "hospital-consortium.yaml"
_WORKDIR = Path(".medledger")


def add_network_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    network_commands = add_command_group(
        commands,
        "network",
        summary="run a whole consortium on this machine, or generate one",
    )
    _add_up(network_commands)
    _add_down(network_commands)
    _add_status(network_commands)
    _add_logs(network_commands)
    _add_generate(network_commands)
    _add_deploy(network_commands)


def _add_up(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = commands.add_parser(
        "up",
        help="start (or resume) every node of a consortium spec on this machine",
        description=(
            "Generate crypto material, genesis blocks and node configs in the work "
            "directory (once), start etcd, orderers, peers, gateways and chaincode, "
            "join the channels, commit the chaincode definitions and print the "
            "endpoints. Run again after 'down' to resume the same ledgers."
        ),
    )
    up.add_argument(
        "-c",
        "--config",
        type=Path,
        default=_EXAMPLE,
        help="consortium YAML file (default: the hospital example)",
    )
    _add_workdir(up)
    up.add_argument(
        "--fresh", action="store_true", help="stop and delete the work directory first"
    )
    up.add_argument(
        "--solo",
        action="store_true",
        help="order etcd channels with solo (decided at the first up of a work directory)",
    )
    up.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds each node has to print READY (default 60)",
    )
    up.set_defaults(handler=_run_up)


def _add_down(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    down = commands.add_parser(
        "down",
        help="stop every node of the local network (the ledgers stay)",
        description=(
            "SIGTERM every node (gateways, peers, chaincode servers, orderers, etcd, in "
            "that order), SIGKILL what has not stopped after a grace period."
        ),
    )
    _add_workdir(down)
    down.set_defaults(handler=_run_down)


def _add_status(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = commands.add_parser(
        "status",
        help="which nodes run, where, and their channels' heights",
    )
    _add_workdir(status)
    status.set_defaults(handler=_run_status)


def _add_logs(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    logs = commands.add_parser(
        "logs",
        help="print a node's log (or the end of every log)",
        description=(
            "With NODE (a full name such as peer0.hospital-a.example.com, or a unique "
            "part of one), print its log; without, the last lines of every log."
        ),
    )
    logs.add_argument("node", nargs="?", metavar="NODE", help="the node")
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep printing what is appended"
    )
    logs.add_argument(
        "-n",
        "--lines",
        type=int,
        default=20,
        help="lines per log without NODE (default 20)",
    )
    _add_workdir(logs)
    logs.set_defaults(handler=_run_logs)


def _add_generate(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    generate = commands.add_parser(
        "generate",
        help="write one folder per node for a deployment across hosts",
        description=(
            "Write, for every orderer, peer and gateway, a folder with its YAML config, "
            "MSP and TLS material and genesis blocks, with relative paths, plus a "
            "README.txt saying how to start it; copy each folder to its host."
        ),
    )
    generate.add_argument(
        "-c",
        "--config",
        type=Path,
        default=_EXAMPLE,
        help="consortium YAML file (default: the hospital example)",
    )
    generate.add_argument(
        "-o", "--output", type=Path, required=True, help="output folder"
    )
    generate.set_defaults(handler=_run_generate)


def _add_deploy(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    deploy = commands.add_parser(
        "deploy",
        help="join the nodes of a generated folder to their channels, deploy chaincode",
        description=(
            "Once every node of `network generate`'s output folder runs on its host: "
            "wait until the orderers and peers answer, join those that have not joined "
            "their channels, and deploy each chaincode not yet committed at the spec's "
            "sequence (install, approve per organisation, commit, init); then check "
            "that every gateway answers for its channels. Run it on the "
            "host holding the folder (the admins' material); again, it changes nothing."
        ),
    )
    deploy.add_argument(
        "--generated", type=Path, required=True, help="output folder of `generate`"
    )
    deploy.add_argument("--channel", help="only this channel (default: every one)")
    deploy.add_argument("--chaincode", help="only this chaincode (default: every one)")
    deploy.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        dest="timeout_s",
        help="seconds the nodes, then the gateways, have to answer (default 60)",
    )
    deploy.add_argument(
        "--no-gateways",
        action="store_true",
        help="do not check at the end that every gateway answers (they start later)",
    )
    deploy.set_defaults(handler=_run_deploy)


def _add_workdir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workdir",
        type=Path,
        default=_WORKDIR,
        help="the network's work directory (default ./.medledger)",
    )


def _run_up(args: argparse.Namespace) -> int:
    from network.up import UpOptions, up

    options = UpOptions(
        spec_path=args.config,
        workdir=args.workdir,
        fresh=args.fresh,
        solo=args.solo,
        ready_timeout_s=args.timeout,
    )
    up(options, progress=_print)
    return EXIT_OK


def _run_down(args: argparse.Namespace) -> int:
    from network.up import down

    down(args.workdir, progress=_print)
    return EXIT_OK


def _run_status(args: argparse.Namespace) -> int:
    import asyncio

    from network.status import network_status, status_lines

    state, statuses = asyncio.run(network_status(args.workdir.absolute()))
    for line in status_lines(state, statuses):
        _print(line)
    return EXIT_OK


def _run_logs(args: argparse.Namespace) -> int:
    from network.launcher import NetworkState, log_tail
    from network.status import find_logs, follow

    state = NetworkState.load(args.workdir.absolute())
    logs = find_logs(state, args.node)
    if not logs:
        _print(f"no network in {args.workdir}")
        return EXIT_OK
    if args.node is None and not args.follow:
        for name, path in logs:
            _print(f"==> {name} ({path}) <==")
            _print(log_tail(path, lines=args.lines))
        return EXIT_OK
    if args.follow:
        if len(logs) > 1:
            _print("name one NODE to follow its log", file=sys.stderr)
            return EXIT_USAGE
        follow(logs[0][1])
        return EXIT_OK
    sys.stdout.write(logs[0][1].read_text(errors="replace"))
    return EXIT_OK


def _run_generate(args: argparse.Namespace) -> int:
    from network.generate import generate

    generate(args.config, args.output, progress=_print)
    return EXIT_OK


def _run_deploy(args: argparse.Namespace) -> int:
    from network.deploy_generated import DeployOptions, run_deploy

    fields = ("generated", "channel", "chaincode", "timeout_s", "no_gateways")
    run_deploy(DeployOptions(**{f: getattr(args, f) for f in fields}), _print)
    return EXIT_OK


def _print(line: str, *, file: TextIO | None = None) -> None:
    print(line, file=file or sys.stdout, flush=True)
