"""Endorse and Evaluate against scripted peers: plans, retries, mismatches, errors.

The channel view holds the example's genesis config and the asset chaincode defined
with the default policy (MAJORITY of Hospitals A, B and C); each fake peer answers a
ProposalResponse signed with its organisation's real peer identity, fails, or refuses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
import pytest

from common.protoutil import (
    ChaincodeId,
    ChaincodeResponse,
    create_proposal,
    create_proposal_response,
    new_block,
    parse_proposal,
    parse_serialized_identity,
    parse_transaction,
    proposal_hash_of,
    sign_proposal,
    with_transaction_filter,
)
from gateway.channels import Channels
from gateway.config import GatewayTimeouts, OrdererSettings
from gateway.connections import DialSettings, PeerClient
from gateway.context import GatewayContext
from gateway.endorse import endorse
from gateway.errors import StatusError
from gateway.evaluate import evaluate
from gateway.orderers import OrdererDirectory
from gateway.registry import Registry
from peer.lifecycle import ChaincodeDefinition, default_endorsement_policy
from protos.gateway import gateway_pb2
from protos.peer import proposal_pb2, proposal_response_pb2
from protos.peer.transaction_pb2 import TxValidationCode
from tests.support.peer import HOSPITAL_A, HOSPITAL_B, PeerMaterial, definition_envelope

HOSPITAL_C = "HospitalCMSP"
CHANNEL = "medical-records"

Answer = Callable[[proposal_pb2.SignedProposal], proposal_response_pb2.ProposalResponse]


class RpcError(grpc.aio.AioRpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details, "")


@dataclass
class Script:
    material: PeerMaterial

    def endorse(
        self, mspid: str, *, result: bytes = b"ok", results: bytes = b""
    ) -> Answer:
        identity = self.material.peer_identity(mspid)

        def answer(
            signed: proposal_pb2.SignedProposal,
        ) -> proposal_response_pb2.ProposalResponse:
            proposal = parse_proposal(signed.proposal_bytes)
            return create_proposal_response(
                proposal_hash=proposal_hash_of(proposal),
                results=results,
                response=ChaincodeResponse(status=200, payload=result),
                chaincode_id=ChaincodeId("asset", "1.0"),
                endorser=identity.serialized,
                signer=identity.sign,
            )

        return answer

    @staticmethod
    def status(status: int, message: str) -> Answer:
        def answer(
            _: proposal_pb2.SignedProposal,
        ) -> proposal_response_pb2.ProposalResponse:
            return proposal_response_pb2.ProposalResponse(
                response=proposal_response_pb2.Response(status=status, message=message)
            )

        return answer

    @staticmethod
    def fail(code: grpc.StatusCode, details: str = "down") -> Answer:
        def answer(
            _: proposal_pb2.SignedProposal,
        ) -> proposal_response_pb2.ProposalResponse:
            raise RpcError(code, details)

        return answer


class FakePeer(PeerClient):
    def __init__(self, address: str, mspid: str, answer: Answer) -> None:
        super().__init__(address, mspid, DialSettings(root_certs=None))
        self.answer = answer
        self.calls = 0

    async def process_proposal(
        self, signed: proposal_pb2.SignedProposal, *, deadline_s: float
    ) -> proposal_response_pb2.ProposalResponse:
        self.calls += 1
        return self.answer(signed)


@dataclass
class Setup:
    material: PeerMaterial
    peers: list[FakePeer] = field(default_factory=list)

    def context(self) -> GatewayContext:
        channels = Channels((CHANNEL,))
        view = channels.get(CHANNEL)
        assert view is not None
        view.apply_block(self.material.genesis)
        definition = ChaincodeDefinition(
            name="asset",
            version="1.0",
            sequence=1,
            endorsement_policy=default_endorsement_policy(),
        )
        envelope = definition_envelope(self.material, definition, [HOSPITAL_A])
        view.apply_block(
            with_transaction_filter(
                new_block(1, previous_hash=b"", envelopes=[envelope]),
                [TxValidationCode.VALID],
            )
        )
        view.mark_ready()
        client = self.material.user(HOSPITAL_A, "dr-lee")
        return GatewayContext(
            registry=Registry(HOSPITAL_A, self.peers),
            channels=channels,
            orderers=OrdererDirectory(
                OrdererSettings(), use_tls=False, base=DialSettings(root_certs=None)
            ),
            creator=client.serialized,
            signer=client.sign,
            timeouts=GatewayTimeouts(endorse_s=1.0, catch_up_s=0.01),
            ready_timeout_s=0.1,
        )

    def peer(self, name: str, mspid: str, answer: Answer) -> FakePeer:
        peer = FakePeer(name, mspid, answer)
        self.peers.append(peer)
        return peer


@pytest.fixture
def setup(material: PeerMaterial) -> Setup:
    return Setup(material)


@pytest.fixture
def script(material: PeerMaterial) -> Script:
    return Script(material)


def signed_proposal(
    material: PeerMaterial, *, transient: dict[str, bytes] | None = None
) -> proposal_pb2.SignedProposal:
    client = material.user(HOSPITAL_A, "dr-lee")
    created = create_proposal(
        channel_id=CHANNEL,
        chaincode_name="asset",
        args=[b"CreateAsset", b"a1"],
        creator=client.serialized,
        transient=transient,
    )
    return sign_proposal(created.proposal_bytes, client.sign)


async def run_endorse(
    setup: Setup,
    *,
    orgs: tuple[str, ...] = (),
    transient: dict[str, bytes] | None = None,
) -> list[str]:
    """Endorse; returns the MSP ids of the envelope's endorsements."""
    request = gateway_pb2.EndorseRequest(
        channel_id=CHANNEL,
        proposed_transaction=signed_proposal(setup.material, transient=transient),
        endorsing_organizations=orgs,
    )
    response = await endorse(request, setup.context(), time_remaining=5)
    transaction = parse_transaction(response.prepared_transaction)
    assert transaction.response.payload == b"ok"
    return [
        parse_serialized_identity(endorsement.endorser).mspid
        for endorsement in transaction.endorsements
    ]


async def endorse_failure(setup: Setup, **options: object) -> StatusError:
    with pytest.raises(StatusError) as raised:
        await run_endorse(setup, **options)  # type: ignore[arg-type]
    return raised.value


async def test_the_first_endorser_is_local_and_the_policy_adds_another_org(
    setup: Setup, script: Script
) -> None:
    setup.peer("a0", HOSPITAL_A, script.endorse(HOSPITAL_A))
    setup.peer("b0", HOSPITAL_B, script.endorse(HOSPITAL_B))
    c0 = setup.peer("c0", HOSPITAL_C, script.endorse(HOSPITAL_C))
    assert await run_endorse(setup) == [HOSPITAL_A, HOSPITAL_B]
    assert c0.calls == 0


async def test_a_peer_that_is_down_gives_way_to_the_next_of_its_org(
    setup: Setup, script: Script
) -> None:
    down = setup.peer("a0", HOSPITAL_A, script.fail(grpc.StatusCode.UNAVAILABLE))
    setup.peer("a1", HOSPITAL_A, script.endorse(HOSPITAL_A))
    setup.peer("b0", HOSPITAL_B, script.fail(grpc.StatusCode.DEADLINE_EXCEEDED))
    setup.peer("b1", HOSPITAL_B, script.endorse(HOSPITAL_B))
    assert await run_endorse(setup) == [HOSPITAL_A, HOSPITAL_B]
    assert down.calls == 1


async def test_a_mismatching_payload_moves_on_to_another_layout(
    setup: Setup, script: Script
) -> None:
    setup.peer("a0", HOSPITAL_A, script.endorse(HOSPITAL_A))
    setup.peer("b0", HOSPITAL_B, script.endorse(HOSPITAL_B, result=b"different"))
    setup.peer("c0", HOSPITAL_C, script.endorse(HOSPITAL_C))
    assert await run_endorse(setup) == [HOSPITAL_A, HOSPITAL_C]


async def test_no_complete_layout_is_aborted_with_every_failure_named(
    setup: Setup, script: Script
) -> None:
    setup.peer("a0", HOSPITAL_A, script.endorse(HOSPITAL_A))
    setup.peer("b0", HOSPITAL_B, script.endorse(HOSPITAL_B, result=b"different"))
    setup.peer("c0", HOSPITAL_C, script.fail(grpc.StatusCode.UNAVAILABLE, "refused"))
    error = await endorse_failure(setup)
    assert error.code is grpc.StatusCode.ABORTED
    assert error.message == (
        "failed to collect enough transaction endorsements, "
        "see attached details for more info"
    )
    assert [(d.address, d.mspid) for d in error.details] == [
        ("b0", HOSPITAL_B),
        ("c0", HOSPITAL_C),
    ]
    assert error.details[0].message == (
        "ProposalResponsePayloads do not match: chaincode response differs"
    )
    assert error.details[1].message == "rpc error: code = Unavailable desc = refused"


async def test_a_chaincode_error_at_the_first_endorser_ends_the_attempt(
    setup: Setup, script: Script
) -> None:
    setup.peer("a0", HOSPITAL_A, script.status(409, "exists"))
    a1 = setup.peer("a1", HOSPITAL_A, script.endorse(HOSPITAL_A))
    b0 = setup.peer("b0", HOSPITAL_B, script.endorse(HOSPITAL_B))
    error = await endorse_failure(setup)
    assert (error.code, error.message) == (
        grpc.StatusCode.ABORTED,
        "failed to endorse transaction, see attached details for more info",
    )
    [detail] = error.details
    assert detail.message == "chaincode response 409, exists"
    assert (a1.calls, b0.calls) == (0, 0)


async def test_a_refused_proposal_keeps_the_peers_code(
    setup: Setup, script: Script
) -> None:
    setup.peer("a0", HOSPITAL_A, script.fail(grpc.StatusCode.PERMISSION_DENIED, "no"))
    setup.peer("b0", HOSPITAL_B, script.endorse(HOSPITAL_B))
    error = await endorse_failure(setup)
    assert error.code is grpc.StatusCode.PERMISSION_DENIED


async def test_endorsing_orgs_chosen_by_the_client_are_used_as_given(
    setup: Setup, script: Script
) -> None:
    setup.peer("a0", HOSPITAL_A, script.endorse(HOSPITAL_A))
    b0 = setup.peer("b0", HOSPITAL_B, script.endorse(HOSPITAL_B))
    setup.peer("c0", HOSPITAL_C, script.endorse(HOSPITAL_C))
    assert await run_endorse(setup, orgs=(HOSPITAL_A, HOSPITAL_C)) == [
        HOSPITAL_A,
        HOSPITAL_C,
    ]
    assert b0.calls == 0
    error = await endorse_failure(setup, orgs=("NowhereMSP",))
    assert error.code is grpc.StatusCode.UNAVAILABLE


async def test_transient_data_without_a_local_endorser_is_refused(
    setup: Setup, script: Script
) -> None:
    setup.peer("b0", HOSPITAL_B, script.endorse(HOSPITAL_B))
    setup.peer("c0", HOSPITAL_C, script.endorse(HOSPITAL_C))
    error = await endorse_failure(setup, transient={"secret": b"s"})
    assert error.code is grpc.StatusCode.FAILED_PRECONDITION
    assert "protect transient data" in error.message
    assert await run_endorse(setup) == [HOSPITAL_B, HOSPITAL_C]


async def run_evaluate(setup: Setup, **options: object) -> bytes:
    request = gateway_pb2.EvaluateRequest(
        channel_id=CHANNEL,
        proposed_transaction=signed_proposal(setup.material, **options),  # type: ignore[arg-type]
    )
    response = await evaluate(request, setup.context(), time_remaining=5)
    payload: bytes = response.result.payload
    return payload


async def test_evaluate_prefers_the_local_org_and_retries_peers_that_fail(
    setup: Setup, script: Script
) -> None:
    b0 = setup.peer("b0", HOSPITAL_B, script.endorse(HOSPITAL_B, result=b"from b"))
    setup.peer("a0", HOSPITAL_A, script.status(500, "chaincode not installed"))
    setup.peer("a1", HOSPITAL_A, script.endorse(HOSPITAL_A, result=b"from a"))
    assert await run_evaluate(setup) == b"from a"
    assert b0.calls == 0


async def test_evaluate_falls_back_to_other_orgs_but_never_with_transient_data(
    setup: Setup, script: Script
) -> None:
    setup.peer("a0", HOSPITAL_A, script.fail(grpc.StatusCode.UNAVAILABLE))
    setup.peer("b0", HOSPITAL_B, script.endorse(HOSPITAL_B, result=b"from b"))
    assert await run_evaluate(setup) == b"from b"
    with pytest.raises(StatusError) as raised:
        await run_evaluate(setup, transient={"secret": b"s"})
    assert raised.value.code is grpc.StatusCode.UNAVAILABLE
    assert raised.value.message == (
        "failed to evaluate transaction, see attached details for more info"
    )


async def test_a_chaincode_error_on_evaluate_is_final(
    setup: Setup, script: Script
) -> None:
    setup.peer("a0", HOSPITAL_A, script.status(404, "no asset"))
    b0 = setup.peer("b0", HOSPITAL_B, script.endorse(HOSPITAL_B))
    with pytest.raises(StatusError) as raised:
        await run_evaluate(setup)
    assert (raised.value.code, raised.value.message) == (
        grpc.StatusCode.UNKNOWN,
        "evaluate call to endorser returned error: chaincode response 404, no asset",
    )
    assert b0.calls == 0
