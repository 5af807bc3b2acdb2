"""`medledger orderer channel join|list|info|remove` against a real orderer.

Method: an in-process orderer whose admin listener wants mutual TLS; the command line
(`network.cli.main`) runs in a worker thread with its own event loop, as the console
script would, and each step checks the exit status and the exact osnadmin-style
output; refusals and unreachable orderers must be one line on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from network.cli import main
from network.orderer_material import (
    HOSPITAL,
    ORDERING,
    OrdererMaterial,
    write_orderer_yaml,
)
from orderer.config import load_orderer_config
from orderer.node import OrdererNode

API = "/participation/v1/channels"


@dataclass(frozen=True)
class Outcome:
    status: int
    out: str
    err: str


async def run_cli(capsys: pytest.CaptureFixture[str], argv: Sequence[str]) -> Outcome:
    """`medledger ARGV` in a worker thread (it runs its own event loop)."""
    status = await asyncio.to_thread(main, list(argv))
    captured = capsys.readouterr()
    return Outcome(status, captured.out, captured.err)


@contextlib.asynccontextmanager
async def admin_tls_orderer(
    material: OrdererMaterial, folder: Path, *, admin_tls: bool = True
) -> AsyncIterator[str]:
    """An orderer on 127.0.0.1:0 without channels; yields its admin address."""
    path = write_orderer_yaml(
        folder / "orderer.yaml",
        material,
        storage=folder / "storage",
        tls=False,
        admin_tls=admin_tls,
    )
    node = OrdererNode(load_orderer_config(path))
    addresses = await node.start()
    try:
        yield addresses["admin"]
    finally:
        await node.stop(5.0)


def tls_options(material: OrdererMaterial, *, ca_mspid: str = ORDERING) -> list[str]:
    """--ca-file of `ca_mspid`'s TLS CA, the client pair of the orderer org's admin."""
    admin = material.user(ORDERING, "Admin")
    ca = material.crypto.organization(ca_mspid).tlsca_cert
    return [
        "--ca-file",
        str(ca),
        "--client-cert",
        str(admin.tls_cert),
        "--client-key",
        str(admin.tls_key),
    ]


def channel_info(name: str, *, height: int = 1) -> dict[str, object]:
    return {
        "name": name,
        "url": f"{API}/{name}",
        "consensusRelation": "other",
        "status": "active",
        "height": height,
    }


def osnadmin_output(status: int, body: object | None = None) -> str:
    """What osnadmin prints: the status line, then the body indented with tabs."""
    text = f"Status: {status}\n"
    if body is not None:
        text += json.dumps(body, indent="\t") + "\n"
    return text


def assert_one_line_error(outcome: Outcome, *fragments: str) -> None:
    assert outcome.status == 1, outcome
    assert outcome.out == ""
    assert outcome.err.startswith("medledger: error: ")
    assert outcome.err.count("\n") == 1
    assert outcome.err.endswith("\n")
    for fragment in fragments:
        assert fragment in outcome.err


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A port bound but not listening, so connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


async def test_list_join_info_remove_over_mutual_tls(
    material: OrdererMaterial, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The osnadmin session: list, join, list, info, join again, remove, info."""
    name = material.channel
    async with admin_tls_orderer(material, tmp_path) as admin:
        target = ["-o", admin, *tls_options(material)]
        channel = ["-c", name]
        block = ["-b", str(material.genesis_file)]
        command = ["orderer", "channel"]
        empty = await run_cli(capsys, [*command, "list", *target])
        joined = await run_cli(capsys, [*command, "join", *target, *channel, *block])
        listed = await run_cli(capsys, [*command, "list", *target])
        info = await run_cli(capsys, [*command, "info", *target, *channel])
        listed_one = await run_cli(capsys, [*command, "list", *target, *channel])
        again = await run_cli(capsys, [*command, "join", *target, *channel, *block])
        removed = await run_cli(capsys, [*command, "remove", *target, *channel])
        gone = await run_cli(capsys, [*command, "info", *target, *channel])
        removed_again = await run_cli(capsys, [*command, "remove", *target, *channel])
        quiet = await run_cli(capsys, [*command, "list", *target, "--no-status"])

    assert empty == Outcome(
        0, osnadmin_output(200, {"systemChannel": None, "channels": None}), ""
    )
    assert joined == Outcome(0, osnadmin_output(201, channel_info(name)), "")
    listing = {
        "systemChannel": None,
        "channels": [{"name": name, "url": f"{API}/{name}"}],
    }
    assert listed == Outcome(0, osnadmin_output(200, listing), "")
    assert info == Outcome(0, osnadmin_output(200, channel_info(name)), "")
    assert listed_one == info
    assert_one_line_error(again, 'refused: Status: 405 {"error": "cannot join: ')
    assert removed == Outcome(0, osnadmin_output(204), "")
    assert_one_line_error(gone, 'Status: 404 {"error": ', name)
    assert_one_line_error(removed_again, 'Status: 404 {"error": "cannot remove: ')
    assert quiet == Outcome(
        0, json.dumps({"systemChannel": None, "channels": None}, indent="\t") + "\n", ""
    )
    assert not (tmp_path / "storage" / "channels" / name).exists()


async def test_refusals_and_bad_options_are_one_line(
    material: OrdererMaterial, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """TLS without a client pair, a CA that did not sign the orderer, a block of
    another channel, a file that is no block, half a pair: exit 1, one line each."""
    not_a_block = tmp_path / "not-a.block"
    not_a_block.write_bytes(b"\xff\xff not a block")
    command = ["orderer", "channel"]
    pair = tls_options(material)[2:]
    async with admin_tls_orderer(material, tmp_path) as admin:
        ca = ["--ca-file", tls_options(material)[1]]
        no_pair = await run_cli(capsys, [*command, "list", "-o", admin, *ca])
        wrong_ca = await run_cli(
            capsys,
            [*command, "list", "-o", admin, *tls_options(material, ca_mspid=HOSPITAL)],
        )
        target = ["-o", admin, *tls_options(material)]
        other_channel = await run_cli(
            capsys,
            [
                *command,
                "join",
                *target,
                "-c",
                "other",
                "-b",
                str(material.genesis_file),
            ],
        )
        bad_block = await run_cli(
            capsys,
            [*command, "join", *target, "-c", "records", "-b", str(not_a_block)],
        )
        no_ca = await run_cli(capsys, [*command, "list", "-o", admin, *pair])
        half = await run_cli(capsys, [*command, "list", *target[:-2]])
        still_empty = await run_cli(capsys, [*command, "list", *target])

    assert_one_line_error(no_pair, f"cannot reach orderer {admin}")
    assert_one_line_error(wrong_ca, f"cannot reach orderer {admin}", "certificate")
    assert_one_line_error(
        other_channel, "--channelID other does not match channel ID records"
    )
    assert_one_line_error(bad_block, f"{not_a_block}: not a config block")
    assert_one_line_error(no_ca, "--client-cert and --client-key need --ca-file")
    assert_one_line_error(half, "--client-cert and --client-key go together")
    assert still_empty.status == 0
    assert '"channels": null' in still_empty.out


async def test_plain_http_admin_listener(
    material: OrdererMaterial, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --ca-file the call is plain HTTP, as osnadmin's."""
    async with admin_tls_orderer(material, tmp_path, admin_tls=False) as admin:
        command = ["orderer", "channel"]
        block = ["-b", str(material.genesis_file)]
        joined = await run_cli(
            capsys, [*command, "join", "-o", admin, "-c", material.channel, *block]
        )
    assert joined == Outcome(
        0, osnadmin_output(201, channel_info(material.channel)), ""
    )


def test_console_script_unreachable_orderer_exits_1_without_traceback() -> None:
    """The installed entry point: a refused connection is one line and exit 1."""
    with refusing_port() as port:
        finished = subprocess.run(
            [
                sys.executable,
                "-m",
                "network.cli",
                "orderer",
                "channel",
                "list",
                "-o",
                f"127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert finished.returncode == 1
    assert finished.stdout == ""
    assert finished.stderr.startswith(
        f"medledger: error: cannot reach orderer 127.0.0.1:{port}: GET "
    )
    assert finished.stderr.count("\n") == 1
