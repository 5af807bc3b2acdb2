"""Run chaincode without a network: `MockPeer`, `MockStub` and `MockContext`.

`MockPeer` plays the peer for one channel: it builds a real proposal, runs the
chaincode through the same code path as the shim (`chaincode.shim.execute`) with a
`ChaincodeStub` whose requests an in-memory `TransactionSimulator` answers, and commits
the writes of successful submits. `MockStub` is that stub on its own, for calling
contract functions directly through a `MockContext`:

    peer = MockPeer(AssetContract())
    result = await peer.submit("CreateAsset", "asset1", "blue")
    assert result.status == 200

    ctx = peer.context()
    await AssetContract().ReadAsset(ctx, "asset1")
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chaincode.contract import Context, Contract, ContractChaincode
from chaincode.errors import STATUS_ERROR, STATUS_ERROR_THRESHOLD, PeerRequestError
from chaincode.shim import messages
from chaincode.shim.execute import Chaincode, execute
from chaincode.shim.stub import ChaincodeStub, Value
from chaincode.shim.transaction import TransactionInfo, transaction_info
from chaincode.testing.identity import make_identity
from chaincode.testing.ledger import BATCH_SIZE, MockLedger, TransactionSimulator
from common.protoutil import (
    ChaincodeResponse,
    SerializedIdentity,
    Timestamp,
    create_proposal,
    serialize_identity,
)
from protos.peer import (
    chaincode_pb2,
    chaincode_shim_pb2,
    proposal_pb2,
    proposal_response_pb2,
)

DEFAULT_CHANNEL = "mychannel"
DEFAULT_CHAINCODE = "mockcc"

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


class MockTransaction:
    """One transaction across the chaincodes it calls, over one mock ledger."""

    def __init__(
        self,
        ledger: MockLedger,
        info: TransactionInfo,
        *,
        chaincodes: Mapping[str, Chaincode],
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.ledger = ledger
        self.info = info
        self._chaincodes = chaincodes
        self._batch_size = batch_size
        self.simulators: dict[str, TransactionSimulator] = {}

    def requester(self, namespace: str) -> MockRequester:
        """The requester of the chaincode `namespace` within this transaction."""
        if namespace not in self.simulators:
            self.simulators[namespace] = TransactionSimulator(
                self.ledger,
                namespace=namespace,
                tx_id=self.info.tx_id,
                is_init=self.info.is_init,
                timestamp=self.info.timestamp,
                batch_size=self._batch_size,
            )
        return MockRequester(self, namespace)

    def commit(self) -> None:
        """Apply every namespace's writes to the ledger."""
        for simulator in self.simulators.values():
            simulator.commit()

    async def invoke(self, payload: bytes, *, caller: str) -> bytes:
        """Run an INVOKE_CHAINCODE request; the marshaled COMPLETED or ERROR message.

        Raises:
            PeerRequestError: the target is unknown, on another channel, or the caller.
        """
        spec = messages.parse(
            chaincode_pb2.ChaincodeSpec, payload, what="ChaincodeSpec"
        )
        name, _, channel = spec.chaincode_id.name.partition("/")
        if channel and channel != self.info.channel_id:
            raise PeerRequestError(
                f"the mock ledger holds channel {self.info.channel_id} only",
                request="INVOKE_CHAINCODE",
            )
        chaincode = self._chaincodes.get(name)
        if chaincode is None or name == caller:
            raise PeerRequestError(
                f"chaincode {name!r} cannot be invoked from {caller!r}",
                request="INVOKE_CHAINCODE",
            )
        message = _invocation_message(
            self.info, args=list(spec.input.args), channel_id=self.info.channel_id
        )
        reply = await execute(chaincode, message, self.requester(name))
        return reply.SerializeToString()


class MockRequester:
    """Answers one chaincode's requests from its simulator (the `PeerRequester` seam)."""

    def __init__(self, transaction: MockTransaction, namespace: str) -> None:
        self._transaction = transaction
        self._namespace = namespace

    async def request(self, message_type: int, payload: bytes) -> bytes:
        if message_type == _Type.INVOKE_CHAINCODE:
            return await self._transaction.invoke(payload, caller=self._namespace)
        info = self._transaction.info
        message = messages.request_message(
            message_type, payload, key=(info.channel_id, info.tx_id)
        )
        reply = self._transaction.simulators[self._namespace].handle(message)
        if reply.type == _Type.ERROR:
            raise PeerRequestError(
                reply.payload.decode(errors="replace"),
                request=messages.type_name(message_type),
            )
        return reply.payload


class MockStub(ChaincodeStub):
    """A `ChaincodeStub` over a `MockLedger`; `commit()` applies its writes."""

    def __init__(
        self,
        ledger: MockLedger | None = None,
        *,
        args: Sequence[Value] = (),
        chaincode: str = DEFAULT_CHAINCODE,
        channel_id: str = DEFAULT_CHANNEL,
        creator: SerializedIdentity | None = None,
        transient: Mapping[str, bytes] | None = None,
        is_init: bool = False,
        timestamp: Timestamp | None = None,
        chaincodes: Mapping[str, Chaincode] | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        message = transaction_message(
            channel_id=channel_id,
            chaincode=chaincode,
            args=[_as_bytes(arg) for arg in args],
            creator=creator or make_identity(),
            transient=transient,
            is_init=is_init,
            timestamp=timestamp,
        )
        self.ledger = ledger if ledger is not None else MockLedger()
        self.transaction = MockTransaction(
            self.ledger,
            transaction_info(message),
            chaincodes=chaincodes or {},
            batch_size=batch_size,
        )
        super().__init__(self.transaction.requester(chaincode), self.transaction.info)

    def commit(self) -> None:
        """Apply this transaction's writes (and those of chaincodes it called)."""
        self.transaction.commit()


class MockContext(Context):
    """A `Context` over a `MockStub`, for calling contract functions directly."""

    stub: MockStub

    def __init__(self, stub: MockStub | None = None) -> None:
        super().__init__(stub if stub is not None else MockStub())

    def commit(self) -> None:
        """Apply the writes made so far; later reads see them."""
        self.stub.commit()


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
            args=[function.encode(), *(_as_bytes(arg) for arg in args)],
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


def transaction_message(
    *,
    channel_id: str,
    chaincode: str,
    args: Sequence[bytes],
    creator: SerializedIdentity,
    transient: Mapping[str, bytes] | None = None,
    is_init: bool = False,
    timestamp: Timestamp | None = None,
) -> chaincode_shim_pb2.ChaincodeMessage:
    """The TRANSACTION message a peer sends for a client's (unsigned) proposal."""
    created = create_proposal(
        channel_id=channel_id,
        chaincode_name=chaincode,
        args=args,
        creator=serialize_identity(creator.mspid, creator.id_bytes),
        transient=transient,
        timestamp=timestamp,
        is_init=is_init,
    )
    proposal = proposal_pb2.SignedProposal(proposal_bytes=created.proposal_bytes)
    chaincode_input = chaincode_pb2.ChaincodeInput(args=args, is_init=is_init)
    return chaincode_shim_pb2.ChaincodeMessage(
        type=_Type.TRANSACTION,
        payload=chaincode_input.SerializeToString(),
        txid=created.tx_id,
        channel_id=channel_id,
        proposal=proposal,
    )


def _invocation_message(
    info: TransactionInfo, *, args: list[bytes], channel_id: str
) -> chaincode_shim_pb2.ChaincodeMessage:
    """The TRANSACTION a peer sends to a chaincode called by another in the same tx."""
    chaincode_input = chaincode_pb2.ChaincodeInput(args=args)
    message = chaincode_shim_pb2.ChaincodeMessage(
        type=_Type.TRANSACTION,
        payload=chaincode_input.SerializeToString(),
        txid=info.tx_id,
        channel_id=channel_id,
    )
    if info.signed_proposal is not None:
        message.proposal.CopyFrom(info.signed_proposal)
    return message


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


def _as_bytes(value: Value) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)
