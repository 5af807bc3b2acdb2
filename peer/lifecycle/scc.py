"""The `_lifecycle` system chaincode: install, approve, commit and query definitions.

Execute phase, in process. A proposal for chaincode `_lifecycle` carries two args, the
function name and its marshaled `lifecycle.<Function>Args`; the answer's payload is the
marshaled `<Function>Result`. Channel functions run on the transaction's simulator, so
what they read and write lands in the read-write set like any chaincode's. As in
Fabric 2.5 (ACL defaults; a channel config's ACLs override them):

    InstallChaincode, QueryInstalledChaincode(s),     the peer's own admins; need no
      GetInstalledChaincodePackage                    channel
    ApproveChaincodeDefinitionForMyOrg,               the peer's own admins; write or read
      QueryApprovedChaincodeDefinition                the org's implicit collection
    CheckCommitReadiness, CommitChaincodeDefinition,  /Channel/Application/Writers
      QueryChaincodeDefinition(s)

Commit requires the next sequence and this peer's organisation's approval (Fabric's
rule; the channel's LifecycleEndorsement policy then makes a majority of organisations
endorse it) and also, here, approvals from a majority of the channel's organisations.
Failures are responses with status 500 and Fabric's message; an unknown package or an
undefined chaincode is status 404.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from google.protobuf.message import DecodeError, Message

from common.errors import CryptoError, IdentityError, PolicyError
from common.msp import Msp, Role
from common.policies import SignedData as PolicySignedData
from common.protoutil import ChaincodeResponse, proposal_signed_data
from peer.channels import PeerChannel
from peer.errors import (
    DefinitionNotFound,
    LifecycleError,
    PackageNotFound,
    QueryError,
)
from peer.lifecycle import operations as ops
from peer.lifecycle.approvals import approval_writes, implicit_collection
from peer.lifecycle.definitions import LIFECYCLE_NAMESPACE, definition_writes
from peer.lifecycle.store import InstalledPackage, PackageStore
from peer.scc import SccInvocation
from peer.simulator import TxSimulator
from protos.peer.lifecycle import lifecycle_pb2 as lb

__all__ = ["LIFECYCLE_FUNCTIONS", "LifecycleSystemChaincode"]

_LOG = logging.getLogger(__name__)

STATUS_OK = 200
STATUS_NOT_FOUND = 404
STATUS_ERROR = 500
_WRITERS = "/Channel/Application/Writers"
_LIFECYCLE_CAPABILITIES = frozenset({"V2_0", "V2_5"})

References = Callable[[str], Mapping[str, list[tuple[str, str]]]]
"""package id → {channel: [(chaincode name, version)]} of the definitions it serves."""

Installed = Callable[[str], None]
"""Told the package id of each new install (in the install's worker thread)."""


class ChannelSource(Protocol):
    """The peer's joined channels (`peer.channels.Channels`)."""

    def get(self, channel_id: str) -> PeerChannel | None: ...


@dataclass(frozen=True, slots=True)
class _Call:
    """One invocation: the proposal's channel (None: channel-less) and simulator."""

    invocation: SccInvocation
    channel: PeerChannel | None
    simulator: TxSimulator | None

    def on_channel(self) -> tuple[PeerChannel, TxSimulator]:
        if self.channel is None or self.simulator is None:
            raise LifecycleError("this function must be invoked on a channel")
        return self.channel, self.simulator


_Handler = Callable[["LifecycleSystemChaincode", _Call, Message], Message]


@dataclass(frozen=True, slots=True)
class _Function:
    args: type[Message]
    handler: _Handler
    local_admins: bool
    blocking: bool = False


class LifecycleSystemChaincode:
    """`_lifecycle` for one peer (see the module docstring)."""

    name = LIFECYCLE_NAMESPACE

    def __init__(
        self,
        *,
        mspid: str,
        local_msp: Msp,
        store: PackageStore,
        channels: ChannelSource,
        references: References | None = None,
        on_installed: Installed | None = None,
    ) -> None:
        self._mspid = mspid
        self._local_msp = local_msp
        self._store = store
        self._channels = channels
        self._references = references
        self._on_installed = on_installed

    async def invoke(self, invocation: SccInvocation) -> ChaincodeResponse:
        """A proposal without a simulator (channel-less: install and local queries)."""
        return await self._run(_Call(invocation, None, None))

    async def invoke_simulated(
        self, invocation: SccInvocation, simulator: TxSimulator
    ) -> ChaincodeResponse:
        """A channel proposal, run on the transaction's simulator."""
        channel = self._channels.get(invocation.proposal.channel_id)
        return await self._run(_Call(invocation, channel, simulator))

    async def _run(self, call: _Call) -> ChaincodeResponse:
        args = call.invocation.proposal.args
        if len(args) != 2:
            return _error(
                "lifecycle scc operations require exactly two arguments but received "
                f"{len(args)}"
            )
        name = args[0].decode("utf-8", errors="replace")
        problem = self._check_channel(call)
        if problem:
            return _error(problem)
        function = LIFECYCLE_FUNCTIONS.get(name)
        if function is None:
            return _error(
                f"failed to invoke backing implementation of '{name}': unknown function"
            )
        problem = self._check_acl(call, name, function)
        if problem:
            return _error(
                f"Failed to authorize invocation due to failed ACL check: {problem}"
            )
        try:
            request = function.args.FromString(args[1])
        except DecodeError as error:
            return _error(f"failed to decode input arguments of '{name}': {error}")
        try:
            if function.blocking:
                result = await asyncio.to_thread(function.handler, self, call, request)
            else:
                result = function.handler(self, call, request)
        except (PackageNotFound, DefinitionNotFound) as error:
            return ChaincodeResponse(STATUS_NOT_FOUND, str(error), b"")
        except (LifecycleError, QueryError) as error:
            _LOG.info("_lifecycle %s failed: %s", name, error)
            return _error(
                f"failed to invoke backing implementation of '{name}': {error}"
            )
        return ChaincodeResponse(
            STATUS_OK, "", result.SerializeToString(deterministic=True)
        )

    def _check_channel(self, call: _Call) -> str:
        channel_id = call.invocation.proposal.channel_id
        if not channel_id:
            return ""
        if call.channel is None:
            return f"could not get channelconfig for channel '{channel_id}'"
        if not _LIFECYCLE_CAPABILITIES & call.channel.config.capabilities.application:
            return (
                f"cannot use new lifecycle for channel '{channel_id}' as it does not "
                "have the required capabilities enabled"
            )
        return ""

    def _check_acl(self, call: _Call, name: str, function: _Function) -> str:
        """Why the creator may not call `name` ("" when it may)."""
        resource = f"{LIFECYCLE_NAMESPACE}/{name}"
        channel = call.channel
        override = channel.config.acl_policy(resource) if channel else None
        if function.local_admins and override is None:
            return self._check_local_admin(call.invocation)
        if channel is None:
            return f"resource {resource} needs a channel"
        signed = proposal_signed_data(call.invocation.proposal)
        config = channel.config
        try:
            config.policy_manager.get(override or _WRITERS).evaluate(
                [
                    PolicySignedData(
                        data=signed.message,
                        identity=signed.identity,
                        signature=signed.signature,
                    )
                ],
                config.msp_manager,
            )
        except (PolicyError, IdentityError, CryptoError) as error:
            return f"policy [{override or _WRITERS}] not satisfied: {error}"
        return ""

    def _check_local_admin(self, invocation: SccInvocation) -> str:
        msp = self._local_msp
        try:
            identity = msp.deserialize_identity(invocation.proposal.creator)
            msp.validate(identity)
            if msp.has_role(identity, Role.ADMIN):
                return ""
        except IdentityError as error:
            return (
                "Failed verifying that proposal's creator satisfies local MSP "
                f"principal during channelless check policy with policy [Admins]: "
                f"[{error}]"
            )
        return (
            "Failed verifying that proposal's creator satisfies local MSP principal "
            "during channelless check policy with policy [Admins]: [The identity is "
            f"not an admin under this MSP [{msp.mspid}]]"
        )

    # Installed packages (no channel needed)

    def _install(self, _call: _Call, request: Message) -> Message:
        assert isinstance(request, lb.InstallChaincodeArgs)
        installed = self._store.install(request.chaincode_install_package)
        _LOG.info("installed chaincode package_id=%s", installed.package_id)
        if self._on_installed is not None:
            self._on_installed(installed.package_id)
        return lb.InstallChaincodeResult(
            package_id=installed.package_id, label=installed.label
        )

    def _query_installed(self, _call: _Call, request: Message) -> Message:
        assert isinstance(request, lb.QueryInstalledChaincodeArgs)
        installed = self._store.get(request.package_id)
        result = lb.QueryInstalledChaincodeResult(
            package_id=installed.package_id, label=installed.label
        )
        for channel, chaincodes in self._references_of(installed).items():
            result.references[channel].chaincodes.extend(
                lb.QueryInstalledChaincodeResult.Chaincode(name=name, version=version)
                for name, version in chaincodes
            )
        return result

    def _query_all_installed(self, _call: _Call, request: Message) -> Message:
        assert isinstance(request, lb.QueryInstalledChaincodesArgs)
        result = lb.QueryInstalledChaincodesResult()
        for installed in self._store.installed():
            entry = result.installed_chaincodes.add(
                package_id=installed.package_id, label=installed.label
            )
            for channel, chaincodes in self._references_of(installed).items():
                entry.references[channel].chaincodes.extend(
                    lb.QueryInstalledChaincodesResult.Chaincode(
                        name=name, version=version
                    )
                    for name, version in chaincodes
                )
        return result

    def _get_package(self, _call: _Call, request: Message) -> Message:
        assert isinstance(request, lb.GetInstalledChaincodePackageArgs)
        return lb.GetInstalledChaincodePackageResult(
            chaincode_install_package=self._store.load(request.package_id)
        )

    def _references_of(
        self, installed: InstalledPackage
    ) -> Mapping[str, list[tuple[str, str]]]:
        if self._references is None:
            return {}
        return self._references(installed.package_id)

    # Definitions (on a channel)

    def _approve(self, call: _Call, request: Message) -> Message:
        assert isinstance(request, lb.ApproveChaincodeDefinitionForMyOrgArgs)
        channel, simulator = call.on_channel()
        definition = ops.requested_definition(channel, request)
        package_id = ops.source_package_id(request.source)
        ops.check_approval(simulator, self._mspid, definition, package_id)
        collection = implicit_collection(self._mspid)
        for key, value in approval_writes(definition, package_id):
            # As Fabric's serializer: a value already stored is not written again, so
            # changing only the package leaves the approval's parameters (and the
            # commits that read them) untouched.
            stored = simulator.get_private_data_hash(
                LIFECYCLE_NAMESPACE, collection, key
            )
            if stored != hashlib.sha256(value).digest():
                simulator.set_private_data(LIFECYCLE_NAMESPACE, collection, key, value)
        _LOG.info(
            "endorsed approval channel=%s chaincode=%s sequence=%d package_id=%s",
            channel.channel_id,
            definition.name,
            definition.sequence,
            package_id or "-",
        )
        return lb.ApproveChaincodeDefinitionForMyOrgResult()

    def _query_approved(self, call: _Call, request: Message) -> Message:
        assert isinstance(request, lb.QueryApprovedChaincodeDefinitionArgs)
        channel, simulator = call.on_channel()
        approval = ops.approved_definition(
            simulator,
            self._mspid,
            name=request.name,
            sequence=request.sequence,
            channel_id=channel.channel_id,
        )
        return ops.approved_result(approval)

    def _check_commit_readiness(self, call: _Call, request: Message) -> Message:
        assert isinstance(request, lb.CheckCommitReadinessArgs)
        channel, simulator = call.on_channel()
        definition = ops.requested_definition(channel, request, check=False)
        ops.check_next_sequence(simulator, definition)
        approvals = ops.approvals(simulator, channel, definition)
        return lb.CheckCommitReadinessResult(approvals=approvals)

    def _commit(self, call: _Call, request: Message) -> Message:
        assert isinstance(request, lb.CommitChaincodeDefinitionArgs)
        channel, simulator = call.on_channel()
        definition = ops.requested_definition(channel, request)
        ops.check_next_sequence(simulator, definition)
        approvals = ops.approvals(simulator, channel, definition)
        ops.check_commit_approvals(approvals, definition, mspid=self._mspid)
        committed = ops.SimulatedState(simulator)
        for key, value in definition_writes(definition, committed=committed):
            simulator.set_state(LIFECYCLE_NAMESPACE, key, value)
        _LOG.info(
            "endorsed commit channel=%s chaincode=%s sequence=%d",
            channel.channel_id,
            definition.name,
            definition.sequence,
        )
        return lb.CommitChaincodeDefinitionResult()

    def _query_definition(self, call: _Call, request: Message) -> Message:
        assert isinstance(request, lb.QueryChaincodeDefinitionArgs)
        channel, simulator = call.on_channel()
        definition = ops.committed_definition(simulator, request.name)
        approvals = ops.approvals(simulator, channel, definition)
        return ops.definition_result(definition, approvals)

    def _query_definitions(self, call: _Call, request: Message) -> Message:
        assert isinstance(request, lb.QueryChaincodeDefinitionsArgs)
        _channel, simulator = call.on_channel()
        return ops.definitions_result(simulator)


def _error(message: str) -> ChaincodeResponse:
    return ChaincodeResponse(STATUS_ERROR, message, b"")


_S = LifecycleSystemChaincode
LIFECYCLE_FUNCTIONS: Mapping[str, _Function] = {
    "InstallChaincode": _Function(
        lb.InstallChaincodeArgs, _S._install, local_admins=True, blocking=True
    ),
    "QueryInstalledChaincode": _Function(
        lb.QueryInstalledChaincodeArgs, _S._query_installed, True, blocking=True
    ),
    "QueryInstalledChaincodes": _Function(
        lb.QueryInstalledChaincodesArgs, _S._query_all_installed, True, blocking=True
    ),
    "GetInstalledChaincodePackage": _Function(
        lb.GetInstalledChaincodePackageArgs, _S._get_package, True, blocking=True
    ),
    "ApproveChaincodeDefinitionForMyOrg": _Function(
        lb.ApproveChaincodeDefinitionForMyOrgArgs, _S._approve, local_admins=True
    ),
    "QueryApprovedChaincodeDefinition": _Function(
        lb.QueryApprovedChaincodeDefinitionArgs, _S._query_approved, local_admins=True
    ),
    "CheckCommitReadiness": _Function(
        lb.CheckCommitReadinessArgs, _S._check_commit_readiness, local_admins=False
    ),
    "CommitChaincodeDefinition": _Function(
        lb.CommitChaincodeDefinitionArgs, _S._commit, local_admins=False
    ),
    "QueryChaincodeDefinition": _Function(
        lb.QueryChaincodeDefinitionArgs, _S._query_definition, local_admins=False
    ),
    "QueryChaincodeDefinitions": _Function(
        lb.QueryChaincodeDefinitionsArgs, _S._query_definitions, local_admins=False
    ),
}
"""Every `_lifecycle` function: its args message, handler and ACL kind."""
