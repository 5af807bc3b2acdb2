"""`medledger channel list|getinfo|fetch` without a network: block specs, last-config
metadata, the getinfo object, the JSON decoding of a block, bad input caught before
any node is dialled, and the channel flag every `channel` command takes.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from network.block_json import block_document
from network.channel_cli import (
    BlockSpec,
    ChannelQueryError,
    chain_info_document,
    last_config_number,
    parse_block_spec,
)
from network.cli import build_parser, main
from protos.common import common_pb2, ledger_pb2
from protos.peer import transaction_pb2


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("newest", BlockSpec("newest")),
        ("oldest", BlockSpec("oldest")),
        ("config", BlockSpec("config")),
        ("0", BlockSpec("number", 0)),
        ("18446744073709551615", BlockSpec("number", 2**64 - 1)),
    ],
)
def test_block_specs_parse(text: str, spec: BlockSpec) -> None:
    assert parse_block_spec(text) == spec


@pytest.mark.parametrize("text", ["", "latest", "-1", "1.0", "0x10", "١", "2" * 20])
def test_other_block_specs_are_refused(text: str) -> None:
    with pytest.raises(ChannelQueryError, match="expected newest, oldest, config"):
        parse_block_spec(text)


def block_with_metadata(number: int, entries: dict[int, bytes]) -> common_pb2.Block:
    block = common_pb2.Block(header=common_pb2.BlockHeader(number=number))
    slots = [b""] * 5
    for index, value in entries.items():
        slots[index] = common_pb2.Metadata(value=value).SerializeToString()
    block.metadata.metadata.extend(slots)
    return block


def test_last_config_is_read_from_the_signatures_metadata_first() -> None:
    orderer = common_pb2.OrdererBlockMetadata(
        last_config=common_pb2.LastConfig(index=4)
    ).SerializeToString()
    stale = common_pb2.LastConfig(index=2).SerializeToString()
    block = block_with_metadata(
        9, {common_pb2.SIGNATURES: orderer, common_pb2.LAST_CONFIG: stale}
    )
    assert last_config_number(block) == 4


def test_last_config_falls_back_to_the_last_config_entry() -> None:
    entry = common_pb2.LastConfig(index=3).SerializeToString()
    assert (
        last_config_number(block_with_metadata(7, {common_pb2.LAST_CONFIG: entry})) == 3
    )


def test_a_genesis_block_without_metadata_is_its_own_config() -> None:
    assert last_config_number(block_with_metadata(0, {})) == 0


def test_a_later_block_without_last_config_metadata_is_an_error() -> None:
    with pytest.raises(ChannelQueryError, match="block 5 names no last config"):
        last_config_number(block_with_metadata(5, {}))


def test_undecodable_metadata_is_an_error() -> None:
    block = common_pb2.Block(header=common_pb2.BlockHeader(number=2))
    block.metadata.metadata.append(b"\xff\xff")
    with pytest.raises(ChannelQueryError, match="does not decode"):
        last_config_number(block)


def test_chain_info_hashes_are_hex() -> None:
    info = ledger_pb2.BlockchainInfo(
        height=3, currentBlockHash=b"\x01\xab", previousBlockHash=b""
    )
    assert chain_info_document(info) == {
        "height": 3,
        "currentBlockHash": "01ab",
        "previousBlockHash": "",
    }


def test_block_json_keeps_undecodable_bytes_as_base64() -> None:
    block = block_with_metadata(1, {})
    block.data.data.append(b"\xff\x01")
    block.metadata.metadata[common_pb2.TRANSACTIONS_FILTER] = bytes(
        [transaction_pb2.VALID, transaction_pb2.MVCC_READ_CONFLICT]
    )
    document = block_document(block)
    assert document["header"] == {
        "number": "1",
        "previous_hash": "",
        "data_hash": "",
    }
    assert document["data"] == {"data": [base64.b64encode(b"\xff\x01").decode()]}
    metadata = document["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["metadata"][common_pb2.TRANSACTIONS_FILTER] == [
        "VALID",
        "MVCC_READ_CONFLICT",
    ]


def test_a_bad_block_number_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        [
            *("channel", "fetch", "12x", str(tmp_path / "b.block"), "-c", "ch"),
            *("--peer", "127.0.0.1:1", "--identity", str(tmp_path), "--mspid", "M"),
        ]
    )
    out, err = capsys.readouterr()
    assert (status, out) == (1, "")
    assert err == (
        "medledger: error: bad block '12x': expected newest, oldest, config or a "
        "block number\n"
    )


def test_a_missing_identity_folder_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        [
            *("channel", "list", "--peer", "127.0.0.1:1"),
            *("--identity", str(tmp_path / "nowhere"), "--mspid", "M"),
        ]
    )
    out, err = capsys.readouterr()
    assert (status, out) == (1, "")
    assert err.startswith("medledger: error: ")
    assert "signcerts" in err
    assert err.count("\n") == 1


CHANNEL_COMMANDS = {
    "getinfo": ["--peer", "p:1", "--identity", "msp", "--mspid", "M"],
    "fetch": ["newest", "--peer", "p:1", "--identity", "msp", "--mspid", "M"],
    "config": ["--orderer", "o:1", "--identity", "msp", "--mspid", "M"],
    "update": ["--orderer", "o:1", "--config", "u.json", "--sign", "msp:M"],
    "add-org": ["--orderer", "o:1", "--org-group", "g.json", "--sign", "msp:M"],
}


@pytest.mark.parametrize("command", sorted(CHANNEL_COMMANDS))
@pytest.mark.parametrize("flag", ["-c", "--channel"])
def test_every_channel_command_takes_fabrics_channel_flag(
    command: str, flag: str
) -> None:
    args = build_parser().parse_args(
        ["channel", command, flag, "ch", *CHANNEL_COMMANDS[command]]
    )
    assert args.channel == "ch"


@pytest.mark.parametrize("command", ["config", "update", "add-org"])
def test_the_first_channel_flag_stays_a_hidden_alias(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = build_parser()
    args = parser.parse_args(
        ["channel", command, "-C", "ch", *CHANNEL_COMMANDS[command]]
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["channel", command, "--help"])
    assert args.channel == "ch"
    help_text = capsys.readouterr().out
    assert "-c CHANNEL, --channel CHANNEL" in help_text
    assert "-C" not in help_text
