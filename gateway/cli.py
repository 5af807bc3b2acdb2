"""The gateway's client subcommands of `medledger`: send transactions, follow events.

    medledger tx evaluate --gateway ADDR --msp DIR --mspid ID --channel C --chaincode CC FN ARGS…
    medledger tx submit   … [--transient k=v]… [--endorsing-orgs A,B] [--async]
    medledger events chaincode --gateway … --channel C --chaincode CC [--start-block N]
                               [--checkpoint FILE] [--count N]
    medledger events blocks    --gateway … --channel C [--start-block N] [--count N]

`tx` prints the transaction's result on stdout (UTF-8 text as is, other bytes as hex)
and, for submit, the transaction id, code and block on stderr. `events` prints one JSON
object per event or block. `network.cli` registers these with `add_commands`, next to
`medledger gateway start` (which it has with the other nodes' start commands); the
modules they need are imported only when a command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

__all__ = ["add_commands"]

EXIT_OK = 0
if TYPE_CHECKING:
    _Commands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def add_commands(commands: _Commands) -> None:
    """Add `tx` and `events` to the `medledger` command line."""
    _add_tx(commands)
    _add_events(commands)


def _add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gateway", required=True, help="the gateway's host:port")
    parser.add_argument(
        "--msp", type=Path, required=True, help="MSP folder (signcerts/, keystore/)"
    )
    parser.add_argument("--mspid", required=True, help="the MSP id of that identity")
    parser.add_argument("--channel", required=True, help="the channel name")
    parser.add_argument(
        "--tls-ca",
        type=Path,
        help="CA certificate of the gateway's TLS (else plaintext)",
    )
    parser.add_argument("--server-name", help="TLS name to expect from the gateway")


def _add_tx(commands: _Commands) -> None:
    tx = commands.add_parser("tx", help="evaluate or submit a transaction")
    subcommands = tx.add_subparsers(title="tx commands", metavar="COMMAND")
    tx.set_defaults(handler=lambda _args: _help(tx))
    for name, text in (
        ("evaluate", "run a transaction on one peer and print its result"),
        ("submit", "endorse, order and commit a transaction; print its result"),
    ):
        command = subcommands.add_parser(name, help=text, description=text)
        _add_connection_options(command)
        command.add_argument("--chaincode", required=True, help="the chaincode name")
        command.add_argument("--contract", help="a named contract within the chaincode")
        command.add_argument(
            "--transient",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="a transient (private) input; repeat for more",
        )
        command.add_argument(
            "--endorsing-orgs", default="", help="comma-separated MSP ids to endorse"
        )
        if name == "submit":
            command.add_argument(
                "--async",
                dest="no_wait",
                action="store_true",
                help="return once an orderer accepted it (do not wait for the commit)",
            )
        command.add_argument("function", help="the transaction function")
        command.add_argument("args", nargs="*", help="its arguments")
        command.set_defaults(handler=_run_tx, action=name)


def _add_events(commands: _Commands) -> None:
    events = commands.add_parser("events", help="follow chaincode or block events")
    subcommands = events.add_subparsers(title="event streams", metavar="STREAM")
    events.set_defaults(handler=lambda _args: _help(events))
    chaincode = subcommands.add_parser(
        "chaincode", help="events a chaincode emitted in valid transactions"
    )
    blocks = subcommands.add_parser(
        "blocks", help="committed blocks: transaction ids and validation codes"
    )
    for parser in (chaincode, blocks):
        _add_connection_options(parser)
        parser.add_argument(
            "--start-block", type=int, help="first block (default: the next commit)"
        )
        parser.add_argument(
            "--count", type=int, help="stop after this many events or blocks"
        )
    chaincode.add_argument("--chaincode", required=True, help="the chaincode name")
    chaincode.add_argument(
        "--checkpoint", type=Path, help="a checkpoint file to resume from and update"
    )
    chaincode.set_defaults(handler=_run_chaincode_events)
    blocks.set_defaults(handler=_run_block_events)


def _run_tx(args: argparse.Namespace) -> int:
    import asyncio

    return asyncio.run(_tx(args))


async def _tx(args: argparse.Namespace) -> int:
    from gateway.client import CommitError

    transient = _transient(args.transient)
    orgs = [org for org in args.endorsing_orgs.split(",") if org]
    async with _connect(args) as gateway:
        contract = gateway.network(args.channel).contract(args.chaincode, args.contract)
        if args.action == "evaluate":
            result = await contract.evaluate(
                args.function, *args.args, transient=transient, endorsing_orgs=orgs
            )
            _print_result(result)
            return EXIT_OK
        submitted = await contract.submit_async(
            args.function, *args.args, transient=transient, endorsing_orgs=orgs
        )
        _print_result(submitted.result)
        if args.no_wait:
            print(f"submitted {submitted.transaction_id}", file=sys.stderr)
            return EXIT_OK
        status = await submitted.status()
        print(
            f"committed {status.transaction_id} in block {status.block_number}: "
            f"{status.code_name}",
            file=sys.stderr,
        )
        if not status.successful:
            raise CommitError(status.transaction_id, status.code)
    return EXIT_OK


def _run_chaincode_events(args: argparse.Namespace) -> int:
    import asyncio

    return asyncio.run(_chaincode_events(args))


async def _chaincode_events(args: argparse.Namespace) -> int:
    from gateway.client import FileCheckpointer

    checkpointer = FileCheckpointer(args.checkpoint) if args.checkpoint else None
    printed = 0
    async with _connect(args) as gateway:
        events = gateway.network(args.channel).chaincode_events(
            args.chaincode, start_block=args.start_block, checkpoint=checkpointer
        )
        async for event in events:
            _print_json(
                {
                    "block": event.block_number,
                    "transaction_id": event.transaction_id,
                    "chaincode": event.chaincode_name,
                    "event": event.event_name,
                    "payload": _text(event.payload),
                }
            )
            if checkpointer is not None:
                checkpointer.checkpoint_transaction(
                    event.block_number, event.transaction_id
                )
            printed += 1
            if args.count is not None and printed >= args.count:
                break
    return EXIT_OK


def _run_block_events(args: argparse.Namespace) -> int:
    import asyncio

    return asyncio.run(_block_events(args))


async def _block_events(args: argparse.Namespace) -> int:
    from protos.peer.transaction_pb2 import TxValidationCode

    printed = 0
    async with _connect(args) as gateway:
        blocks = gateway.network(args.channel).filtered_block_events(
            start_block=args.start_block
        )
        async for block in blocks:
            _print_json(
                {
                    "block": block.number,
                    "transactions": [
                        {
                            "transaction_id": tx.txid,
                            "code": TxValidationCode.Name(tx.tx_validation_code),
                        }
                        for tx in block.filtered_transactions
                    ],
                }
            )
            printed += 1
            if args.count is not None and printed >= args.count:
                break
    return EXIT_OK


def _connect(args: argparse.Namespace) -> Any:
    from gateway.client import Gateway, identity_from_msp, signer_from_msp

    return Gateway.connect(
        args.gateway,
        identity_from_msp(args.msp, args.mspid),
        signer_from_msp(args.msp, args.mspid),
        tls=args.tls_ca,
        server_name=args.server_name,
    )


def _transient(items: list[str]) -> dict[str, bytes]:
    transient: dict[str, bytes] = {}
    for item in items:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise SystemExit(
                f"medledger: error: --transient expects KEY=VALUE, got {item!r}"
            )
        transient[key] = value.encode()
    return transient


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.hex()


def _print_result(result: bytes) -> None:
    print(_text(result))


def _print_json(document: dict[str, Any]) -> None:
    print(json.dumps(document), flush=True)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)  # a usage error, as for every command group
    return 2
