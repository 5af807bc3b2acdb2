"""The pure chaincode-side protocol state machine: handshake, turns, queues, stream end."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from chaincode.shim.handler import (
    BecomeReady,
    FailRequest,
    ResolveRequest,
    SendMessage,
    ShimHandler,
    ShimState,
    StartTransaction,
)
from chaincode.shim.messages import ChaincodeMessage
from protos.peer import chaincode_pb2

T = ChaincodeMessage


def message(kind: int, *, txid: str = "", channel: str = "", payload: bytes = b"") -> T:
    return T(type=kind, txid=txid, channel_id=channel, payload=payload)  # type: ignore[arg-type]


def ready_handler() -> ShimHandler:
    handler = ShimHandler("asset:abc")
    handler.start()
    handler.receive(message(T.REGISTERED))
    handler.receive(message(T.READY))
    assert handler.state is ShimState.READY
    return handler


def state_of(handler: ShimHandler) -> ShimState:
    """The state, read through a call so type narrowing does not carry over."""
    return handler.state


def sent(actions: Sequence[object]) -> list[T]:
    return [action.message for action in actions if isinstance(action, SendMessage)]


def test_start_registers_with_the_package_id() -> None:
    """The first message is REGISTER carrying ChaincodeID{name = package id}."""
    handler = ShimHandler("asset:abc")
    [register] = sent(handler.start())
    assert register.type == T.REGISTER
    assert chaincode_pb2.ChaincodeID.FromString(register.payload).name == "asset:abc"


def test_handshake_goes_created_established_ready() -> None:
    """REGISTERED then READY move the state on; READY reports readiness once."""
    handler = ShimHandler("asset:abc")
    handler.start()
    assert handler.receive(message(T.REGISTERED)) == []
    assert state_of(handler) is ShimState.ESTABLISHED
    assert handler.receive(message(T.READY)) == [BecomeReady()]
    assert state_of(handler) is ShimState.READY


@pytest.mark.parametrize("kind", [T.READY, T.TRANSACTION, T.RESPONSE, T.COMPLETED])
def test_created_refuses_anything_but_registered(kind: int) -> None:
    """Out-of-turn messages get an ERROR tagged with their tx, and the state stays."""
    handler = ShimHandler("asset:abc")
    handler.start()
    [error] = sent(handler.receive(message(kind, txid="t1", channel="ch")))
    assert error.type == T.ERROR
    assert (error.txid, error.channel_id) == ("t1", "ch")
    assert b"state created" in error.payload
    assert handler.state is ShimState.CREATED


def test_established_refuses_a_transaction() -> None:
    """Before READY a TRANSACTION is refused, not run."""
    handler = ShimHandler("asset:abc")
    handler.start()
    handler.receive(message(T.REGISTERED))
    actions = handler.receive(message(T.TRANSACTION, txid="t1", channel="ch"))
    assert [m.type for m in sent(actions)] == [T.ERROR]
    assert not any(isinstance(action, StartTransaction) for action in actions)


@pytest.mark.parametrize(
    "kind", [T.REGISTER, T.COMPLETED, T.GET_STATE, T.UNDEFINED, 99]
)
def test_ready_refuses_unexpected_types(kind: int) -> None:
    """Once ready, a type the peer must not send gets an ERROR and nothing runs."""
    handler = ready_handler()
    [error] = sent(handler.receive(message(kind, txid="t1", channel="ch")))
    assert error.type == T.ERROR
    assert b"cannot handle" in error.payload
    assert handler.state is ShimState.READY


def test_repeated_handshake_messages_are_ignored_when_ready() -> None:
    handler = ready_handler()
    assert handler.receive(message(T.REGISTERED)) == []
    assert handler.receive(message(T.READY)) == []


@pytest.mark.parametrize("ready", [False, True])
def test_keepalive_is_echoed_in_any_state(ready: bool) -> None:
    """KEEPALIVE is answered (never initiated) and does not change the state."""
    handler = ready_handler() if ready else ShimHandler("asset:abc")
    state = handler.state
    [echo] = sent(handler.receive(message(T.KEEPALIVE)))
    assert echo.type == T.KEEPALIVE
    assert handler.state is state


def test_transactions_start_and_duplicates_are_refused() -> None:
    """Each (channel, txid) runs once; the same id on another channel is another tx."""
    handler = ready_handler()
    first = message(T.TRANSACTION, txid="t1", channel="ch")
    assert handler.receive(first) == [StartTransaction(first)]
    init = message(T.INIT, txid="t1", channel="other")
    assert handler.receive(init) == [StartTransaction(init)]
    [error] = sent(handler.receive(message(T.TRANSACTION, txid="t1", channel="ch")))
    assert error.type == T.ERROR
    assert b"duplicate" in error.payload
    assert handler.running == {("ch", "t1"), ("other", "t1")}


def test_one_request_per_transaction_on_the_wire() -> None:
    """A second request of the same tx waits until the first is answered."""
    handler = ready_handler()
    handler.receive(message(T.TRANSACTION, txid="t1", channel="ch"))
    get = message(T.GET_STATE, txid="t1", channel="ch")
    put = message(T.PUT_STATE, txid="t1", channel="ch")
    assert handler.send_request(1, get) == [SendMessage(get)]
    assert handler.send_request(2, put) == []
    answer = message(T.RESPONSE, txid="t1", channel="ch", payload=b"v")
    assert handler.receive(answer) == [ResolveRequest(1, answer), SendMessage(put)]
    done = message(T.RESPONSE, txid="t1", channel="ch")
    assert handler.receive(done) == [ResolveRequest(2, done)]


def test_transactions_do_not_wait_for_each_other() -> None:
    """Requests of different transactions are all on the wire; answers match by tx."""
    handler = ready_handler()
    for txid in ("t1", "t2"):
        handler.receive(message(T.TRANSACTION, txid=txid, channel="ch"))
    first = message(T.GET_STATE, txid="t1", channel="ch")
    second = message(T.GET_STATE, txid="t2", channel="ch")
    assert handler.send_request(1, first) == [SendMessage(first)]
    assert handler.send_request(2, second) == [SendMessage(second)]
    error = message(T.ERROR, txid="t2", channel="ch", payload=b"denied")
    assert handler.receive(error) == [ResolveRequest(2, error)]
    answer = message(T.RESPONSE, txid="t1", channel="ch")
    assert handler.receive(answer) == [ResolveRequest(1, answer)]


def test_answers_without_a_request_are_ignored() -> None:
    """A RESPONSE for an unknown tx, or with nothing outstanding, changes nothing."""
    handler = ready_handler()
    assert handler.receive(message(T.RESPONSE, txid="nobody", channel="ch")) == []
    handler.receive(message(T.TRANSACTION, txid="t1", channel="ch"))
    assert handler.receive(message(T.RESPONSE, txid="t1", channel="ch")) == []


def test_request_of_a_transaction_not_running_fails() -> None:
    handler = ready_handler()
    [failure] = handler.send_request(7, message(T.GET_STATE, txid="gone", channel="ch"))
    assert isinstance(failure, FailRequest)
    assert failure.request_id == 7
    assert "not running" in failure.reason


def test_finishing_sends_the_reply_and_fails_queued_requests() -> None:
    """COMPLETED ends the tx; requests still queued for it can never be answered."""
    handler = ready_handler()
    handler.receive(message(T.TRANSACTION, txid="t1", channel="ch"))
    handler.send_request(1, message(T.GET_STATE, txid="t1", channel="ch"))
    handler.send_request(2, message(T.GET_STATE, txid="t1", channel="ch"))
    completed = message(T.COMPLETED, txid="t1", channel="ch")
    actions = handler.finish_transaction(completed)
    assert [a.request_id for a in actions if isinstance(a, FailRequest)] == [1, 2]
    assert sent(actions) == [completed]
    assert handler.running == frozenset()


def test_stream_end_fails_every_waiting_request() -> None:
    """After close nothing is sent: pending and new requests fail, replies are dropped."""
    handler = ready_handler()
    handler.receive(message(T.TRANSACTION, txid="t1", channel="ch"))
    handler.send_request(1, message(T.GET_STATE, txid="t1", channel="ch"))
    actions = handler.close()
    assert [type(a) for a in actions] == [FailRequest]
    assert handler.state is ShimState.CLOSED
    [late] = handler.send_request(2, message(T.GET_STATE, txid="t1", channel="ch"))
    assert isinstance(late, FailRequest)
    assert (
        handler.finish_transaction(message(T.COMPLETED, txid="t1", channel="ch")) == []
    )
    assert handler.receive(message(T.TRANSACTION, txid="t2", channel="ch")) == []


def test_a_chaincode_id_is_required() -> None:
    with pytest.raises(ValueError, match="package id"):
        ShimHandler("")
