"""`medledger peer purges`: the completed private data purges a peer has recorded.

An auditor (an admin of the peer's organisation) asks one peer for the purge records
of a channel, optionally of one chaincode namespace and collection, over the peer's
admin service (`peer.admin.list_purges`). Every peer of the channel keeps a record
of each purge, whether or not its organisation is a member of the collection. One
line per purge, oldest first, or a JSON array with `--json`.
"""

from __future__ import annotations

import argparse
import datetime
import json
from typing import Any

from network.cli import (
    add_peer_admin_arguments,
    add_peer_tls_arguments,
    peer_admin_target,
    report_refusal,
)

__all__ = ["add_purges_command", "run_peer_purges"]

EXIT_OK = 0


def add_purges_command(
    peer_commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Add `purges` under `medledger peer`."""
    purges = peer_commands.add_parser(
        "purges",
        help="list the private data purges a peer has completed on a channel",
        description=(
            "Ask a peer, as an admin of its organisation, for its records of the "
            "completed purges of private keys (PurgePrivateData) on a channel: "
            "namespace, collection, key hash, purging transaction and time."
        ),
    )
    add_peer_admin_arguments(purges)
    purges.add_argument("--mspid", required=True, help="the admin's MSP id")
    purges.add_argument("--channel", required=True, help="the channel")
    purges.add_argument("--namespace", default="", help="only this chaincode")
    purges.add_argument("--collection", default="", help="only this collection")
    purges.add_argument("--json", action="store_true", help="print a JSON array")
    add_peer_tls_arguments(purges)
    purges.set_defaults(handler=run_peer_purges)


def run_peer_purges(args: argparse.Namespace) -> int:
    import asyncio

    import grpc

    from common.msp import load_signing_identity
    from peer.admin import list_purges

    signer = load_signing_identity(args.identity, mspid=args.mspid)
    call = list_purges(
        peer_admin_target(args),
        signer=signer,
        channel_id=args.channel,
        namespace=args.namespace,
        collection=args.collection,
    )
    try:
        response = asyncio.run(call)
    except grpc.aio.AioRpcError as error:
        return report_refusal(error)
    records = [purge_document(purge) for purge in response.purges]
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        for line in purge_lines(records):
            print(line)
    return EXIT_OK


def purge_document(purge: Any) -> dict[str, object]:
    """One `admin_pb2.PurgeRecord` as plain JSON values (key hash in hex, time ISO)."""
    time = ""
    if purge.HasField("tx_timestamp"):
        seconds = purge.tx_timestamp.seconds + purge.tx_timestamp.nanos / 1e9
        time = datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat()
    return {
        "channel": purge.channel_id,
        "namespace": purge.namespace,
        "collection": purge.collection,
        "key_hash": purge.key_hash.hex(),
        "block": purge.block_number,
        "tx": purge.tx_number,
        "tx_id": purge.tx_id,
        "time": time,
        "private_state_removed": purge.private_state_removed,
        "hashed_state_removed": purge.hashed_state_removed,
        "store_entries_purged": purge.store_entries_purged,
    }


def purge_lines(records: list[dict[str, object]]) -> list[str]:
    """One key=value line per purge (the same keys as the purge log line)."""
    if not records:
        return ["no purges recorded"]
    return [
        f"channel={r['channel']} ns={r['namespace']} collection={r['collection']} "
        f"key_hash={r['key_hash']} block={r['block']} tx={r['tx']} "
        f"tx_id={r['tx_id']} time={r['time'] or '-'} "
        f"store_entries_purged={r['store_entries_purged']}"
        for r in records
    ]
