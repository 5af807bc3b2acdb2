"""The client side of Fabric's chaincode lifecycle: `_lifecycle` proposals and transactions.

An admin packages chaincode (`peer.lifecycle.package.build_package`), installs it on
each of its organisation's peers, approves a definition for its organisation (a
transaction endorsed by its own peer), checks which organisations approved, and
commits the definition (a transaction endorsed by peers of enough organisations to
meet the channel's LifecycleEndorsement policy). Proposals go to peers over
`protos.Endorser/ProcessProposal`, transactions to an orderer over
`orderer.AtomicBroadcast/Broadcast`; a submitted transaction is awaited on the first
peer through `protos.Deliver/DeliverFiltered` and must commit VALID.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import Message

from common.errors import MedledgerError, WireError
from common.msp import SigningIdentity
from common.protoutil import (
    BLOCK_UNTIL_READY,
    ParsedProposal,
    SeekPosition,
    create_proposal,
    create_seek_envelope,
    create_transaction_envelope,
    parse_signed_proposal,
    sign_envelope,
    sign_proposal,
)
from common.tls import TlsFiles, channel_credentials
from peer.errors import InvalidPackage
from peer.lifecycle.definitions import LIFECYCLE_NAMESPACE
from peer.lifecycle.package import parse_package
from protos.common import common_pb2
from protos.orderer import ab_pb2
from protos.peer import (
    collection_pb2,
    events_pb2,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)
from protos.peer.lifecycle import lifecycle_pb2 as lb

__all__ = [
    "Definition",
    "LifecycleCommandError",
    "Target",
    "approve",
    "broadcast",
    "check_commit_readiness",
    "commit",
    "get_installed_package",
    "install",
    "query_approved",
    "query_committed",
    "query_installed",
    "submit_proposal",
]

DEFAULT_TIMEOUT_S = 30.0
STATUS_OK = 200
_NEWEST_ENOUGH = 2**63 - 1


class LifecycleCommandError(MedledgerError):
    """A lifecycle command failed; the message names the peer or orderer and why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """A peer or orderer to dial (`tls` None: plaintext)."""

    address: str
    tls: TlsFiles | None = None
    server_name: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S

    def open(self) -> grpc.aio.Channel:
        if self.tls is None:
            return grpc.aio.insecure_channel(self.address)
        options = []
        if self.server_name:
            options.append(("grpc.ssl_target_name_override", self.server_name))
        return grpc.aio.secure_channel(
            self.address, channel_credentials(self.tls), options=options
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Definition:
    """A chaincode definition as the commands send it (empty fields: peer defaults)."""

    name: str
    version: str
    sequence: int
    endorsement_policy: bytes = b""
    """Marshaled ApplicationPolicy; empty: /Channel/Application/Endorsement."""
    init_required: bool = False
    collections: bytes = b""
    """Marshaled CollectionConfigPackage; empty: no collections."""
    endorsement_plugin: str = ""
    validation_plugin: str = ""

    def fill(self, message: Any) -> None:
        """Set fields 1–8 shared by the approve, readiness and commit arguments."""
        message.name = self.name
        message.version = self.version
        message.sequence = self.sequence
        message.endorsement_plugin = self.endorsement_plugin
        message.validation_plugin = self.validation_plugin
        message.validation_parameter = self.endorsement_policy
        message.init_required = self.init_required
        if self.collections:
            message.collections.CopyFrom(
                collection_pb2.CollectionConfigPackage.FromString(self.collections)
            )


async def install(
    peer: Target, signer: SigningIdentity, package: bytes
) -> lb.InstallChaincodeResult:
    """Install a package on `peer` (an admin of the peer's organisation signs)."""
    request = lb.InstallChaincodeArgs(chaincode_install_package=package)
    result = lb.InstallChaincodeResult()
    await _evaluate(peer, signer, "", "InstallChaincode", request, result)
    return result


async def query_installed(
    peer: Target, signer: SigningIdentity, package_id: str = ""
) -> lb.QueryInstalledChaincodesResult | lb.QueryInstalledChaincodeResult:
    """Every package installed on `peer`, or the one with `package_id`."""
    if package_id:
        one = lb.QueryInstalledChaincodeResult()
        request = lb.QueryInstalledChaincodeArgs(package_id=package_id)
        await _evaluate(peer, signer, "", "QueryInstalledChaincode", request, one)
        return one
    every = lb.QueryInstalledChaincodesResult()
    await _evaluate(
        peer,
        signer,
        "",
        "QueryInstalledChaincodes",
        lb.QueryInstalledChaincodesArgs(),
        every,
    )
    return every


async def get_installed_package(
    peer: Target, signer: SigningIdentity, package_id: str
) -> bytes:
    """The bytes of the package installed on `peer` as `package_id`.

    Only admins of the peer's organisation may fetch a package. The bytes are checked
    against `package_id` (label and SHA-256) before they are returned.

    Raises:
        LifecycleCommandError: the peer refused (not an admin, no such package) or
            answered with bytes that are not the package asked for.
    """
    request = lb.GetInstalledChaincodePackageArgs(package_id=package_id)
    result = lb.GetInstalledChaincodePackageResult()
    await _evaluate(peer, signer, "", "GetInstalledChaincodePackage", request, result)
    data = result.chaincode_install_package
    try:
        received = parse_package(data).package_id
    except InvalidPackage as error:
        raise LifecycleCommandError(
            f"peer {peer.address}: package '{package_id}' does not parse: {error}"
        ) from None
    if received != package_id:
        raise LifecycleCommandError(
            f"peer {peer.address}: asked for package '{package_id}', got '{received}'"
        )
    return data


async def approve(
    peer: Target,
    orderer: Target,
    signer: SigningIdentity,
    *,
    channel: str,
    definition: Definition,
    package_id: str = "",
) -> str:
    """Approve `definition` for the signer's organisation; returns the tx id.

    Raises:
        LifecycleCommandError: the peer refused, the orderer refused, or the
            transaction did not commit VALID.
    """
    request = lb.ApproveChaincodeDefinitionForMyOrgArgs()
    definition.fill(request)
    if package_id:
        request.source.local_package.package_id = package_id
    else:
        request.source.unavailable.SetInParent()
    return await _submit(
        [peer], orderer, signer, channel, "ApproveChaincodeDefinitionForMyOrg", request
    )


async def check_commit_readiness(
    peer: Target, signer: SigningIdentity, *, channel: str, definition: Definition
) -> dict[str, bool]:
    """Which organisations approved exactly `definition` (by MSP id)."""
    request = lb.CheckCommitReadinessArgs()
    definition.fill(request)
    result = lb.CheckCommitReadinessResult()
    await _evaluate(peer, signer, channel, "CheckCommitReadiness", request, result)
    return dict(sorted(result.approvals.items()))


async def commit(
    peers: Sequence[Target],
    orderer: Target,
    signer: SigningIdentity,
    *,
    channel: str,
    definition: Definition,
) -> str:
    """Commit `definition`, endorsed by every peer in `peers`; returns the tx id.

    Raises:
        LifecycleCommandError: a peer refused (e.g. its organisation did not approve),
            the orderer refused, or the transaction did not commit VALID.
    """
    request = lb.CommitChaincodeDefinitionArgs()
    definition.fill(request)
    return await _submit(
        peers, orderer, signer, channel, "CommitChaincodeDefinition", request
    )


async def query_approved(
    peer: Target, signer: SigningIdentity, *, channel: str, name: str, sequence: int = 0
) -> lb.QueryApprovedChaincodeDefinitionResult:
    """The signer's organisation's approval (sequence 0: the latest)."""
    request = lb.QueryApprovedChaincodeDefinitionArgs(name=name, sequence=sequence)
    result = lb.QueryApprovedChaincodeDefinitionResult()
    await _evaluate(
        peer, signer, channel, "QueryApprovedChaincodeDefinition", request, result
    )
    return result


async def query_committed(
    peer: Target, signer: SigningIdentity, *, channel: str, name: str = ""
) -> lb.QueryChaincodeDefinitionResult | lb.QueryChaincodeDefinitionsResult:
    """The committed definition of `name`, or every committed definition."""
    if name:
        one = lb.QueryChaincodeDefinitionResult()
        request = lb.QueryChaincodeDefinitionArgs(name=name)
        await _evaluate(peer, signer, channel, "QueryChaincodeDefinition", request, one)
        return one
    every = lb.QueryChaincodeDefinitionsResult()
    await _evaluate(
        peer,
        signer,
        channel,
        "QueryChaincodeDefinitions",
        lb.QueryChaincodeDefinitionsArgs(),
        every,
    )
    return every


# Proposals


def _proposal(
    signer: SigningIdentity, channel: str, function: str, request: Message
) -> tuple[proposal_pb2.SignedProposal, ParsedProposal]:
    created = create_proposal(
        channel_id=channel,
        chaincode_name=LIFECYCLE_NAMESPACE,
        args=[function.encode(), request.SerializeToString()],
        creator=signer.serialized,
    )
    signed = sign_proposal(created.proposal_bytes, signer.sign)
    return signed, parse_signed_proposal(signed)


async def _evaluate(
    peer: Target,
    signer: SigningIdentity,
    channel: str,
    function: str,
    request: Message,
    result: Message,
) -> None:
    """Send a proposal to one peer and decode its result payload into `result`."""
    signed, _ = _proposal(signer, channel, function, request)
    response = await _process_proposal(peer, signed)
    result.ParseFromString(response.response.payload)


async def _process_proposal(
    peer: Target, signed: proposal_pb2.SignedProposal
) -> proposal_response_pb2.ProposalResponse:
    async with peer.open() as channel:
        method = channel.unary_unary(  # type: ignore[call-arg]
            "/protos.Endorser/ProcessProposal",
            response_deserializer=proposal_response_pb2.ProposalResponse.FromString,
        )
        try:
            response: proposal_response_pb2.ProposalResponse = await method(
                signed.SerializeToString(), timeout=peer.timeout_s
            )
        except grpc.aio.AioRpcError as error:
            raise LifecycleCommandError(
                f"peer {peer.address}: {error.code().name}: {error.details()}"
            ) from None
    if response.response.status != STATUS_OK:
        raise LifecycleCommandError(
            f"peer {peer.address}: {response.response.message or 'no message'} "
            f"(status {response.response.status})"
        )
    return response


# Transactions


async def _submit(
    peers: Sequence[Target],
    orderer: Target,
    signer: SigningIdentity,
    channel: str,
    function: str,
    request: Message,
) -> str:
    signed, _ = _proposal(signer, channel, function, request)
    return await submit_proposal(peers, orderer, signer, signed)


async def submit_proposal(
    peers: Sequence[Target],
    orderer: Target,
    signer: SigningIdentity,
    signed: proposal_pb2.SignedProposal,
) -> str:
    """Endorse a signed proposal on every peer in `peers` (together), order the
    transaction and wait until the first peer commits it VALID; returns the tx id.

    Raises:
        LifecycleCommandError: a peer or the orderer refused, or it committed invalid.
    """
    if not peers:
        raise LifecycleCommandError("no peer to endorse the transaction")
    proposal = parse_signed_proposal(signed)
    channel = proposal.channel_id
    outcomes = await asyncio.gather(
        *(_process_proposal(peer, signed) for peer in peers), return_exceptions=True
    )
    failed = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    if failed:
        raise failed[0]  # the first peer's refusal, in the order given
    responses = [
        outcome
        for outcome in outcomes
        if isinstance(outcome, proposal_response_pb2.ProposalResponse)
    ]
    try:
        payload = create_transaction_envelope(proposal=proposal, responses=responses)
    except WireError as error:
        raise LifecycleCommandError(
            f"the peers' endorsements do not form a transaction: {error}"
        ) from None
    envelope = sign_envelope(payload, signer.sign).SerializeToString()
    async with peers[0].open() as peer_channel:
        stream = await _watch_blocks(peers[0], peer_channel, signer, channel)
        try:
            await broadcast(orderer, envelope)
            await _wait_for(peers[0], stream, proposal.tx_id)
        finally:
            stream.cancel()
    return proposal.tx_id


async def _watch_blocks(
    peer: Target, grpc_channel: grpc.aio.Channel, signer: SigningIdentity, channel: str
) -> Any:
    """A DeliverFiltered stream from the peer's newest block on, positioned already."""
    seek = create_seek_envelope(
        channel_id=channel,
        start=SeekPosition.newest(),
        stop=SeekPosition.specified(_NEWEST_ENOUGH),
        behavior=BLOCK_UNTIL_READY,
        creator=signer.serialized,
        signer=signer.sign,
    )
    method = grpc_channel.stream_stream(  # type: ignore[call-arg]
        "/protos.Deliver/DeliverFiltered",
        response_deserializer=events_pb2.DeliverResponse.FromString,
    )
    stream: Any = method(timeout=peer.timeout_s)  # type: ignore[call-arg]
    try:
        await stream.write(seek.SerializeToString())
        first = await stream.read()
    except grpc.aio.AioRpcError as error:
        raise LifecycleCommandError(
            f"peer {peer.address}: block events: {error.code().name}: {error.details()}"
        ) from None
    _delivered(peer, first)
    return stream


async def _wait_for(peer: Target, stream: Any, tx_id: str) -> None:
    try:
        while True:
            response = _delivered(peer, await stream.read())
            for tx in response.filtered_block.filtered_transactions:
                if tx.txid != tx_id:
                    continue
                if tx.tx_validation_code != transaction_pb2.VALID:
                    name = transaction_pb2.TxValidationCode.Name(tx.tx_validation_code)
                    raise LifecycleCommandError(
                        f"transaction {tx_id} was committed invalid: {name}"
                    )
                return
    except grpc.aio.AioRpcError as error:
        raise LifecycleCommandError(
            f"peer {peer.address}: waiting for {tx_id}: {error.code().name}: "
            f"{error.details()}"
        ) from None


def _delivered(peer: Target, response: object) -> events_pb2.DeliverResponse:
    """A block event; the stream's end or a status is an error here."""
    if not isinstance(response, events_pb2.DeliverResponse):  # grpc.aio.EOF
        raise LifecycleCommandError(f"peer {peer.address}: the block stream ended")
    if response.WhichOneof("Type") == "status":
        status = common_pb2.Status.Name(response.status)
        raise LifecycleCommandError(
            f"peer {peer.address}: block events ended: {status}"
        )
    return response


async def broadcast(
    orderer: Target,
    envelope: bytes,
    *,
    what: str = "transaction",
    failure: type[MedledgerError] = LifecycleCommandError,
) -> None:
    """Send one envelope on a Broadcast stream; return once the orderer accepted it.

    Raises:
        failure: the orderer could not be reached or refused `what` (its status and
            info in the message).
    """
    async with orderer.open() as channel:
        method = channel.stream_stream(  # type: ignore[call-arg]
            "/orderer.AtomicBroadcast/Broadcast",
            response_deserializer=ab_pb2.BroadcastResponse.FromString,
        )
        try:
            call: Any = method(iter([envelope]), timeout=orderer.timeout_s)
            responses = [response async for response in call]
        except grpc.aio.AioRpcError as error:
            details = error.details() or "no details"
            raise failure(
                f"orderer {orderer.address}: Broadcast: {error.code().name}: {details}"
            ) from None
    if len(responses) != 1 or responses[0].status != common_pb2.SUCCESS:
        shown = "; ".join(
            f"{common_pb2.Status.Name(r.status)}: {r.info}".strip() for r in responses
        )
        raise failure(
            f"orderer {orderer.address} refused the {what}: {shown or 'no answer'}"
        )
