"""GetPrivateDataQueryResult on member and non-member peers of a real three-peer network.

The network of `test_privdata` (Hospitals A and B members of collection `AB`, C
not); a client of A commits a JSON private value, then asks each peer to run
`QueryPrivate` over its own private state.
"""

from __future__ import annotations

from tests.integration.peer.test_privdata import PVT, ThreePeers, material, network
from tests.support.peer import (
    HOSPITAL_A,
    HOSPITAL_B,
    HOSPITAL_C,
    open_channel,
    process_proposal,
    signed_proposal,
)

__all__ = ["material", "network"]  # the fixtures this module uses

RECORD = b'{"docType": "diagnosis", "code": "J10"}'


async def query_on(network: ThreePeers, mspid: str, selector: str) -> tuple[int, str]:
    """(status, payload or message) of QueryPrivate("AB", selector) run by `mspid`'s peer."""
    client = network.material.user(HOSPITAL_A, "dr-lee")
    signed, _ = signed_proposal(client, ["QueryPrivate", "AB", selector], chaincode=PVT)
    async with open_channel(network.addresses[mspid]) as channel:
        response = await process_proposal(channel, signed)
    answer = response.response
    return answer.status, answer.payload.decode() or answer.message


async def test_members_answer_and_a_non_member_refuses(network: ThreePeers) -> None:
    response, envelope = await network.endorse_on_a("AB", "record-1", RECORD)
    assert response.response.status == 200, response.response.message
    await network.order(envelope)
    selector = '{"selector": {"code": "J10"}}'

    answers = {
        m: await query_on(network, m, selector) for m in (HOSPITAL_A, HOSPITAL_B)
    }
    status, message = await query_on(network, HOSPITAL_C, selector)

    assert answers == {HOSPITAL_A: (200, "record-1"), HOSPITAL_B: (200, "record-1")}
    assert status == 500
    assert "not a member of collection AB of chaincode pvt" in message
