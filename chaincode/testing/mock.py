"""The in-memory transaction behind `MockStub`, `MockContext` and `MockPeer`.

`MockTransaction` gives each chaincode of a transaction a `TransactionSimulator` over a
shared `MockLedger` and runs INVOKE_CHAINCODE between them; `MockStub` is a real
`ChaincodeStub` whose requests it answers, so contract functions can be called directly
through a `MockContext`:

    ctx = MockContext()
    await AssetContract().CreateAsset(ctx, "asset1", "blue", 5, "Tom", 100)
    ctx.commit()   # a transaction reads committed state; commit to see its writes
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from chaincode.contract import Context
from chaincode.errors import PeerRequestError
from chaincode.shim import messages
from chaincode.shim.execute import Chaincode, execute
from chaincode.shim.stub import ChaincodeStub, Value
from chaincode.shim.transaction import TransactionInfo, transaction_info
from chaincode.testing.identity import make_identity
from chaincode.testing.ledger import BATCH_SIZE, MockLedger, TransactionSimulator
from common.protoutil import (
    SerializedIdentity,
    Timestamp,
    create_proposal,
    serialize_identity,
)
from protos.peer import chaincode_pb2, chaincode_shim_pb2, proposal_pb2

DEFAULT_CHANNEL = "mychannel"
DEFAULT_CHAINCODE = "mockcc"
"""The name a single chaincode gets when none is given."""

_Type = chaincode_shim_pb2.ChaincodeMessage


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
            args=[as_bytes(arg) for arg in args],
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


def as_bytes(value: Value) -> bytes:
    """A state value or argument as bytes (str as UTF-8)."""
    return value.encode() if isinstance(value, str) else bytes(value)
