"""Running a chaincode for a proposal: the entry point the endorser calls.

Execute phase. `ChaincodeExecutor.execute` does what Fabric's chaincode support
does for one proposal:

1. ask the `Lifecycle` which package serves the chaincode on the channel (it
   reads the committed definition through the transaction's simulator, so that
   read lands in the rwset) and decide TRANSACTION or INIT: when the
   definition requires init, the first call must be an init, which writes the
   version under the namespace's reserved "initialized" key;
2. wait (bounded) for that package's handler to be ready;
3. send TRANSACTION/INIT with the proposal's ChaincodeInput (decorations
   included), tx id, channel and SignedProposal, and wait up to the execution
   timeout for COMPLETED;
4. return the chaincode's Response, its event (chaincode id and tx id filled
   in) and the simulation results.

It is also the `Invoker` for INVOKE_CHAINCODE: the callee runs on the caller's
simulator (one rwset for the whole transaction), without decorations and its
events dropped; a call to another channel runs on a simulator of that channel
whose results are thrown away, so it can only read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from common.errors import MedledgerError
from common.protoutil import ChaincodeResponse, ParsedProposal
from peer.chaincode.context import CollectionAccess, TransactionContext
from peer.chaincode.handler import ChaincodeHandler
from peer.chaincode.registry import ChaincodeRegistry
from peer.chaincode.requests import decode_payload
from peer.errors import ChaincodeError, ChaincodeFailed
from peer.simulator import SimulationResults, TxSimulator
from protos.peer import (
    chaincode_event_pb2,
    chaincode_pb2,
    chaincode_shim_pb2,
    proposal_pb2,
    proposal_response_pb2,
)

__all__ = [
    "INITIALIZED_KEY",
    "ChaincodeExecutor",
    "ChaincodeInfo",
    "ExecutionResult",
    "Lifecycle",
    "StaticLifecycle",
    "parse_chaincode_name",
]

_LOG = logging.getLogger(__name__)

Message = chaincode_shim_pb2.ChaincodeMessage

INITIALIZED_KEY = "\x00\U0010ffffinitialized"
"""Where a chaincode's initialized version is kept in its own namespace."""

DEFAULT_EXECUTE_TIMEOUT_S = 30.0
DEFAULT_STARTUP_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class ChaincodeInfo:
    """What the committed definition says about running a chaincode."""

    package_id: str
    version: str
    enforce_init: bool = False


class Lifecycle(Protocol):
    """The chaincode definitions of the channels (`_lifecycle`)."""

    def chaincode_info(
        self, channel_id: str, chaincode_name: str, simulator: TxSimulator
    ) -> ChaincodeInfo:
        """The package and version serving the chaincode; raise ChaincodeError if none."""
        ...


class StaticLifecycle:
    """A fixed map of chaincode name → info, the same on every channel (tests, tools)."""

    def __init__(self, chaincodes: Mapping[str, ChaincodeInfo]) -> None:
        self._chaincodes = dict(chaincodes)

    def chaincode_info(
        self, channel_id: str, chaincode_name: str, simulator: TxSimulator
    ) -> ChaincodeInfo:
        info = self._chaincodes.get(chaincode_name)
        if info is None:
            raise ChaincodeError(
                f"chaincode {chaincode_name} is not defined on channel {channel_id}"
            )
        return info


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """A completed chaincode run: what goes into the ChaincodeAction."""

    response: ChaincodeResponse
    events: bytes
    """Marshaled ChaincodeEvent (b"" when the chaincode set none)."""
    simulation: SimulationResults
    chaincode_name: str
    chaincode_version: str


SimulatorFactory = Callable[[str, str], TxSimulator]
"""(channel id, tx id) → a new simulator on that channel, for cross-channel calls."""

ChaincodeCallCheck = Callable[[str, ParsedProposal | None], None]
"""Raise if the proposal's creator may not call chaincode on the channel (ACL)."""

CollectionAccessOf = Callable[[ParsedProposal], CollectionAccess | None]
"""A proposal → its creator's collection access (memberOnlyRead/Write), or None."""


def parse_chaincode_name(name: str) -> tuple[str, str]:
    """Split an INVOKE_CHAINCODE target "name[:version][/channel]" into (name, channel)."""
    target, _, channel = name.partition("/")
    chaincode, _, _ = target.partition(":")
    return chaincode, channel


class ChaincodeExecutor:
    """Runs chaincodes for proposals and for chaincode-to-chaincode calls."""

    def __init__(
        self,
        registry: ChaincodeRegistry,
        lifecycle: Lifecycle,
        *,
        execute_timeout_s: float = DEFAULT_EXECUTE_TIMEOUT_S,
        startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S,
        simulators: SimulatorFactory | None = None,
        call_check: ChaincodeCallCheck | None = None,
        collection_access: CollectionAccessOf | None = None,
    ) -> None:
        self.registry = registry
        self._lifecycle = lifecycle
        self.execute_timeout_s = execute_timeout_s
        self._startup_timeout_s = startup_timeout_s
        self._simulators = simulators
        self._call_check = call_check
        self._collection_access = collection_access

    async def execute(
        self,
        proposal: ParsedProposal,
        simulator: TxSimulator,
        *,
        chaincode_name: str | None = None,
        collection_access: CollectionAccess | None = None,
        key_level_endorsement: bool = True,
        purge_enabled: bool = True,
        info: ChaincodeInfo | None = None,
    ) -> ExecutionResult:
        """Run the proposal's chaincode on `simulator` and collect the results.

        The caller owns the simulator (and calls its `done`). `info` is what the
        lifecycle says about the chaincode when the caller has just asked it through
        the same simulator (the endorser does); without it the lifecycle is asked here.

        Raises:
            ChaincodeError: not defined, not initialized as required, not running,
                timed out (ChaincodeTimeout), stream ended (ChaincodeUnavailable) or
                answered ERROR (ChaincodeFailed).
        """
        name = chaincode_name or proposal.chaincode_id.name
        if collection_access is None and self._collection_access is not None:
            collection_access = self._collection_access(proposal)
        chaincode_input = chaincode_pb2.ChaincodeInput(
            args=list(proposal.args),
            decorations=dict(proposal.decorations),
            is_init=proposal.is_init,
        )
        signed = proposal_pb2.SignedProposal(
            proposal_bytes=proposal.proposal_bytes, signature=proposal.signature
        )
        context = TransactionContext(
            channel_id=proposal.channel_id,
            tx_id=proposal.tx_id,
            namespace=name,
            simulator=simulator,
            signed_proposal=signed,
            proposal=proposal,
            collection_access=collection_access,
            key_level_endorsement=key_level_endorsement,
            purge_enabled=purge_enabled,
        )
        info, answer = await self._run(context, chaincode_input, info)
        response, events = _completed(answer, name, proposal.tx_id)
        return ExecutionResult(
            response=response,
            events=events,
            simulation=simulator.results(),
            chaincode_name=name,
            chaincode_version=info.version,
        )

    async def invoke_chaincode(
        self, caller: TransactionContext, spec: chaincode_pb2.ChaincodeSpec
    ) -> Message:
        """Run the callee of an INVOKE_CHAINCODE request; its COMPLETED or ERROR message."""
        name, channel = parse_chaincode_name(spec.chaincode_id.name)
        channel = channel or caller.channel_id
        if self._call_check is not None:
            self._call_check(channel, caller.proposal)
        callee_input = chaincode_pb2.ChaincodeInput(
            args=list(spec.input.args), is_init=spec.input.is_init
        )
        if channel == caller.channel_id:
            context = self._callee_context(caller, name, channel, caller.simulator)
            return (await self._run(context, callee_input, same_tx=True))[1]
        if self._simulators is None:
            raise ChaincodeError(f"failed to find the ledger of channel {channel}")
        simulator = self._simulators(channel, caller.tx_id)
        try:
            context = self._callee_context(caller, name, channel, simulator)
            return (await self._run(context, callee_input, same_tx=True))[1]
        finally:
            simulator.done()

    # ------------------------------------------------------------ helpers

    async def _run(
        self,
        context: TransactionContext,
        chaincode_input: chaincode_pb2.ChaincodeInput,
        known: ChaincodeInfo | None = None,
        *,
        same_tx: bool = False,
    ) -> tuple[ChaincodeInfo, Message]:
        """`same_tx`: a call from a chaincode, which may meet its own transaction."""
        info, message_type = self._check_invocation(context, chaincode_input, known)
        context.is_init = message_type == Message.INIT
        key = context.key if same_tx else None
        handler = await self._handler(info.package_id, key)
        message = Message(
            type=message_type,  # type: ignore[arg-type]
            payload=chaincode_input.SerializeToString(),
            txid=context.tx_id,
            channel_id=context.channel_id,
        )
        if context.signed_proposal is not None:
            message.proposal.CopyFrom(context.signed_proposal)
        answer = await handler.execute(
            context, message, timeout_s=self.execute_timeout_s
        )
        return info, answer

    def _check_invocation(
        self,
        context: TransactionContext,
        chaincode_input: chaincode_pb2.ChaincodeInput,
        known: ChaincodeInfo | None,
    ) -> tuple[ChaincodeInfo, int]:
        """Fabric's CheckInvocation: which package, and TRANSACTION or INIT."""
        name, simulator = context.namespace, context.simulator
        info = known or self._lifecycle.chaincode_info(
            context.channel_id, name, simulator
        )
        needs_init = False
        if info.enforce_init:
            initialized = simulator.get_state(name, INITIALIZED_KEY)
            needs_init = initialized != info.version.encode()
        if chaincode_input.is_init:
            if not info.enforce_init:
                raise ChaincodeError(
                    f"chaincode {name} does not require initialization but was called as init"
                )
            if not needs_init:
                raise ChaincodeError(
                    f"chaincode {name} is already initialized but called as init"
                )
            simulator.set_state(name, INITIALIZED_KEY, info.version.encode())
            return info, Message.INIT
        if needs_init:
            raise ChaincodeError(
                f"chaincode {name} has not been initialized for this version, "
                "must call as init first"
            )
        return info, Message.TRANSACTION

    async def _handler(
        self, package_id: str, key: tuple[str, str] | None
    ) -> ChaincodeHandler:
        handler = self.registry.handler(package_id, key)
        if handler is not None:
            return handler
        return await self.registry.wait_ready(
            package_id, timeout_s=self._startup_timeout_s
        )

    @staticmethod
    def _callee_context(
        caller: TransactionContext, name: str, channel: str, simulator: TxSimulator
    ) -> TransactionContext:
        return TransactionContext(
            channel_id=channel,
            tx_id=caller.tx_id,
            namespace=name,
            simulator=simulator,
            signed_proposal=caller.signed_proposal,
            proposal=caller.proposal,
            collection_access=caller.collection_access,
            key_level_endorsement=caller.key_level_endorsement,
            purge_enabled=caller.purge_enabled,
        )


def _completed(
    answer: Message, name: str, tx_id: str
) -> tuple[ChaincodeResponse, bytes]:
    """The Response and marshaled event of a COMPLETED message; ERROR raises."""
    if answer.type == Message.ERROR:
        text = answer.payload.decode("utf-8", errors="replace")
        raise ChaincodeFailed(f"transaction returned with failure: {text}")
    if answer.type != Message.COMPLETED:
        raise ChaincodeError(
            f"unexpected response type {answer.type} for transaction {tx_id}"
        )
    try:
        response = decode_payload(proposal_response_pb2.Response, answer.payload)
    except MedledgerError as error:
        raise ChaincodeError(
            f"the response of transaction {tx_id} does not decode: {error}"
        ) from error
    events = b""
    if answer.HasField("chaincode_event"):
        event = chaincode_event_pb2.ChaincodeEvent()
        event.CopyFrom(answer.chaincode_event)
        event.chaincode_id = name
        event.tx_id = tx_id
        events = event.SerializeToString()
    return ChaincodeResponse(
        response.status, response.message, response.payload
    ), events
