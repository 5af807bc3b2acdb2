"""Private data with official Fabric software at both ends: the Node gateway client
(`@hyperledger/fabric-gateway` 1.11.0) and a Node chaincode (`fabric-contract-api`
2.5.8) in the style of Fabric's private-data sample, on our peers, gateways and orderer.

Method: a solo orderer, peer0 and a gateway of Hospitals A, B and C start in this
event loop, the peers knowing each other for dissemination. The chaincode
(tests/interop/chaincode-node/private.js) runs as a service, one
`fabric-chaincode-node server` per hospital, and is deployed through `_lifecycle`:
each hospital installs a ccaas package naming its own server and approves the
definition (policy any of A or B, collection `assetCollection` of A and B with
requiredPeerCount 1, from Fabric's collection JSON), then one commit. Then
tests/interop/node/private.js runs the story once, as dr-lee (A), dr-garcia (B) and
dr-svensson (C) through their own hospital's gateway, in two parts: create → member
reads → non-member refusals and hash → blocks with private data per hospital; then,
after pytest looked at every disk, transfer → purge → every block. Each test checks
one step, against the client's view and against the peers' ledgers and files.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from common.channelconfig import ChannelConfig
from network.lifecycle_cli import collections_from_json
from network.lifecycle_client import Definition
from network.ports import free_ports
from peer.ledger.ledger import ChannelLedger
from peer.ledger.pvtdata import list_purges
from peer.node import PeerNode
from protos.peer.transaction_pb2 import TxValidationCode
from tests.integration.gateway.network import running_gateway, write_gateway_yaml
from tests.support.ccaas import (
    OrgInstall,
    ccaas_package,
    deploy_ccaas,
    first_definition,
)
from tests.support.orderer import running_orderer
from tests.support.peer import (
    CHANNEL,
    HOSPITAL_A,
    HOSPITAL_B,
    HOSPITAL_C,
    PeerMaterial,
    build_peer_material,
    running_peer,
    write_peer_yaml,
)

pytestmark = [pytest.mark.interop, pytest.mark.asyncio(loop_scope="module")]

CHAINCODE_DIR = Path(__file__).parent / "chaincode-node"
MODULE_DIR = CHAINCODE_DIR / "private"
COLLECTIONS = MODULE_DIR / "collections_config.json"
NAME = "private"
SHARED = "assetCollection"
ASSET = "asset-7"
MARKER = "MARKER-private-node-4b9e1d"
HOSPITALS = {"A": HOSPITAL_A, "B": HOSPITAL_B, "C": HOSPITAL_C}
USERS = {"A": "dr-lee", "B": "dr-garcia", "C": "dr-svensson"}
NODE_TIMEOUT_S = 90
GRPC_UNKNOWN = 2
GRPC_ABORTED = 10


@dataclass
class PrivateNetwork:
    material: PeerMaterial
    folder: Path
    nodes: dict[str, PeerNode]
    gateways: dict[str, str]

    def ledger(self, org: str) -> ChannelLedger:
        return self.nodes[org].channels.require(CHANNEL).ledger

    def storage(self, org: str) -> Path:
        return self.folder / org / "data"


@contextlib.asynccontextmanager
async def chaincode_server(
    address: str, package_id: str, mspid: str, log: Path
) -> AsyncIterator[None]:
    """`fabric-chaincode-node server` for one hospital's peer (its MSP id in the env)."""
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            str(CHAINCODE_DIR / "node_modules" / ".bin" / "fabric-chaincode-node"),
            "server",
            "--chaincode-address",
            address,
            "--chaincode-id",
            package_id,
            "--module-path",
            str(MODULE_DIR),
            cwd=CHAINCODE_DIR,
            stdout=output,
            stderr=output,
            env={"CORE_PEER_LOCALMSPID": mspid, "PATH": os.environ.get("PATH", "")},
        )
    try:
        yield
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)


def peer_yaml(
    material: PeerMaterial, folder: Path, org: str, orderer: str, listen: dict[str, str]
) -> Path:
    """peer0 of `org` on its fixed port, pushing private data to the other two."""
    mspid = HOSPITALS[org]
    genesis = ChannelConfig.from_block(material.genesis)
    anchors = {
        str(anchor): listen[other]
        for other, other_mspid in HOSPITALS.items()
        for anchor in genesis.application_orgs[other_mspid].anchor_peers
    }
    return write_peer_yaml(
        folder / org / "peer.yaml",
        material,
        mspid,
        storage=folder / org / "data",
        orderer_address=orderer,
        extra={
            "listen": listen[org],
            "chaincodes": {"startup_timeout": "20s", "execute_timeout": "10s"},
            "gossip": {
                "peers": [
                    {"address": address, "mspid": HOSPITALS[other]}
                    for other, address in listen.items()
                    if other != org
                ],
                "address_overrides": anchors,
                "push_timeout": "5s",
                "pull_timeout": "2s",
                "pull_attempts": 2,
                "reconcile_interval": "200ms",
            },
        },
    )


def definition() -> Definition:
    """Policy any of A or B, with the collections of Fabric's collection JSON."""
    return first_definition(
        NAME,
        collections=collections_from_json(
            COLLECTIONS.read_text(), source=str(COLLECTIONS)
        ),
    )


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> PeerMaterial:
    return build_peer_material(tmp_path_factory.mktemp("node-private-material"))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def network(
    material: PeerMaterial,
    chaincode_node: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[PrivateNetwork]:
    folder = tmp_path_factory.mktemp("node-private")
    ports = iter(free_ports(2 * len(HOSPITALS)))
    listen = {org: f"127.0.0.1:{next(ports)}" for org in HOSPITALS}
    servers = {org: f"127.0.0.1:{next(ports)}" for org in HOSPITALS}
    packages = {
        org: ccaas_package(servers[org], folder / "packages" / org, "private_1.0")
        for org in HOSPITALS
    }
    async with contextlib.AsyncExitStack() as stack:
        _, orderer = await stack.enter_async_context(
            running_orderer(material.orderer, folder / "orderer")
        )
        for org, mspid in HOSPITALS.items():
            await stack.enter_async_context(
                chaincode_server(
                    servers[org],
                    packages[org][1],
                    mspid,
                    folder / f"chaincode-{org}.log",
                )
            )
        nodes = {}
        for org in HOSPITALS:
            config = peer_yaml(material, folder, org, orderer["grpc"], listen)
            nodes[org], _ = await stack.enter_async_context(running_peer(config))
            await nodes[org].join(material.genesis)
        orgs = [
            OrgInstall(mspid, listen[org], packages[org])
            for org, mspid in HOSPITALS.items()
        ]
        await deploy_ccaas(
            material, orderer["grpc"], orgs, definition(), list(nodes.values())
        )
        gateways = {}
        for org, mspid in HOSPITALS.items():
            config = write_gateway_yaml(
                folder / org / "gateway.yaml",
                material,
                peers=[(listen[other], HOSPITALS[other]) for other in HOSPITALS],
                orderer_address=orderer["grpc"],
                mspid=mspid,
            )
            _, gateways[org] = await stack.enter_async_context(running_gateway(config))
        yield PrivateNetwork(material, folder, nodes, gateways)


FIRST_PART = ("create", "memberReads", "nonMember", "privateBlocks")
SECOND_PART = ("transfer", "purge", "blocks")


@dataclass(frozen=True)
class Story:
    """What the Node client saw per step, and which hospitals' disks held the marker
    between the two parts (after the non-member's attempts, before the transfer)."""

    steps: dict[str, Any]
    held_midway: dict[str, bool]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def story(node_packages: Path, network: PrivateNetwork) -> Story:
    orgs = {}
    for org, mspid in HOSPITALS.items():
        user = network.material.orderer.user(mspid, USERS[org])
        orgs[org] = {
            "address": network.gateways[org],
            "mspId": mspid,
            "certPem": user.signcert.read_text(),
            "keyPem": user.private_key.read_text(),
        }
    request: dict[str, Any] = {
        "channel": CHANNEL,
        "chaincode": NAME,
        "assetID": ASSET,
        "marker": MARKER,
        "orgs": orgs,
    }
    first = await run_client(node_packages, request | {"steps": FIRST_PART})
    held = {
        org: bool(_holding(network.storage(org), MARKER.encode())) for org in HOSPITALS
    }
    held["orderer"] = bool(_holding(network.folder / "orderer", MARKER.encode()))
    second = await run_client(
        node_packages, request | {"steps": SECOND_PART, "facts": first["facts"]}
    )
    return Story(first["results"] | second["results"], held)


async def run_client(folder: Path, request: dict[str, Any]) -> dict[str, Any]:
    """Run private.js with `request`; its document, every step completed."""
    process = await asyncio.create_subprocess_exec(
        "node",
        str(folder / "private.js"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(NODE_TIMEOUT_S):
        stdout, stderr = await process.communicate(json.dumps(request).encode())
    assert process.returncode == 0, f"private.js failed:\n{stderr.decode()}"
    document: dict[str, Any] = json.loads(stdout)
    for name, result in document["results"].items():
        assert "unexpected" not in result, f"{name}: {result['unexpected']}"
    return document


@pytest.fixture
def outcome(story: Story) -> dict[str, Any]:
    return story.steps


def _files(folder: Path) -> Iterator[Path]:
    return (path for path in sorted(folder.rglob("*")) if path.is_file())


def _holding(folder: Path, marker: bytes) -> list[Path]:
    return [path for path in _files(folder) if marker in path.read_bytes()]


def _refused(result: dict[str, Any], code: int, *fragments: str) -> None:
    assert result["thrown"] is True, result
    assert result["code"] == code, result
    text = result["message"] + " ".join(d["message"] for d in result["details"])
    for fragment in fragments:
        assert fragment in text, (fragment, result)


async def test_create_keeps_the_properties_off_chain(outcome: dict[str, Any]) -> None:
    created = outcome["create"]
    assert (created["code"], created["successful"]) == (TxValidationCode.VALID, True)
    assert json.loads(created["result"]) == {"ID": ASSET, "ownerOrg": HOSPITAL_A}


async def test_members_read_the_private_details(outcome: dict[str, Any]) -> None:
    reads = outcome["memberReads"]
    record = {"ID": ASSET, "ownerOrg": HOSPITAL_A}
    assert json.loads(reads["publicA"]) == json.loads(reads["publicB"]) == record
    details = {
        "ID": ASSET,
        "color": "blue",
        "size": 5,
        "note": MARKER,
        "ownerOrg": HOSPITAL_A,
    }
    assert json.loads(reads["detailsA"]) == details
    assert reads["detailsB"] == reads["detailsA"]
    assert json.loads(reads["appraisalA"]) == {"ID": ASSET, "appraisedValue": 300}
    assert reads["hashA"] == hashlib.sha256(reads["detailsA"].encode()).hexdigest()


async def test_a_non_member_is_refused_but_reads_the_hash(
    outcome: dict[str, Any],
) -> None:
    result = outcome["nonMember"]
    details = outcome["memberReads"]["detailsA"]
    assert json.loads(result["publicC"])["ownerOrg"] == HOSPITAL_A
    assert result["hashC"] == hashlib.sha256(details.encode()).hexdigest()
    _refused(result["detailsC"], GRPC_UNKNOWN, "may not read private data", SHARED)
    # Implicit collections are not member-only-read (as in Fabric): C's peer just
    # has no plaintext to match the hash.
    _refused(result["appraisalOfAByC"], GRPC_UNKNOWN, "not available on this peer")
    _refused(result["createC"], GRPC_ABORTED, "may not write private data", SHARED)
    _refused(result["transferC"], GRPC_ABORTED, f"belongs to {HOSPITAL_A}")


async def test_transfer_moves_ownership_and_drops_the_appraisal(
    outcome: dict[str, Any],
) -> None:
    result = outcome["transfer"]
    assert (result["code"], result["successful"]) == (TxValidationCode.VALID, True)
    assert json.loads(result["publicB"]) == {"ID": ASSET, "ownerOrg": HOSPITAL_B}
    assert json.loads(result["detailsB"])["ownerOrg"] == HOSPITAL_B
    assert result["detailsA"] == result["detailsB"]
    _refused(result["appraisalA"], GRPC_UNKNOWN, "no private details")
    _refused(result["purgeByA"], GRPC_ABORTED, f"belongs to {HOSPITAL_B}")


async def test_purge_removes_plaintext_and_history_on_every_member(
    outcome: dict[str, Any], network: PrivateNetwork
) -> None:
    result = outcome["purge"]
    assert (result["code"], result["successful"]) == (TxValidationCode.VALID, True)
    for read in ("detailsA", "detailsB"):
        _refused(result[read], GRPC_UNKNOWN, "no private details")
    for read in ("hashA", "hashC"):
        _refused(result[read], GRPC_UNKNOWN, "no hash")
    _refused(result["publicB"], GRPC_UNKNOWN, "does not exist")

    # Every peer of the channel drops the hashed entry and records the purge; the
    # members also drop the plaintext and every stored write set that held it.
    key_hash = hashlib.sha256(ASSET.encode()).digest()
    for org in HOSPITALS:
        ledger = network.ledger(org)
        assert ledger.get_private_data(NAME, SHARED, ASSET) is None, org
        assert ledger.get_private_data_hash(NAME, SHARED, ASSET) is None, org
        [record] = list_purges(ledger.reader(), NAME, SHARED, key_hash=key_hash)
        assert record.block_num == result["blockNumber"], org
    for org in ("A", "B"):
        ledger = network.ledger(org)
        [record] = list_purges(ledger.reader(), NAME, SHARED, key_hash=key_hash)
        assert record.private_state_removed, org
        assert record.store_entries_purged >= 1, org
        stored = ledger.reader().execute("SELECT rwset FROM pvt_store").fetchall()
        assert stored, org
        assert not [row for row in stored if MARKER.encode() in row[0]], org


async def test_blocks_keep_the_hash_and_never_the_marker(
    outcome: dict[str, Any], network: PrivateNetwork
) -> None:
    blocks = outcome["blocks"]
    purge_block = outcome["purge"]["blockNumber"]
    assert [b["number"] for b in blocks["blocks"]] == list(range(purge_block + 1))
    assert not [b for b in blocks["blocks"] if b["marker"]]
    details = outcome["memberReads"]["detailsA"].encode()
    assert blocks["detailsHash"] == hashlib.sha256(details).hexdigest()
    holding_hash = [b["number"] for b in blocks["blocks"] if b["detailsHash"]]
    assert holding_hash == [outcome["create"]["blockNumber"]]

    digest = hashlib.sha256(details).digest()
    for org in HOSPITALS:
        store = network.ledger(org).block_store
        serialized = [
            store.block_by_number(n).SerializeToString() for n in range(store.height)
        ]
        assert not [data for data in serialized if MARKER.encode() in data], org
        assert digest in serialized[outcome["create"]["blockNumber"]], org


async def test_the_marker_reaches_members_and_never_the_non_member(
    story: Story, network: PrivateNetwork
) -> None:
    """Midway the members' files hold the marker (so the scan can find it) and C's
    and the orderer's do not; at the end still none of C's or the orderer's do."""
    assert story.held_midway == {"A": True, "B": True, "C": False, "orderer": False}
    assert story.steps["purge"]["successful"]
    assert list(_files(network.storage("C")))
    assert _holding(network.storage("C"), MARKER.encode()) == []
    assert _holding(network.folder / "orderer", MARKER.encode()) == []


async def test_private_data_is_delivered_only_to_members(
    outcome: dict[str, Any],
) -> None:
    seen = outcome["privateBlocks"]
    number = outcome["create"]["blockNumber"]
    shared = f"{NAME}/{SHARED}"
    assert seen["A"] == {
        "number": number,
        "collections": {shared: True, f"{NAME}/_implicit_org_{HOSPITAL_A}": False},
    }
    assert seen["B"] == {"number": number, "collections": {shared: True}}
    assert seen["C"] == {"number": number, "collections": {}}
