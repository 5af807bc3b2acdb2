"""`medledger channel list|getinfo|fetch` against an in-process orderer and peer over TLS.

Method: one network for the module — a solo orderer and Hospital A's peer0, both
serving TLS, the peer joined to medical-records, and one transaction ordered so the
newest block (1) is not the config block (0). The console command runs in a worker
thread (it starts its own event loop) with real MSP folders; outcomes are read from
its exit status, stdout/stderr and the files it writes, and compared with the peer's
own ledger. One written block is also decoded by the official Fabric protos in a
child process (they cannot share a process with ours).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from common.protoutil import block_header_hash
from common.tls import TlsFiles
from network.ports import free_ports
from peer.admin import AdminTarget, join_channel
from peer.node import PeerNode
from protos.common import common_pb2, configtx_pb2
from tests.integration.peer.lifecycle_fixtures import medledger
from tests.support.orderer import broadcast, running_orderer
from tests.support.orderer import open_channel as open_orderer_channel
from tests.support.peer import (
    CHANNEL,
    HOSPITAL_A,
    HOSPITAL_B,
    PeerMaterial,
    asset_definition,
    build_peer_material,
    definition_envelope,
    running_peer,
    wait_for_height,
    write_peer_yaml,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Network:
    material: PeerMaterial
    orderer: str
    peer: str
    node: PeerNode
    folder: Path

    def identity(self, mspid: str = HOSPITAL_A, name: str = "Admin") -> list[str]:
        msp_dir = self.material.orderer.user(mspid, name).msp_dir
        return ["--identity", str(msp_dir), "--mspid", mspid]

    def at_peer(self, mspid: str = HOSPITAL_A, name: str = "Admin") -> list[str]:
        tls_ca = str(self.material.tls_ca(HOSPITAL_A))
        return ["--peer", self.peer, "--tls-ca", tls_ca, *self.identity(mspid, name)]

    def at_orderer(self) -> list[str]:
        tls_ca = str(self.material.orderer.orderer.tls_ca)
        return [
            *("--orderer", self.orderer, "--orderer-tls-ca", tls_ca),
            *self.identity(HOSPITAL_A, "dr-lee"),
        ]

    def stored(self, number: int) -> bytes:
        store = self.node.channels.require(CHANNEL).ledger.block_store
        return store.block_bytes(number)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def network(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Network]:
    folder = tmp_path_factory.mktemp("channel-cli")
    material = build_peer_material(folder / "material")
    async with running_orderer(material.orderer, folder / "orderer", tls=True) as (
        _,
        orderer,
    ):
        config = write_peer_yaml(
            folder / "a" / "peer.yaml",
            material,
            HOSPITAL_A,
            storage=folder / "a" / "data",
            orderer_address=orderer["grpc"],
            tls=True,
        )
        async with running_peer(config) as (node, addresses):
            await join_channel(
                AdminTarget(
                    address=addresses["grpc"],
                    tls=TlsFiles(root_cas=(material.tls_ca(HOSPITAL_A),)),
                ),
                signer=material.user(HOSPITAL_A, "Admin"),
                genesis_block=material.genesis.SerializeToString(),
            )
            envelope = definition_envelope(
                material, asset_definition(), [HOSPITAL_A, HOSPITAL_B]
            )
            async with open_orderer_channel(orderer["grpc"], material.orderer) as link:
                [answer] = await broadcast(link, [envelope])
            assert answer.status == common_pb2.SUCCESS, answer.info
            await wait_for_height(node, 2)
            yield Network(material, orderer["grpc"], addresses["grpc"], node, folder)


async def test_list_shows_the_joined_channel(
    network: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = await medledger(capsys, "channel", "list", *network.at_peer())
    assert (status, out) == (0, f"Channels peers has joined: \n{CHANNEL}\n"), err
    status, out, err = await medledger(
        capsys, "channel", "list", "--json", *network.at_peer(name="dr-lee")
    )
    assert (status, json.loads(out)) == (0, {"channels": [CHANNEL]}), err


async def test_list_refuses_an_identity_of_another_organisation(
    network: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = await medledger(
        capsys, "channel", "list", *network.at_peer(HOSPITAL_B)
    )
    assert (status, out) == (1, "")
    refused = f"peer {network.peer} refused GetChannels signed by {HOSPITAL_B}: "
    assert err.startswith(f"medledger: error: {refused}")
    assert "access denied" in err
    assert err.count("\n") == 1


async def test_getinfo_reports_the_peers_height_and_hashes(
    network: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = [common_pb2.Block.FromString(network.stored(number)) for number in (0, 1)]
    expected = {
        "height": 2,
        "currentBlockHash": block_header_hash(blocks[1].header).hex(),
        "previousBlockHash": block_header_hash(blocks[0].header).hex(),
    }
    reader = network.at_peer(name="dr-lee")
    status, out, err = await medledger(
        capsys, "channel", "getinfo", "-c", CHANNEL, "--json", *reader
    )
    assert (status, json.loads(out)) == (0, expected), err
    status, out, _ = await medledger(
        capsys, "channel", "getinfo", "--channel", CHANNEL, *reader
    )
    prefix = "Blockchain info: "
    assert out.startswith(prefix)
    assert json.loads(out.removeprefix(prefix)) == expected


@pytest.mark.parametrize("source", ["orderer", "peer"])
async def test_fetch_writes_the_named_blocks(
    network: Network, capsys: pytest.CaptureFixture[str], source: str
) -> None:
    where = network.at_orderer() if source == "orderer" else network.at_peer()
    folder = network.folder / f"fetched-{source}"
    folder.mkdir()
    numbers = {"newest": 1, "oldest": 0, "config": 0, "1": 1, "0": 0}
    for spec, number in numbers.items():
        output = folder / f"{spec}.block"
        status, _, err = await medledger(
            capsys, "channel", "fetch", spec, str(output), "-c", CHANNEL, *where
        )
        assert (status, err) == (0, f"Received block: {number}\n")
        block = common_pb2.Block.FromString(output.read_bytes())
        assert block.header.number == number
        if source == "peer":
            assert output.read_bytes() == network.stored(number)
        else:
            assert (
                block.header
                == common_pb2.Block.FromString(network.stored(number)).header
            )
    config = common_pb2.Block.FromString((folder / "config.block").read_bytes())
    envelope = common_pb2.Envelope.FromString(config.data.data[0])
    payload = common_pb2.Payload.FromString(envelope.payload)
    header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    assert (header.type, header.channel_id) == (common_pb2.CONFIG, CHANNEL)
    config_envelope = configtx_pb2.ConfigEnvelope.FromString(payload.data)
    assert "Application" in config_envelope.config.channel_group.groups


async def test_fetch_without_output_file_uses_fabrics_default_name(
    network: Network,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(network.folder)
    status, _, err = await medledger(
        capsys, "channel", "fetch", "config", "-c", CHANNEL, *network.at_peer()
    )
    assert status == 0, err
    written = network.folder / f"{CHANNEL}_config.block"
    assert written.read_bytes() == network.stored(0)


FABRIC_DECODER = """
import sys
from fabric_protos.common import common_pb2, configtx_pb2

block = common_pb2.Block.FromString(open(sys.argv[1], "rb").read())
envelope = common_pb2.Envelope.FromString(block.data.data[0])
payload = common_pb2.Payload.FromString(envelope.payload)
header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
config = configtx_pb2.ConfigEnvelope.FromString(payload.data)
print(block.header.number, common_pb2.HeaderType.Name(header.type),
      sorted(config.config.channel_group.groups))
"""


async def test_a_fetched_config_block_decodes_with_fabrics_protos(
    network: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    output = network.folder / "for-fabric.block"
    status, _, err = await medledger(
        capsys,
        "channel",
        "fetch",
        "config",
        str(output),
        "-c",
        CHANNEL,
        *network.at_orderer(),
    )
    assert status == 0, err
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", FABRIC_DECODER, str(output)],
        capture_output=True,
        text=True,
        check=False,
    )
    if "No module named 'fabric_protos'" in result.stderr:
        pytest.skip("the official fabric_protos package is not installed")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(maxsplit=2)[:2] == ["0", "CONFIG"]
    assert "'Application'" in result.stdout


async def test_fetch_json_decodes_the_block_layer_by_layer(
    network: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    output = network.folder / "json-newest.block"
    status, out, err = await medledger(
        capsys,
        "channel",
        "fetch",
        "newest",
        str(output),
        "-c",
        CHANNEL,
        "--json",
        "-",
        *network.at_peer(),
    )
    assert status == 0, err
    document = json.loads(out)
    assert document["header"]["number"] == "1"
    payload = document["data"]["data"][0]["payload"]
    assert (
        payload["header"]["channel_header"]["type"] == common_pb2.ENDORSER_TRANSACTION
    )
    assert payload["header"]["signature_header"]["creator"]["mspid"] == HOSPITAL_A
    action = payload["data"]["actions"][0]["payload"]["action"]
    results = action["proposal_response_payload"]["extension"]["results"]
    assert results["ns_rwset"][0]["namespace"] == "_lifecycle"
    assert document["metadata"]["metadata"][2] == ["VALID"]
    signatures = document["metadata"]["metadata"][0]
    assert signatures["value"]["last_config"] == {"index": "0"}
    json_file = network.folder / "config.json"
    status, _, err = await medledger(
        capsys,
        "channel",
        "fetch",
        "config",
        str(output),
        "-c",
        CHANNEL,
        "--json",
        str(json_file),
        *network.at_peer(),
    )
    assert status == 0, err
    config = json.loads(json_file.read_text())["data"]["data"][0]["payload"]["data"]
    organisation = config["config"]["channel_group"]["groups"]["Application"]["groups"][
        HOSPITAL_A
    ]
    assert organisation["values"]["MSP"]["value"]["config"]["name"] == HOSPITAL_A
    readers = organisation["policies"]["Readers"]["policy"]
    assert readers["type"] == 1  # SIGNATURE
    principals = [item["principal"] for item in readers["value"]["identities"]]
    assert {"msp_identifier": HOSPITAL_A, "role": "CLIENT"} in principals


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fetch", "first", "x.block"], "bad block 'first': expected newest, oldest"),
        (["fetch", "1.5", "x.block"], "bad block '1.5'"),
        (["fetch", "7", "x.block"], "there is no block 7 yet (the newest is 1)"),
        (
            ["getinfo"],
            "refused GetChainInfo signed by HospitalAMSP: channel 'elsewhere' not found",
        ),
        (["fetch", "newest", "x.block"], "the node has no such channel (NOT_FOUND)"),
        (["fetch", "newest", "missing/x.block"], "cannot write missing/x.block"),
    ],
)
async def test_bad_input_is_a_one_line_error(
    network: Network,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(network.folder)
    channel = (
        "elsewhere" if "elsewhere" in message or "such channel" in message else CHANNEL
    )
    status, out, err = await medledger(
        capsys, "channel", *argv, "-c", channel, *network.at_peer()
    )
    assert (status, out) == (1, "")
    assert err.startswith("medledger: error: "), err
    assert message in err, err
    assert err.count("\n") == 1


async def test_an_unreachable_peer_is_a_one_line_error(
    network: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    [port] = free_ports(1)
    status, _, err = await medledger(
        capsys,
        "channel",
        "list",
        "--peer",
        f"127.0.0.1:{port}",
        *network.identity(),
        "--timeout",
        "5",
    )
    assert status == 1
    assert err.startswith(f"medledger: error: peer 127.0.0.1:{port}: UNAVAILABLE")
    assert err.count("\n") == 1
