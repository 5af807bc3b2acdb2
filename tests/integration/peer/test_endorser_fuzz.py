"""Fuzzed ProcessProposal requests get an answer or a deliberate gRPC error, never a crash.

Method: seeded random requests (rerun with --seed) against one in-process peer over
real gRPC: random bytes, byte-level mutations of a valid SignedProposal, and valid,
properly signed SignedProposals around mutated Proposal bytes (so the mutation reaches
the deeper checks). Each must come back as a ProposalResponse or as one of the
statuses the peer maps its errors to — an UNKNOWN or INTERNAL status would mean an
unhandled exception. Afterwards a valid proposal is still endorsed.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio

from protos.peer import proposal_pb2
from tests.support.peer import (
    CHANNEL,
    HOSPITAL_A,
    PeerMaterial,
    StandalonePeer,
    build_peer_material,
    mutate,
    open_channel,
    process_proposal,
    signed_proposal,
    standalone_peer,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

REQUESTS_PER_KIND = 120
DELIBERATE = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.ALREADY_EXISTS,
}


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> PeerMaterial:
    return build_peer_material(tmp_path_factory.mktemp("fuzz-material"))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def peer(
    material: PeerMaterial, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[StandalonePeer]:
    async with standalone_peer(material, tmp_path_factory.mktemp("fuzz")) as peer:
        yield peer


def requests(peer: StandalonePeer, rng: random.Random) -> list[bytes]:
    client = peer.material.user(HOSPITAL_A, "dr-lee")
    valid, _ = signed_proposal(client, ["ReadAsset", "fuzz"])
    data = valid.SerializeToString()
    made = [rng.randbytes(rng.randint(0, 300)) for _ in range(REQUESTS_PER_KIND)]
    made += [mutate(data, rng) for _ in range(REQUESTS_PER_KIND)]
    for _ in range(REQUESTS_PER_KIND):
        inner = mutate(valid.proposal_bytes, rng)
        made.append(
            proposal_pb2.SignedProposal(
                proposal_bytes=inner, signature=client.sign(inner)
            ).SerializeToString()
        )
    for _ in range(REQUESTS_PER_KIND):
        made.append(well_formed(peer, rng).SerializeToString())
    return made


def well_formed(
    peer: StandalonePeer, rng: random.Random
) -> proposal_pb2.SignedProposal:
    """A correctly signed proposal with random chaincode, channel, arguments, transient."""
    client = peer.material.user(HOSPITAL_A, "dr-lee")
    chaincode = rng.choice(["asset", "qscc", "cscc", "_lifecycle", random_text(rng)])
    channel = rng.choice([CHANNEL, CHANNEL, "", random_text(rng).lower()])
    args = [rng.randbytes(rng.randint(0, 12)) for _ in range(rng.randint(0, 4))]
    if args and rng.random() < 0.7:
        args[0] = rng.choice(
            [
                b"ReadAsset",
                b"CreateAsset",
                b"GetChainInfo",
                b"GetBlockByNumber",
                b"GetChannels",
                b"GetConfigBlock",
                b"TransferAsset",
            ]
        )
        if len(args) > 1 and rng.random() < 0.5:
            args[1] = CHANNEL.encode()
    transient = {random_text(rng): rng.randbytes(4) for _ in range(rng.randint(0, 2))}
    signed, _ = signed_proposal(
        client, args, chaincode=chaincode, channel=channel, transient=transient
    )
    return signed


def random_text(rng: random.Random) -> str:
    return "".join(rng.choice("abcXYZ09_-.é") for _ in range(rng.randint(1, 10)))


async def test_fuzzed_proposals_never_crash_the_endorser(
    peer: StandalonePeer, seed: int
) -> None:
    rng = random.Random(seed)
    outcomes: dict[str, int] = {}
    unexpected: list[tuple[grpc.StatusCode, str | None]] = []
    async with open_channel(peer.address) as channel:
        for request in requests(peer, rng):
            try:
                response = await process_proposal(channel, request)
            except grpc.aio.AioRpcError as error:
                if error.code() not in DELIBERATE:
                    unexpected.append((error.code(), error.details()))
                key = error.code().name
            else:
                key = f"status {response.response.status}"
            outcomes[key] = outcomes.get(key, 0) + 1
        client = peer.material.user(HOSPITAL_A, "dr-lee")
        valid, _ = signed_proposal(
            client, ["CreateAsset", "ok", "red", "1", "Ann", "5"]
        )
        after = await process_proposal(channel, valid)
    print(f"outcomes={outcomes}")
    assert unexpected == []
    assert after.response.status == 200, after.response.message
    assert outcomes.get("INVALID_ARGUMENT", 0) > REQUESTS_PER_KIND
