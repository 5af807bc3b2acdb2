"""Endorse: collect endorsements that satisfy the policies, assemble the transaction.

Without `endorsing_organizations` the proposal first runs on a peer of the gateway's
own organisation (another organisation's only when it has none and no transient data
is involved). That peer's chaincode interest — the chaincodes, collections and
key-level policies the proposal touched — gives the `Requirements`, the planner
gives layouts (smallest first, the first endorser's organisation preferred), and the
missing endorsements are requested from the layout's organisations concurrently, each
organisation falling back to its next peer when one fails; a layout that cannot be
completed gives way to the next. With `endorsing_organizations` exactly one peer of
each named organisation must endorse (the client owns the policy).

Every payload must be byte-identical to the first; a differing one counts as that
peer's failure and is described. The unsigned prepared envelope is assembled as
Fabric's gateway does (`protoutil.create_transaction_envelope`), with each endorser's
endorsement once. Codes: INVALID_ARGUMENT for a proposal that does not
decode, the peer's own code when it refuses the proposal (PERMISSION_DENIED for a bad
signature or a creator who may not write, ALREADY_EXISTS for a used tx id),
FAILED_PRECONDITION when no plan can be made, UNAVAILABLE when a named organisation
has no peers, ABORTED when endorsements could not be collected (a chaincode error
included: the first failing endorser ends the attempt, as in Fabric 2.5),
DEADLINE_EXCEEDED on the client's deadline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

import grpc
from google.protobuf.message import DecodeError

from common.errors import PolicyError, WireError
from common.protoutil import ParsedProposal, create_transaction_envelope
from gateway.channels import ChannelView
from gateway.connections import PeerClient
from gateway.context import GatewayContext, deadline
from gateway.diff import describe_payload_difference
from gateway.endorsers import REFUSALS, Outcome, call_endorser
from gateway.errors import ErrorDetail, StatusError
from gateway.evaluate import unpack_proposal
from gateway.interest import (
    Call,
    calls_from_interest,
    calls_from_rwset,
    default_calls,
    requirements_for,
)
from gateway.planner import Layout, Requirements, plan_layouts
from protos.common import common_pb2
from protos.gateway import gateway_pb2
from protos.peer import proposal_pb2, proposal_response_pb2

__all__ = ["endorse"]

_LOG = logging.getLogger(__name__)

Groups = Mapping[str, Sequence[PeerClient]]


async def endorse(
    request: gateway_pb2.EndorseRequest,
    ctx: GatewayContext,
    *,
    time_remaining: float | None,
) -> gateway_pb2.EndorseResponse:
    """Answer one Endorse call (see the module docstring).

    Raises:
        StatusError: the outcome to answer when no transaction could be prepared.
    """
    proposal = unpack_proposal(request.proposed_transaction)
    async with deadline(
        time_remaining, "endorsement timeout expired while collecting endorsements"
    ):
        view = await ctx.ready_view(
            proposal.channel_id, missing=grpc.StatusCode.FAILED_PRECONDITION
        )
        await ctx.registry.recheck(proposal.channel_id)
        groups = ctx.registry.by_org(proposal.channel_id)
        collector = _Collector(request.proposed_transaction, ctx, view)
        if request.endorsing_organizations:
            layouts = _layouts_for_orgs(request.endorsing_organizations, groups)
        else:
            layouts = await _plan_from_first_endorser(proposal, view, groups, collector)
        layout = await collector.collect(layouts, groups)
    if layout is None:
        raise StatusError(
            grpc.StatusCode.ABORTED,
            "failed to collect enough transaction endorsements, "
            "see attached details for more info",
            collector.details,
        )
    try:
        payload = create_transaction_envelope(
            proposal=proposal, responses=collector.responses(layout)
        )
    except WireError as error:
        raise StatusError(
            grpc.StatusCode.ABORTED, f"failed to assemble transaction: {error}"
        ) from None
    return gateway_pb2.EndorseResponse(
        prepared_transaction=common_pb2.Envelope(payload=payload)
    )


def _layouts_for_orgs(orgs: Sequence[str], groups: Groups) -> tuple[Layout, ...]:
    missing = [org for org in dict.fromkeys(orgs) if not groups.get(org)]
    if missing:
        raise StatusError(
            grpc.StatusCode.UNAVAILABLE,
            f"no peers available for endorsing organization(s) {', '.join(missing)}",
        )
    return (Layout.of(dict.fromkeys(orgs, 1)),)


async def _plan_from_first_endorser(
    proposal: ParsedProposal, view: ChannelView, groups: Groups, collector: _Collector
) -> tuple[Layout, ...]:
    """Endorse on a first peer, then plan from what the proposal touched."""
    chaincode = proposal.chaincode_id.name
    local = collector.ctx.local_mspid
    protect = bool(proposal.transient_map)
    first_org = local
    if not groups.get(local):
        if protect:
            raise StatusError(
                grpc.StatusCode.FAILED_PRECONDITION,
                "no endorsers found in the gateway's organization; retry specifying "
                "endorsing organization(s) to protect transient data",
            )
        base = _requirements(default_calls(chaincode), view, protect=False)
        first_org = _plan(base, groups, preferred=None)[0].orgs[0]
    first = await collector.first(first_org, groups[first_org])
    if first is None:
        refused = collector.refusal
        raise StatusError(
            refused.code if refused is not None else grpc.StatusCode.ABORTED,
            "failed to endorse transaction, see attached details for more info",
            collector.details,
        )
    calls = _calls(first, chaincode)
    requirements = _requirements(calls, view, protect=protect)
    layouts = plan_layouts(requirements, _availability(groups), preferred=first_org)
    if layouts:
        return layouts
    if protect and requirements.allowed_orgs is not None:
        unrestricted = _requirements(calls, view, protect=False)
        if plan_layouts(unrestricted, _availability(groups), preferred=first_org):
            collections = sorted({name for call in calls for name in call.collections})
            raise StatusError(
                grpc.StatusCode.FAILED_PRECONDITION,
                "requires endorsement from organisation(s) that are not in the "
                "distribution policy of the private data collection(s): "
                f"{collections}; retry specifying trusted endorsing organizations to "
                "protect transient data",
            )
    return _plan(requirements, groups, preferred=first_org)


def _calls(
    first: proposal_response_pb2.ProposalResponse, chaincode: str
) -> tuple[Call, ...]:
    reported = calls_from_interest(first.interest)
    if reported:
        return reported
    try:
        payload = proposal_response_pb2.ProposalResponsePayload.FromString(
            first.payload
        )
        action = proposal_pb2.ChaincodeAction.FromString(payload.extension)
        return calls_from_rwset(action.results, chaincode=chaincode)
    except (DecodeError, WireError):  # an unreadable payload fails at assembly instead
        return default_calls(chaincode)


def _requirements(
    calls: Sequence[Call], view: ChannelView, *, protect: bool
) -> Requirements:
    try:
        return requirements_for(
            calls,
            chaincodes=view.lifecycle.chaincode,
            channel_policies=view.config.policy_manager,
            protect_transient=protect,
        )
    except (PolicyError, WireError) as error:
        raise StatusError(grpc.StatusCode.FAILED_PRECONDITION, str(error)) from None


def _plan(
    requirements: Requirements, groups: Groups, *, preferred: str | None
) -> tuple[Layout, ...]:
    try:
        layouts = plan_layouts(requirements, _availability(groups), preferred=preferred)
    except PolicyError as error:
        raise StatusError(grpc.StatusCode.FAILED_PRECONDITION, str(error)) from None
    if not layouts:
        raise StatusError(
            grpc.StatusCode.FAILED_PRECONDITION,
            "no combination of peers can be derived which satisfy the endorsement "
            f"policy: {requirements.description or 'no policy'}",
        )
    return layouts


def _availability(groups: Groups) -> dict[str, int]:
    return {org: len(peers) for org, peers in groups.items()}


class _Collector:
    """The endorsements gathered for one proposal, and the failures on the way."""

    def __init__(
        self,
        signed: proposal_pb2.SignedProposal,
        ctx: GatewayContext,
        view: ChannelView,
    ) -> None:
        self.ctx = ctx
        self._view = view
        self._signed = signed
        self._payload: bytes | None = None
        self._endorsed: dict[str, list[proposal_response_pb2.ProposalResponse]] = {}
        self._used: set[str] = set()
        self._failed: set[str] = set()
        self.details: list[ErrorDetail] = []
        # The first refusal of the proposal itself (bad signature, not a writer, ...).
        self.refusal: Outcome | None = None

    async def first(
        self, org: str, peers: Sequence[PeerClient]
    ) -> proposal_response_pb2.ProposalResponse | None:
        """The first endorsement, from `org`'s peers in order; None when all failed."""
        if await self._fill(org, 1, peers):
            return self._endorsed[org][0]
        return None

    async def collect(self, layouts: Sequence[Layout], groups: Groups) -> Layout | None:
        """Complete the first layout that can be completed; None when none can."""
        for layout in layouts:
            deficits = {
                org: count - len(self._endorsed.get(org, ()))
                for org, count in layout.counts
            }
            if any(
                n > len(self._untried(groups.get(org, ())))
                for org, n in deficits.items()
            ):
                continue
            async with asyncio.TaskGroup() as tasks:
                fills = [
                    tasks.create_task(self._fill(org, n, groups.get(org, ())))
                    for org, n in deficits.items()
                    if n > 0
                ]
            if all(fill.result() for fill in fills):
                return layout
        return None

    def responses(self, layout: Layout) -> list[proposal_response_pb2.ProposalResponse]:
        """The layout's endorsements, each endorser once, in layout order."""
        chosen: list[proposal_response_pb2.ProposalResponse] = []
        seen: set[bytes] = set()
        for org, count in layout.counts:
            for response in self._endorsed.get(org, [])[:count]:
                if response.endorsement.endorser not in seen:
                    seen.add(response.endorsement.endorser)
                    chosen.append(response)
        return chosen

    def _untried(self, peers: Sequence[PeerClient]) -> list[PeerClient]:
        return [
            peer
            for peer in peers
            if peer.address not in self._used and peer.address not in self._failed
        ]

    async def _fill(self, org: str, needed: int, peers: Sequence[PeerClient]) -> bool:
        """Ask `org`'s untried peers one by one until `needed` more have endorsed."""
        got = 0
        for peer in self._untried(peers):
            if got >= needed:
                break
            if peer.address in self._used or peer.address in self._failed:
                continue
            self._used.add(peer.address)
            await self.ctx.registry.wait_for_height(
                self._view.channel_id,
                peer,
                self._view.height,
                limit_s=self.ctx.timeouts.catch_up_s,
            )
            outcome = await call_endorser(
                peer,
                self._signed,
                deadline_s=self.ctx.timeouts.endorse_s,
                registry=self.ctx.registry,
            )
            if self._accept(org, outcome):
                got += 1
            elif not outcome.retry:
                if outcome.code in REFUSALS and self.refusal is None:
                    self.refusal = outcome
                break
        return got >= needed

    def _accept(self, org: str, outcome: Outcome) -> bool:
        response = outcome.response
        if not outcome.ok or response is None:
            self._fail(outcome.detail())
            return False
        if self._payload is None:
            self._payload = response.payload
        elif response.payload != self._payload:
            difference = describe_payload_difference(self._payload, response.payload)
            self._fail(
                ErrorDetail(
                    outcome.peer.address,
                    outcome.peer.mspid,
                    f"ProposalResponsePayloads do not match: {difference}",
                )
            )
            return False
        self._endorsed.setdefault(org, []).append(response)
        return True

    def _fail(self, detail: ErrorDetail) -> None:
        _LOG.info(
            "endorsement failed peer=%s mspid=%s error=%s",
            detail.address,
            detail.mspid,
            detail.message,
        )
        self._failed.add(detail.address)
        self.details.append(detail)
