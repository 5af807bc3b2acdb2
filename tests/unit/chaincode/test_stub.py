"""ChaincodeStub: the requests it sends, what it checks first, the facts it derives."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from chaincode import (
    ChaincodeSdkError,
    ChaincodeStub,
    InvalidKeyError,
    ShimProtocolError,
)
from chaincode.shim import VALIDATION_PARAMETER, transaction_info
from chaincode.shim.messages import ChaincodeMessage
from chaincode.shim.transaction import TransactionInfo
from chaincode.testing import make_identity, transaction_message
from common.protoutil import Timestamp, parse_signed_proposal
from protos.peer import chaincode_pb2, chaincode_shim_pb2, proposal_response_pb2

T = ChaincodeMessage


class Recorder:
    """A requester that records each request and answers from a queue of payloads."""

    def __init__(self, *answers: bytes) -> None:
        self.requests: list[tuple[int, bytes]] = []
        self.answers = list(answers)

    async def request(self, message_type: int, payload: bytes) -> bytes:
        self.requests.append((message_type, payload))
        return self.answers.pop(0) if self.answers else b""


def stub_with(
    recorder: Recorder, *, info: TransactionInfo | None = None
) -> ChaincodeStub:
    return ChaincodeStub(
        recorder, info or TransactionInfo(channel_id="ch", tx_id="t1", args=())
    )


async def test_writes_encode_key_value_and_collection() -> None:
    recorder = Recorder()
    stub = stub_with(recorder)
    await stub.put_state("k", "text")
    await stub.put_private_data("secrets", "p", b"\x00raw")
    await stub.del_state("k")
    await stub.purge_private_data("secrets", "p")
    kinds = [kind for kind, _ in recorder.requests]
    assert kinds == [T.PUT_STATE, T.PUT_STATE, T.DEL_STATE, T.PURGE_PRIVATE_DATA]
    public = chaincode_shim_pb2.PutState.FromString(recorder.requests[0][1])
    assert (public.key, public.value, public.collection) == ("k", b"text", "")
    private = chaincode_shim_pb2.PutState.FromString(recorder.requests[1][1])
    assert (private.key, private.value, private.collection) == (
        "p",
        b"\x00raw",
        "secrets",
    )
    purge = chaincode_shim_pb2.PurgePrivateState.FromString(recorder.requests[3][1])
    assert (purge.key, purge.collection) == ("p", "secrets")


async def test_arguments_are_checked_before_anything_is_sent() -> None:
    recorder = Recorder()
    stub = stub_with(recorder)
    with pytest.raises(InvalidKeyError, match="key"):
        await stub.put_state("", b"v")
    with pytest.raises(InvalidKeyError, match="collection"):
        await stub.get_private_data("", "k")
    with pytest.raises(InvalidKeyError, match="U\\+0000"):
        await stub.get_state_by_range("\x00composite", "")
    with pytest.raises(ValueError, match="page size"):
        await stub.get_state_by_range_with_pagination("a", "b", 0)
    with pytest.raises(TypeError, match="bytes or str"):
        await stub.put_state("k", 5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="event name"):
        stub.set_event("", b"")
    assert recorder.requests == []


async def test_paginated_range_sends_query_metadata() -> None:
    answer = chaincode_shim_pb2.QueryResponse(
        id="it",
        metadata=chaincode_shim_pb2.QueryResponseMetadata(
            fetched_records_count=0, bookmark="next"
        ).SerializeToString(),
    ).SerializeToString()
    recorder = Recorder(answer)
    iterator, metadata = await stub_with(recorder).get_state_by_range_with_pagination(
        "", "z", 10, "m"
    )
    request = chaincode_shim_pb2.GetStateByRange.FromString(recorder.requests[0][1])
    assert (request.startKey, request.endKey) == ("\x01", "z")
    paging = chaincode_shim_pb2.QueryMetadata.FromString(request.metadata)
    assert (paging.pageSize, paging.bookmark) == (10, "m")
    assert metadata.bookmark == "next"
    assert [kv async for kv in iterator] == []


async def test_validation_parameter_is_state_metadata() -> None:
    stored = chaincode_shim_pb2.StateMetadataResult(
        entries=[
            chaincode_shim_pb2.StateMetadata(metakey="OTHER", value=b"x"),
            chaincode_shim_pb2.StateMetadata(
                metakey=VALIDATION_PARAMETER, value=b"policy"
            ),
        ]
    ).SerializeToString()
    recorder = Recorder(b"", stored, b"")
    stub = stub_with(recorder)
    await stub.set_private_data_validation_parameter("secrets", "k", b"policy")
    assert await stub.get_state_validation_parameter("k") == b"policy"
    assert await stub.get_private_data_validation_parameter("secrets", "k") == b""
    put = chaincode_shim_pb2.PutStateMetadata.FromString(recorder.requests[0][1])
    assert (put.key, put.collection, put.metadata.metakey) == (
        "k",
        "secrets",
        VALIDATION_PARAMETER,
    )


async def test_invoke_chaincode_names_the_channel_and_decodes_the_reply() -> None:
    response = proposal_response_pb2.Response(status=201, message="m", payload=b"p")
    completed = T(type=T.COMPLETED, payload=response.SerializeToString())
    failed = T(type=T.ERROR, payload=b"no such chaincode")
    recorder = Recorder(completed.SerializeToString(), failed.SerializeToString())
    stub = stub_with(recorder)
    result = await stub.invoke_chaincode("other", ["Fn", b"raw"], channel="ch2")
    assert (result.status, result.message, result.payload) == (201, "m", b"p")
    spec = chaincode_pb2.ChaincodeSpec.FromString(recorder.requests[0][1])
    assert spec.chaincode_id.name == "other/ch2"
    assert list(spec.input.args) == [b"Fn", b"raw"]
    error = await stub.invoke_chaincode("other", [])
    assert (error.status, error.message) == (500, "no such chaincode")


async def test_invoke_chaincode_refuses_an_unexpected_reply() -> None:
    recorder = Recorder(T(type=T.RESPONSE).SerializeToString())
    with pytest.raises(ShimProtocolError, match="RESPONSE"):
        await stub_with(recorder).invoke_chaincode("other", [])


def test_facts_from_the_signed_proposal() -> None:
    """Creator, transient map, timestamp and binding all come from the proposal."""
    creator = make_identity("Org1MSP", "Facts")
    message = transaction_message(
        channel_id="ch",
        chaincode="cc",
        args=[b"Fn", b"a"],
        creator=creator,
        transient={"secret": b"s"},
        timestamp=Timestamp(seconds=1_700_000_000, nanos=500_000_000),
    )
    message.payload = chaincode_pb2.ChaincodeInput(
        args=[b"Fn", b"a"], decorations={"d": b"v"}
    ).SerializeToString()
    stub = stub_with(Recorder(), info=transaction_info(message))
    proposal = parse_signed_proposal(message.proposal)
    epoch = proposal.channel_header.epoch.to_bytes(8, "little")
    assert (
        stub.get_binding()
        == hashlib.sha256(proposal.nonce + proposal.creator + epoch).hexdigest()
    )
    assert stub.get_creator() == creator
    assert dict(stub.get_transient()) == {"secret": b"s"}
    assert dict(stub.get_decorations()) == {"d": b"v"}
    assert stub.get_tx_id() == message.txid == proposal.tx_id
    assert stub.get_datetime() == datetime(
        2023, 11, 14, 22, 13, 20, 500_000, tzinfo=UTC
    )
    assert stub.get_function_and_parameters() == ("Fn", ["a"])
    assert stub.get_signed_proposal() == message.proposal


def test_without_a_proposal_the_creator_is_unknown() -> None:
    stub = stub_with(Recorder())
    assert stub.get_signed_proposal() is None
    assert stub.get_binding() == ""
    assert stub.get_function_and_parameters() == ("", [])
    with pytest.raises(ChaincodeSdkError, match="no signed proposal"):
        stub.get_creator()
    with pytest.raises(ChaincodeSdkError, match="timestamp"):
        stub.get_tx_timestamp()


def test_the_last_event_wins() -> None:
    stub = stub_with(Recorder())
    assert not stub.event
    stub.set_event("first", b"1")
    stub.set_event("second", b"2")
    event = stub.event
    assert event is not None
    assert (event.event_name, event.payload) == ("second", b"2")
