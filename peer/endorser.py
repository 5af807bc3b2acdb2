"""The endorser: check a signed proposal, simulate it, sign the result (ProcessProposal).

Execute phase. `Endorser.process_proposal` follows Fabric 2.5's endorser in order:

1. unpack every layer (`parse_signed_proposal`)                     MalformedProposal
2. find the channel; an unknown one is a status-500 response, not an error; a
   proposal without a channel is judged by the peer's own MSP
3. header type ENDORSER_TRANSACTION (CONFIG tolerated), epoch 0, nonce and creator
   present, tx id = SHA-256(nonce ‖ creator), signature present     MalformedProposal
4. the creator deserialises with the channel's MSPs and is valid,
   the signature over the proposal bytes verifies                  AccessDenied
5. the tx id is not in the ledger                                   DuplicateTransaction
6. for application chaincode, the creator satisfies the ACL `peer/Propose`
   (/Channel/Application/Writers)                                    AccessDenied
7. the chaincode is defined (committed `_lifecycle` definition) and installed, then
   runs on a simulator of the channel; an execution failure is a status-500 response
8. status ≥ 500: response and unsigned payload; 400–499: response only; below 400:
   the private write sets go to the transient store, and the response is signed
   (`ChaincodeAction.chaincode_id` = name and the definition's version) with its
   ChaincodeInterest.

Raised `ProposalRejected` errors (steps 1–6) become gRPC errors in the service;
everything later is a ProposalResponse, as in Fabric.

Like Fabric's MSP cache, the endorser remembers creators it has validated (step 4)
and found to satisfy `peer/Propose` (step 6): the next proposal of the same creator
bytes under the same MSP manager and channel config skips both until the certificate
expires (a config block brings new objects, so revocations and policy changes count
at once). The signature is verified on every proposal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from common.channelconfig import ChannelConfig
from common.errors import (
    CryptoError,
    IdentityError,
    MedledgerError,
    PolicyError,
    WireError,
)
from common.msp import Identity, MspManager, SigningIdentity
from common.protoutil import (
    ChaincodeId,
    ChaincodeResponse,
    ParsedProposal,
    compute_tx_id,
    create_proposal_response,
    parse_signed_proposal,
    proposal_hash_of,
)
from peer.chaincode.execute import ChaincodeInfo
from peer.channels import PeerChannel
from peer.errors import (
    AccessDenied,
    ChaincodeError,
    DuplicateTransaction,
    MalformedProposal,
)
from peer.interest import chaincode_interest_bytes
from peer.lifecycle import LIFECYCLE_CHAINCODE_VERSION
from peer.lifecycle_source import EndorsementInfo
from peer.scc import SccInvocation, SystemChaincode
from peer.simulator import SimulationResults, TxSimulator
from protos.common import common_pb2
from protos.peer import proposal_pb2, proposal_response_pb2
from protos.transientstore import transientstore_pb2

__all__ = [
    "ChaincodeRunner",
    "Endorser",
    "PrivateDataHook",
    "SimulatingSystemChaincode",
    "check_header",
    "check_proposal",
    "error_response",
]

_LOG = logging.getLogger(__name__)

STATUS_ERROR = 500
STATUS_ERROR_THRESHOLD = 400
PROPOSE_RESOURCE = "peer/Propose"
_ACCEPTED_TYPES = (common_pb2.ENDORSER_TRANSACTION, common_pb2.CONFIG)

ProposalResponse = proposal_response_pb2.ProposalResponse


class ChaincodeRunner(Protocol):
    """What the endorser needs of chaincode support (`ChaincodeExecutor`).

    `info` is the package, version and init rule the endorser has just read from the
    committed definition through the same simulator, so the runner need not read it
    again.
    """

    async def execute(
        self,
        proposal: ParsedProposal,
        simulator: TxSimulator,
        *,
        info: ChaincodeInfo | None = None,
    ) -> _Execution: ...


class _Execution(Protocol):
    @property
    def response(self) -> ChaincodeResponse: ...
    @property
    def events(self) -> bytes: ...
    @property
    def simulation(self) -> SimulationResults: ...


@runtime_checkable
class SimulatingSystemChaincode(SystemChaincode, Protocol):
    """A system chaincode whose channel proposals run on a simulator (`_lifecycle`).

    Its read-write set is endorsed like a user chaincode's and its private writes
    (an organisation's approvals) go through the private data hook.
    """

    async def invoke_simulated(
        self, invocation: SccInvocation, simulator: TxSimulator
    ) -> ChaincodeResponse: ...


class DefinitionSource(Protocol):
    """Committed definitions and local packages (`CommittedLifecycle`)."""

    def endorsement_info(
        self, channel_id: str, chaincode_name: str, simulator: TxSimulator
    ) -> EndorsementInfo: ...


PrivateDataHook = Callable[[PeerChannel, str, bytes], None]
"""(channel, tx id, TxPvtReadWriteSetWithConfigInfo bytes): disseminate before signing.

Dissemination to other member peers (requiredPeerCount/maxPeerCount) is issue 7;
until then the default stores the write sets in this peer's transient store only.
"""


KNOWN_CREATORS = 4096
"""Validated creators remembered (the oldest is forgotten first)."""


@dataclass(slots=True)
class _KnownCreator:
    """A creator validated under `msps`, valid until `expires` (POSIX seconds)."""

    msps: MspManager
    identity: Identity
    expires: float
    proposer_under: ChannelConfig | None = None
    """The channel config under which it satisfied `peer/Propose`, if it did."""


@dataclass(frozen=True, slots=True)
class _Simulated:
    response: ChaincodeResponse
    events: bytes
    results: SimulationResults | None
    version: str


class Endorser:
    """ProcessProposal for this peer's channels (see the module docstring)."""

    def __init__(
        self,
        *,
        channels: Callable[[str], PeerChannel | None],
        local_msp: MspManager,
        signer: SigningIdentity,
        runner: ChaincodeRunner,
        definitions: DefinitionSource,
        system_chaincodes: Mapping[str, SystemChaincode],
        private_data: PrivateDataHook | None = None,
    ) -> None:
        self._channels = channels
        self._local_msp = local_msp
        self._signer = signer
        self._runner = runner
        self._definitions = definitions
        self._system = dict(system_chaincodes)
        self._private_data = private_data or _store_in_transient_store
        self._known: dict[bytes, _KnownCreator] = {}

    async def process_proposal(
        self, signed: proposal_pb2.SignedProposal | bytes
    ) -> ProposalResponse:
        """Endorse one signed proposal.

        Raises:
            ProposalRejected: a check before simulation failed (steps 1–6).
        """
        proposal = _unpack(signed)
        channel: PeerChannel | None = None
        msps = self._local_msp
        if proposal.channel_id:
            channel = self._channels(proposal.channel_id)
            if channel is None:
                return error_response(f"channel '{proposal.channel_id}' not found")
            msps = channel.config.msp_manager
        check_header(proposal)
        known = self._known_creator(proposal, msps)
        _verify_signature(proposal, known.identity)
        if channel is not None:
            self._check_channel_rules(proposal, channel, known)
        try:
            return await self._endorse(proposal, channel, known.identity)
        except (ChaincodeError, WireError) as error:
            _LOG.info("endorsement failed tx_id=%s: %s", proposal.tx_id, error)
            return error_response(str(error))

    def _known_creator(
        self, proposal: ParsedProposal, msps: MspManager
    ) -> _KnownCreator:
        """The creator, validated now or before under the same MSPs (AccessDenied)."""
        known = self._known.get(proposal.creator)
        if known is not None and known.msps is msps and time.time() < known.expires:
            return known
        identity = _valid_creator(proposal, msps)
        expires = identity.certificate.not_after.timestamp()
        known = _KnownCreator(msps, identity, expires)
        if len(self._known) >= KNOWN_CREATORS:
            self._known.pop(next(iter(self._known)), None)
        self._known[proposal.creator] = known
        return known

    def _check_channel_rules(
        self, proposal: ParsedProposal, channel: PeerChannel, known: _KnownCreator
    ) -> None:
        if channel.has_tx(proposal.tx_id):
            raise DuplicateTransaction(
                f"duplicate transaction found [{proposal.tx_id}]. "
                f"Creator [{proposal.creator.hex()}]",
                tx_id=proposal.tx_id,
            )
        if proposal.chaincode_id.name in self._system:
            return
        config = channel.config
        if known.proposer_under is config:
            return
        try:
            channel.check_acl(PROPOSE_RESOURCE, known.identity)
        except PolicyError as error:
            raise AccessDenied(
                f"access denied for [{PROPOSE_RESOURCE}][{channel.channel_id}]: {error}"
            ) from None
        known.proposer_under = config

    async def _endorse(
        self, proposal: ParsedProposal, channel: PeerChannel | None, creator: Identity
    ) -> ProposalResponse:
        name = proposal.chaincode_id.name
        system = self._system.get(name)
        if system is not None and channel is not None:
            simulated = await self._simulate_system(system, proposal, channel, creator)
        elif system is not None:
            simulated = _Simulated(
                await system.invoke(SccInvocation(proposal, creator)),
                b"",
                None,
                LIFECYCLE_CHAINCODE_VERSION,
            )
        elif channel is None:
            raise ChaincodeError(
                f"make sure the chaincode {name} has been successfully defined on "
                "channel  and try again: a proposal without a channel can only call "
                "system chaincodes"
            )
        else:
            simulated = await self._simulate(proposal, channel)
        return self._respond(proposal, channel, simulated)

    async def _simulate(
        self, proposal: ParsedProposal, channel: PeerChannel
    ) -> _Simulated:
        name = proposal.chaincode_id.name
        simulator = channel.open_simulator(proposal.tx_id)
        try:
            try:
                info = self._definitions.endorsement_info(
                    channel.channel_id, name, simulator
                )
            except ChaincodeError as error:
                raise ChaincodeError(
                    f"make sure the chaincode {name} has been successfully defined on "
                    f"channel {channel.channel_id} and try again: {error}"
                ) from error
            known = ChaincodeInfo(
                package_id=info.package_id,
                version=info.definition.version,
                enforce_init=info.definition.init_required,
            )
            try:
                execution = await self._runner.execute(proposal, simulator, info=known)
            except ChaincodeError as error:
                raise ChaincodeError(
                    f"error in simulation: failed to execute transaction "
                    f"{proposal.tx_id}: {error}"
                ) from error
        finally:
            simulator.done()
        response = execution.response
        events = execution.events if response.status < STATUS_ERROR_THRESHOLD else b""
        simulated = _Simulated(
            response, events, execution.simulation, info.definition.version
        )
        if (
            response.status < STATUS_ERROR_THRESHOLD
            and execution.simulation.private_rwset
        ):
            await self._distribute_private_data(proposal, channel, info, simulated)
        return simulated

    async def _simulate_system(
        self,
        system: SystemChaincode,
        proposal: ParsedProposal,
        channel: PeerChannel,
        creator: Identity,
    ) -> _Simulated:
        """A system chaincode on a channel; on a simulator when it takes one."""
        invocation = SccInvocation(proposal, creator)
        if not isinstance(system, SimulatingSystemChaincode):
            response = await system.invoke(invocation)
            return _Simulated(response, b"", None, LIFECYCLE_CHAINCODE_VERSION)
        simulator = channel.open_simulator(proposal.tx_id)
        try:
            response = await system.invoke_simulated(invocation, simulator)
            ok = response.status < STATUS_ERROR_THRESHOLD
            results = simulator.results() if ok else None
        finally:
            simulator.done()
        if results is not None and results.private_rwset:
            data = transientstore_pb2.TxPvtReadWriteSetWithConfigInfo(
                endorsed_at=channel.height()
            )
            data.pvt_rwset.ParseFromString(results.private_rwset)
            await asyncio.to_thread(
                self._private_data,
                channel,
                proposal.tx_id,
                data.SerializeToString(deterministic=True),
            )
        return _Simulated(response, b"", results, LIFECYCLE_CHAINCODE_VERSION)

    async def _distribute_private_data(
        self,
        proposal: ParsedProposal,
        channel: PeerChannel,
        info: EndorsementInfo,
        simulated: _Simulated,
    ) -> None:
        results = simulated.results
        if results is None or not results.private_rwset:
            return
        data = _private_data_with_config(results, info, height=channel.height())
        # Issue 7 replaces this hook with dissemination to the collections' member peers
        # (requiredPeerCount before signing, maxPeerCount attempts) plus local storage.
        await asyncio.to_thread(self._private_data, channel, proposal.tx_id, data)

    def _respond(
        self,
        proposal: ParsedProposal,
        channel: PeerChannel | None,
        simulated: _Simulated,
    ) -> ProposalResponse:
        response = simulated.response
        if proposal.channel_id == "" and response.status < STATUS_ERROR:
            return ProposalResponse(response=_response_message(response))
        if STATUS_ERROR_THRESHOLD <= response.status < STATUS_ERROR:
            return ProposalResponse(response=_response_message(response))
        results = simulated.results
        signed = create_proposal_response(
            proposal_hash=proposal_hash_of(proposal),
            results=b"" if results is None else results.public_rwset,
            response=response,
            chaincode_id=ChaincodeId(proposal.chaincode_id.name, simulated.version),
            endorser=self._signer.serialized,
            signer=self._signer.sign if response.status < STATUS_ERROR else _no_sign,
            events=simulated.events,
            interest=None if results is None else chaincode_interest_bytes(results),
        )
        if response.status >= STATUS_ERROR:
            signed.ClearField("endorsement")
            signed.version = 0
        return signed


def check_proposal(proposal: ParsedProposal, msps: MspManager) -> Identity:
    """Fabric's proposal validation (steps 3–4); returns the verified creator.

    Raises:
        MalformedProposal: wrong header type or epoch, missing nonce, creator or
            signature, or a tx id that is not SHA-256(nonce ‖ creator).
        AccessDenied: the creator is unknown or invalid, or the signature fails.
    """
    check_header(proposal)
    creator = _valid_creator(proposal, msps)
    _verify_signature(proposal, creator)
    return creator


def check_header(proposal: ParsedProposal) -> None:
    """Step 3: header type, epoch, nonce, creator, tx id and signature present.

    Raises:
        MalformedProposal: what is wrong, in Fabric's words.
    """
    header = proposal.channel_header
    if header.type not in _ACCEPTED_TYPES:
        raise MalformedProposal(f"invalid header type {header.type}")
    if header.epoch != 0:
        raise MalformedProposal("epoch is non-zero")
    if not proposal.nonce:
        raise MalformedProposal("nonce is empty")
    if not proposal.creator:
        raise MalformedProposal("creator is empty")
    expected = compute_tx_id(nonce=proposal.nonce, creator=proposal.creator)
    if proposal.tx_id != expected:
        raise MalformedProposal(
            f"incorrectly computed txid '{proposal.tx_id}' -- expected '{expected}'"
        )
    if not proposal.signature:
        raise MalformedProposal("empty signature bytes")


def error_response(message: str) -> ProposalResponse:
    """ProposalResponse{response{status 500, message}}: Fabric's failure answer."""
    return ProposalResponse(
        response=proposal_response_pb2.Response(status=STATUS_ERROR, message=message)
    )


def _valid_creator(proposal: ParsedProposal, msps: MspManager) -> Identity:
    """The creator, deserialised and validated by the MSPs (AccessDenied if not)."""
    channel = proposal.channel_id
    try:
        creator = msps.deserialize_identity(proposal.creator)
    except IdentityError as error:
        _LOG.info("access denied channel=%s: %s", channel, error)
        raise AccessDenied(
            f"access denied: channel [{channel}] creator org unknown, creator is "
            "malformed"
        ) from None
    try:
        msps.validate(creator)
    except (IdentityError, CryptoError) as error:
        raise _denied(proposal, creator, error) from None
    return creator


def _verify_signature(proposal: ParsedProposal, creator: Identity) -> None:
    try:
        creator.verify(proposal.proposal_bytes, proposal.signature)
    except (IdentityError, CryptoError) as error:
        raise _denied(proposal, creator, error) from None


def _denied(
    proposal: ParsedProposal, creator: Identity, error: Exception
) -> AccessDenied:
    channel = proposal.channel_id
    _LOG.info("access denied channel=%s mspid=%s: %s", channel, creator.mspid, error)
    return AccessDenied(
        f"access denied: channel [{channel}] creator org [{creator.mspid}]"
    )


def _unpack(signed: proposal_pb2.SignedProposal | bytes) -> ParsedProposal:
    try:
        return parse_signed_proposal(signed)
    except WireError as error:
        raise MalformedProposal(str(error)) from None
    except MedledgerError as error:  # defensive: any other decoding complaint
        raise MalformedProposal(str(error)) from None


def _private_data_with_config(
    results: SimulationResults, info: EndorsementInfo, *, height: int
) -> bytes:
    """TxPvtReadWriteSetWithConfigInfo: the private sets and the collections' configs."""
    message = transientstore_pb2.TxPvtReadWriteSetWithConfigInfo(endorsed_at=height)
    message.pvt_rwset.ParseFromString(results.private_rwset)
    definition = info.definition
    namespaces = {ns.namespace for ns in message.pvt_rwset.ns_pvt_rwset}
    if definition.collections and definition.name in namespaces:
        package = message.collection_configs[definition.name]
        package.ParseFromString(definition.collections)
    return message.SerializeToString(deterministic=True)


def _store_in_transient_store(channel: PeerChannel, tx_id: str, data: bytes) -> None:
    channel.store_private_data(tx_id, channel.height(), data)


def _response_message(response: ChaincodeResponse) -> proposal_response_pb2.Response:
    return proposal_response_pb2.Response(
        status=response.status, message=response.message, payload=response.payload
    )


def _no_sign(_message: bytes) -> bytes:
    return b""
