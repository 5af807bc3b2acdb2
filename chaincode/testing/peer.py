"""`MockPeer`: play the peer of one channel for chaincode under test.

It builds a real (unsigned) proposal, runs the chaincode through the same code path as
the shim (`chaincode.shim.execute`) with a stub answered in memory, and commits the
writes of successful submits:

    peer = MockPeer(AssetContract())
    result = await peer.submit("CreateAsset", "asset1", "blue", "5", "Tom", "100")
    assert result.status == 200
    assert (await peer.evaluate("ReadAsset", "asset1")).json()["Owner"] == "Tom"
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chaincode.contract import Contract, ContractChaincode
from chaincode.errors import STATUS_ERROR, STATUS_ERROR_THRESHOLD
from chaincode.shim import messages
from chaincode.shim.execute import Chaincode, execute
from chaincode.shim.stub import Value
from chaincode.shim.transaction import transaction_info
from chaincode.testing.identity import make_identity
from chaincode.testing.ledger import BATCH_SIZE, MockLedger
from chaincode.testing.mock import (
    DEFAULT_CHAINCODE,
    DEFAULT_CHANNEL,
    MockContext,
    MockStub,
    MockTransaction,
    as_bytes,
    transaction_message,
)
from common.protoutil import ChaincodeResponse, SerializedIdentity
from protos.peer import chaincode_shim_pb2, proposal_response_pb2

_Type = chaincode_shim_pb2.ChaincodeMessage


@dataclass(frozen=True, slots=True)
class Event:
    """The chaincode event a transaction set."""

    name: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class InvocationResult:
    """What the client of a mock invocation gets back."""

    tx_id: str
    response: ChaincodeResponse
    event: Event | None = None

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def payload(self) -> bytes:
        return self.response.payload

    @property
    def message(self) -> str:
        return self.response.message

    def json(self) -> object:
        """The payload decoded as JSON."""
        return json.loads(self.response.payload)


class MockPeer:
    """Plays the peer of one channel for chaincodes under test (see the module docstring).

    `chaincodes` is one chaincode (named "mockcc"), a contract, a list of contracts, or
    a mapping of names to chaincodes that may invoke each other.
    """

    def __init__(
        self,
        chaincodes: Chaincode | Contract | Sequence[Contract] | Mapping[str, Chaincode],
        *,
        ledger: MockLedger | None = None,
        channel_id: str = DEFAULT_CHANNEL,
        creator: SerializedIdentity | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.chaincodes = _named_chaincodes(chaincodes)
        self.default_chaincode = next(iter(self.chaincodes))
        self.ledger = ledger if ledger is not None else MockLedger()
        self.channel_id = channel_id
        self.creator = creator
        self.batch_size = batch_size

    async def submit(
        self,
        function: str,
        *args: Value,
        chaincode: str | None = None,
        creator: SerializedIdentity | None = None,
        transient: Mapping[str, bytes] | None = None,
        is_init: bool = False,
    ) -> InvocationResult:
        """Invoke and, when the status is below 400, commit the writes."""
        transaction, reply = await self._run(
            function, args, chaincode, creator, transient, is_init=is_init
        )
        result = invocation_result(transaction.info.tx_id, reply)
        if result.status < STATUS_ERROR_THRESHOLD:
            transaction.commit()
        return result

    async def evaluate(
        self,
        function: str,
        *args: Value,
        chaincode: str | None = None,
        creator: SerializedIdentity | None = None,
        transient: Mapping[str, bytes] | None = None,
    ) -> InvocationResult:
        """Invoke without committing anything."""
        transaction, reply = await self._run(
            function, args, chaincode, creator, transient
        )
        return invocation_result(transaction.info.tx_id, reply)

    def stub(
        self,
        *args: Value,
        chaincode: str | None = None,
        creator: SerializedIdentity | None = None,
        transient: Mapping[str, bytes] | None = None,
    ) -> MockStub:
        """A stub for a new transaction on this peer's ledger."""
        return MockStub(
            self.ledger,
            args=args,
            chaincode=chaincode or self.default_chaincode,
            channel_id=self.channel_id,
            creator=creator or self.creator,
            transient=transient,
            chaincodes=self.chaincodes,
            batch_size=self.batch_size,
        )

    def context(
        self,
        *args: Value,
        creator: SerializedIdentity | None = None,
        transient: Mapping[str, bytes] | None = None,
    ) -> MockContext:
        """A context for calling contract functions directly in a new transaction."""
        return MockContext(self.stub(*args, creator=creator, transient=transient))

    async def _run(
        self,
        function: str,
        args: Sequence[Value],
        chaincode: str | None,
        creator: SerializedIdentity | None,
        transient: Mapping[str, bytes] | None,
        *,
        is_init: bool = False,
    ) -> tuple[MockTransaction, chaincode_shim_pb2.ChaincodeMessage]:
        name = chaincode or self.default_chaincode
        message = transaction_message(
            channel_id=self.channel_id,
            chaincode=name,
            args=[function.encode(), *(as_bytes(arg) for arg in args)],
            creator=creator or self.creator or make_identity(),
            transient=transient,
            is_init=is_init,
        )
        transaction = MockTransaction(
            self.ledger,
            transaction_info(message),
            chaincodes=self.chaincodes,
            batch_size=self.batch_size,
        )
        reply = await execute(
            self.chaincodes[name], message, transaction.requester(name)
        )
        return transaction, reply


def invocation_result(
    tx_id: str, reply: chaincode_shim_pb2.ChaincodeMessage
) -> InvocationResult:
    if reply.type != _Type.COMPLETED:
        text = reply.payload.decode(errors="replace")
        return InvocationResult(
            tx_id, ChaincodeResponse(status=STATUS_ERROR, message=text)
        )
    response = messages.parse(
        proposal_response_pb2.Response, reply.payload, what="response"
    )
    event = None
    if reply.HasField("chaincode_event"):
        event = Event(reply.chaincode_event.event_name, reply.chaincode_event.payload)
    return InvocationResult(
        tx_id,
        ChaincodeResponse(
            status=response.status, message=response.message, payload=response.payload
        ),
        event,
    )


def _named_chaincodes(
    chaincodes: Chaincode | Contract | Sequence[Contract] | Mapping[str, Chaincode],
) -> dict[str, Chaincode]:
    if isinstance(chaincodes, Mapping):
        if not chaincodes:
            raise ValueError("MockPeer needs at least one chaincode")
        return dict(chaincodes)
    if isinstance(chaincodes, Contract):
        return {DEFAULT_CHAINCODE: ContractChaincode([chaincodes])}
    if isinstance(chaincodes, Sequence):
        return {DEFAULT_CHAINCODE: ContractChaincode(list(chaincodes))}
    return {DEFAULT_CHAINCODE: chaincodes}
