"""Peer test material and in-process peers, shared by the peer integration and e2e tests.

`build_peer_material(folder)` makes the hospital example's crypto material and the
genesis block of `medical-records` ordered by a solo orderer (the example uses etcd;
the variant only changes the orderer type); `write_peer_yaml` writes a peer.yaml for a
hospital's peer0; `running_peer` starts a `PeerNode` in the test's event loop on
127.0.0.1:0 with its block pullers running, and stops it afterwards. The client
helpers sign proposals, call ProcessProposal, assemble transactions and read Deliver.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import re
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from common.msp import SigningIdentity, load_signing_identity
from common.protoutil import (
    BLOCK_UNTIL_READY,
    ParsedProposal,
    SeekPosition,
    block_header_hash,
    create_proposal,
    create_seek_envelope,
    create_transaction_envelope,
    parse_signed_proposal,
    sign_envelope,
    sign_proposal,
)
from network.bench_peer import definition_transaction, orderer_block
from network.cryptogen import IdentityLayout
from network.orderer_material import OrdererMaterial, build_orderer_material
from network.spec import ConsortiumSpec, parse_spec
from peer.blockpuller import PullerSettings
from peer.config import load_peer_config
from peer.lifecycle import ChaincodeDefinition, default_endorsement_policy
from peer.node import PeerNode
from protos.common import common_pb2
from protos.peer import events_pb2, proposal_pb2, proposal_response_pb2

EXAMPLE_SPEC = (
    Path(__file__).resolve().parents[2] / "network/examples/hospital-consortium.yaml"
)
CHANNEL = "medical-records"
HOSPITAL_A = "HospitalAMSP"
HOSPITAL_B = "HospitalBMSP"
HOSPITAL_C = "HospitalCMSP"
ORDERER_ENDPOINT = "127.0.0.1:7050"
"""orderer0's endpoint in the channel config (the example's); tests override it."""
ASSET = "asset"
ASSET_PACKAGE = "asset_1.0:" + hashlib.sha256(b"asset chaincode package").hexdigest()
ASSET_SERVE = (
    sys.executable,
    "-m",
    "chaincode",
    "serve",
    "--module",
    "chaincode.contracts.asset",
)
TIMEOUT_S = 30.0
FAST_PULLS = PullerSettings(
    backoff_initial_s=0.05, backoff_max_s=0.5, connect_timeout_s=5.0
)


def solo_example_spec(*, batch_timeout: str = "20ms") -> ConsortiumSpec:
    """The example consortium, with `medical-records` ordered by orderer0 alone."""
    text = EXAMPLE_SPEC.read_text()
    solo = text.replace("      type: etcd\n", "      type: solo\n")
    solo = re.sub(r"      consenters:\n(        - .*\n)+", "", solo)
    solo = solo.replace("batch_timeout: 250ms", f"batch_timeout: {batch_timeout}")
    assert solo.count("type: solo") == 1, "the example spec changed shape"
    assert "consenters:" not in solo.split("channels:")[1]
    return parse_spec(solo, source="solo variant of the hospital example")


@dataclass(frozen=True)
class PeerMaterial:
    """The example's material, and the solo genesis block of medical-records."""

    orderer: OrdererMaterial

    @property
    def root(self) -> Path:
        return self.orderer.root

    @property
    def genesis(self) -> common_pb2.Block:
        return self.orderer.genesis

    def peer_layout(self, mspid: str) -> IdentityLayout:
        return self.orderer.crypto.organization(mspid).peer("peer0")

    def peer_identity(self, mspid: str) -> SigningIdentity:
        return load_signing_identity(self.peer_layout(mspid).msp_dir, mspid=mspid)

    def user(self, mspid: str, name: str) -> SigningIdentity:
        return self.orderer.signing_identity(mspid, name)

    def tls_ca(self, mspid: str) -> Path:
        return self.orderer.crypto.organization(mspid).tlsca_cert


def build_peer_material(root: Path) -> PeerMaterial:
    return PeerMaterial(build_orderer_material(root, solo_example_spec()))


def write_peer_yaml(
    path: Path,
    material: PeerMaterial,
    mspid: str,
    *,
    storage: Path,
    orderer_address: str | None = None,
    tls: bool = False,
    chaincodes: Mapping[str, Mapping[str, object]] | None = None,
    chaincode_listen: str | None = None,
    extra: Mapping[str, object] | None = None,
) -> Path:
    """A peer.yaml for peer0 of `mspid` (JSON is YAML); returns `path`."""
    layout = material.peer_layout(mspid)
    document: dict[str, object] = {
        "name": layout.name,
        "msp": {"id": mspid, "dir": str(layout.msp_dir)},
        "listen": "127.0.0.1:0",
        "tls": {
            "enabled": True,
            "cert": str(layout.tls_cert),
            "key": str(layout.tls_key),
            "client_root_cas": [str(material.tls_ca(mspid))],
        }
        if tls
        else {"enabled": False},
        "storage": str(storage),
    }
    if orderer_address is not None:
        document["orderers"] = {
            "address_overrides": {ORDERER_ENDPOINT: orderer_address}
        }
    if chaincodes:
        document["chaincodes"] = {
            "execute_timeout": "10s",
            "packages": dict(chaincodes),
        }
    if chaincode_listen is not None:
        document["chaincode_listen"] = chaincode_listen
    document.update(extra or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2))
    return path


def launched_asset() -> dict[str, object]:
    """peer.yaml packages entry: the asset chaincode launched by the peer."""
    return {"package_id": ASSET_PACKAGE, "launch": list(ASSET_SERVE)}


@contextlib.asynccontextmanager
async def running_peer(
    config_path: Path, *, settings: PullerSettings = FAST_PULLS
) -> AsyncIterator[tuple[PeerNode, dict[str, str]]]:
    """A PeerNode with its jobs running in this event loop; stopped on exit."""
    node = PeerNode(
        load_peer_config(config_path), puller_settings=settings, verify_workers=1
    )
    addresses = await node.start()
    jobs = [asyncio.ensure_future(job) for job in node.jobs()]
    try:
        yield node, addresses
    finally:
        await node.stop(5.0)
        for job in jobs:
            job.cancel()
        results = await asyncio.gather(*jobs, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(
                result, asyncio.CancelledError
            ):
                raise result


@contextlib.asynccontextmanager
async def asset_server(package_id: str = ASSET_PACKAGE) -> AsyncIterator[str]:
    """The asset chaincode as a service (`python -m chaincode serve --listen`)."""
    process = await asyncio.create_subprocess_exec(
        *ASSET_SERVE,
        "--listen",
        "127.0.0.1:0",
        "--chaincode-id",
        package_id,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(TIMEOUT_S):
            line = await process.stdout.readline()
        assert line.startswith(b"READY "), line
        yield line.decode().split()[1]
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


async def wait_for_height(node: PeerNode, height: int, channel: str = CHANNEL) -> None:
    """Return once the peer's ledger of `channel` holds `height` blocks."""
    async with asyncio.timeout(TIMEOUT_S):
        await node.channels.require(channel).wait_for_height(height)


def signed_proposal(
    signer: SigningIdentity,
    args: Sequence[str | bytes],
    *,
    chaincode: str = ASSET,
    channel: str = CHANNEL,
    transient: Mapping[str, bytes] | None = None,
) -> tuple[proposal_pb2.SignedProposal, ParsedProposal]:
    created = create_proposal(
        channel_id=channel,
        chaincode_name=chaincode,
        args=[arg.encode() if isinstance(arg, str) else arg for arg in args],
        creator=signer.serialized,
        transient=transient,
    )
    signed = sign_proposal(created.proposal_bytes, signer.sign)
    return signed, parse_signed_proposal(signed)


def open_channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address)


async def process_proposal(
    channel: grpc.aio.Channel, request: proposal_pb2.SignedProposal | bytes
) -> proposal_response_pb2.ProposalResponse:
    """Call protos.Endorser/ProcessProposal (raw bytes are sent as given)."""
    data = request if isinstance(request, bytes) else request.SerializeToString()
    method = channel.unary_unary(  # type: ignore[call-arg]
        "/protos.Endorser/ProcessProposal",
        response_deserializer=proposal_response_pb2.ProposalResponse.FromString,
    )
    response: proposal_response_pb2.ProposalResponse = await method(
        data, timeout=TIMEOUT_S
    )
    return response


def transaction(
    signer: SigningIdentity,
    proposal: ParsedProposal,
    responses: Sequence[proposal_response_pb2.ProposalResponse],
) -> bytes:
    """The signed transaction envelope of endorsed responses."""
    payload = create_transaction_envelope(proposal=proposal, responses=responses)
    return sign_envelope(payload, signer.sign).SerializeToString()


def asset_definition(version: str = "1.0", sequence: int = 1) -> ChaincodeDefinition:
    return ChaincodeDefinition(
        name=ASSET,
        version=version,
        sequence=sequence,
        endorsement_policy=default_endorsement_policy(),
    )


def definition_envelope(
    material: PeerMaterial, definition: ChaincodeDefinition, endorsers: Sequence[str]
) -> bytes:
    """A `_lifecycle` transaction committing `definition`, endorsed by those orgs' peers."""
    return definition_transaction(
        definition,
        channel_id=CHANNEL,
        creator=material.user(HOSPITAL_A, "Admin"),
        endorsers=[material.peer_identity(mspid) for mspid in endorsers],
    )


def seek(
    signer: SigningIdentity,
    *,
    start: SeekPosition,
    stop: SeekPosition,
    channel: str = CHANNEL,
    behavior: int = BLOCK_UNTIL_READY,
) -> bytes:
    return create_seek_envelope(
        channel_id=channel,
        start=start,
        stop=stop,
        behavior=behavior,
        creator=signer.serialized,
        signer=signer.sign,
    ).SerializeToString()


async def peer_deliver(
    channel: grpc.aio.Channel, method: str, requests: Sequence[bytes]
) -> list[events_pb2.DeliverResponse]:
    """Send requests on one protos.Deliver stream; every response until each status."""
    call: Any = channel.stream_stream(  # type: ignore[call-arg]
        f"/protos.Deliver/{method}",
        response_deserializer=events_pb2.DeliverResponse.FromString,
    )(timeout=TIMEOUT_S)
    responses: list[events_pb2.DeliverResponse] = []
    for request in requests:
        await call.write(request)
        while True:
            response = await call.read()
            assert isinstance(response, events_pb2.DeliverResponse), response
            responses.append(response)
            if response.WhichOneof("Type") == "status":
                break
    await call.done_writing()
    return responses


def signed_envelope(signer: SigningIdentity, payload: bytes) -> bytes:
    return sign_envelope(payload, signer.sign).SerializeToString()


def co_endorse(
    response: proposal_response_pb2.ProposalResponse, endorser: SigningIdentity
) -> proposal_response_pb2.ProposalResponse:
    """The same response endorsed by `endorser` (a second organisation's peer)."""
    signature = endorser.sign(response.payload + endorser.serialized)
    copy = proposal_response_pb2.ProposalResponse()
    copy.CopyFrom(response)
    copy.endorsement.endorser = endorser.serialized
    copy.endorsement.signature = signature
    return copy


UNREACHABLE_ORDERER = "127.0.0.1:9"
"""An address nothing listens on: peers whose blocks a test commits itself."""


@dataclass
class StandalonePeer:
    """peer0 of Hospital A, joined, with the asset chaincode defined and launched.

    No orderer runs: the test commits blocks itself (`commit`), signed as orderer0.
    """

    material: PeerMaterial
    node: PeerNode
    address: str

    @property
    def channel(self) -> Any:
        return self.node.channels.require(CHANNEL)

    async def commit(self, envelopes: Sequence[bytes]) -> tuple[int, ...]:
        """Order `envelopes` into the next block (signed by orderer0) and commit it."""
        channel = self.channel
        store = channel.ledger.block_store
        previous = store.block_by_number(store.height - 1)
        orderer = self.material.orderer.crypto.organization("HealthCommissionMSP")
        identity = load_signing_identity(
            orderer.orderer("orderer0").msp_dir, mspid="HealthCommissionMSP"
        )
        block = orderer_block(
            store.height,
            previous_hash=block_header_hash(previous.header),
            envelopes=envelopes,
            orderer=identity,
        )
        return tuple(await channel.commit(block))


@contextlib.asynccontextmanager
async def standalone_peer(
    material: PeerMaterial, folder: Path, **yaml: Any
) -> AsyncIterator[StandalonePeer]:
    config = write_peer_yaml(
        folder / "peer.yaml",
        material,
        HOSPITAL_A,
        storage=folder / "data",
        orderer_address=UNREACHABLE_ORDERER,
        chaincodes={ASSET: launched_asset()},
        **yaml,
    )
    async with running_peer(config) as (node, addresses):
        await node.join(material.genesis)
        peer = StandalonePeer(material, node, addresses["grpc"])
        codes = await peer.commit(
            [
                definition_envelope(
                    material, asset_definition(), [HOSPITAL_A, HOSPITAL_B]
                )
            ]
        )
        assert codes == (0,), codes
        yield peer


def mutate(data: bytes, rng: random.Random) -> bytes:
    """Flip, drop, duplicate or truncate a few bytes."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not buffer:
            break
        position = rng.randrange(len(buffer))
        action = rng.randrange(4)
        if action == 0:
            buffer[position] ^= 1 << rng.randrange(8)
        elif action == 1:
            del buffer[position]
        elif action == 2:
            buffer[position:position] = buffer[position : position + rng.randint(1, 8)]
        else:
            del buffer[position:]
    return bytes(buffer)
