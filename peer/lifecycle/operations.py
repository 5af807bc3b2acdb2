"""The rules behind `_lifecycle`'s channel functions, over a transaction's simulator.

Execute phase. `scc` decodes a request and checks its ACL; this module applies
Fabric 2.5's rules: which sequence may be approved or committed, which organisations
approved a definition (hashes of their implicit collections), what a commit needs,
and how results are shaped. Every state access goes through the simulator, so the
reads of an approval or commit land in its read-write set and MVCC at commit time
rejects it if a definition or an approval changed meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, TypedDict

from google.protobuf.message import DecodeError

from common.errors import PolicyError
from peer.channels import PeerChannel
from peer.errors import ChaincodeDefinitionError, DefinitionNotFound, LifecycleError
from peer.lifecycle.approvals import (
    Approval,
    implicit_collection,
    is_approved,
    parameter_mismatch,
    read_approval,
    source_is_approved,
)
from peer.lifecycle.definitions import (
    DEFAULT_ENDORSEMENT_PLUGIN,
    DEFAULT_ENDORSEMENT_POLICY_REF,
    DEFAULT_VALIDATION_PLUGIN,
    DEFINITION_TYPE,
    LIFECYCLE_NAMESPACE,
    ChaincodeDefinition,
    default_endorsement_policy,
    field_key,
    metadata_key,
    read_definition,
)
from peer.lifecycle.inputs import validate_definition_input
from peer.simulator import TxSimulator
from protos.peer import collection_pb2
from protos.peer.lifecycle import db_pb2
from protos.peer.lifecycle import lifecycle_pb2 as lb

__all__ = [
    "SimulatedState",
    "approvals",
    "approved_definition",
    "approved_result",
    "check_approval",
    "check_commit_approvals",
    "check_next_sequence",
    "committed_definition",
    "committed_sequence",
    "definition_result",
    "definitions_result",
    "requested_definition",
    "source_package_id",
]

_METADATA_PREFIX = metadata_key("")
_RANGE_END = "\x7f"


class _Stored(Protocol):
    @property
    def value(self) -> bytes: ...


class _Committed(Protocol):
    def get_state(self, ns: str, key: str) -> _Stored | None: ...


_DefinitionArgs = (
    lb.ApproveChaincodeDefinitionForMyOrgArgs
    | lb.CommitChaincodeDefinitionArgs
    | lb.CheckCommitReadinessArgs
)


@dataclass(frozen=True, slots=True)
class _Value:
    value: bytes


@dataclass(frozen=True, slots=True)
class SimulatedState:
    """Public `_lifecycle` state read through a simulator (each read is recorded)."""

    simulator: TxSimulator

    def get_state(self, ns: str, key: str) -> _Value | None:
        value = self.simulator.get_state(ns, key)
        return None if value is None else _Value(value)


def requested_definition(
    channel: PeerChannel, request: _DefinitionArgs, *, check: bool = True
) -> ChaincodeDefinition:
    """The definition a request describes, with the channel's defaults filled in.

    With `check`, the name, version and collections are validated first (approve
    and commit do; CheckCommitReadiness does not, as in Fabric).

    Raises:
        LifecycleError: an invalid input, or the channel lacks a default policy.
    """
    collections = collection_pb2.CollectionConfigPackage(
        config=request.collections.config
    )
    if check:
        validate_definition_input(
            name=request.name,
            version=request.version,
            collections=collections,
            msps=channel.config.msp_manager,
            committed=_committed_or_none(channel.ledger, request.name),
        )
    policy = request.validation_parameter or _default_policy(channel)
    return ChaincodeDefinition(
        name=request.name,
        version=request.version,
        sequence=request.sequence,
        endorsement_policy=policy,
        init_required=request.init_required,
        collections=collections.SerializeToString(deterministic=True),
        endorsement_plugin=request.endorsement_plugin or DEFAULT_ENDORSEMENT_PLUGIN,
        validation_plugin=request.validation_plugin or DEFAULT_VALIDATION_PLUGIN,
    )


def source_package_id(source: lb.ChaincodeSource) -> str:
    """The local package an approval names ("" for none or unavailable)."""
    if source.WhichOneof("Type") == "local_package":
        return source.local_package.package_id
    return ""


def committed_sequence(simulator: TxSimulator, name: str) -> int:
    """The committed sequence of `name` (0: not defined); the read is recorded.

    Raises:
        LifecycleError: the stored sequence is no Int64.
    """
    data = simulator.get_state(LIFECYCLE_NAMESPACE, field_key(name, "Sequence"))
    state = db_pb2.StateData()
    try:
        state.ParseFromString(data or b"")
    except DecodeError as error:
        raise LifecycleError(f"could not get current sequence: {error}") from error
    if state.WhichOneof("Type") not in (None, "Int64"):
        raise LifecycleError("could not get current sequence: it is not an Int64")
    return state.Int64


def check_approval(
    simulator: TxSimulator, mspid: str, definition: ChaincodeDefinition, package_id: str
) -> None:
    """Fabric's sequence rules for approving: the committed or the next sequence.

    Re-approving the committed sequence must keep its parameters (it may change the
    package); re-approving the next one must change something.

    Raises:
        LifecycleError: the rule broken.
    """
    name, requested = definition.name, definition.sequence
    current = committed_sequence(simulator, name)
    if requested == current == 0:
        raise LifecycleError(
            "requested sequence is 0, but first definable sequence number is 1"
        )
    if requested < current:
        raise LifecycleError(
            f"currently defined sequence {current} is larger than requested sequence "
            f"{requested}"
        )
    if requested > current + 1:
        raise LifecycleError(
            f"requested sequence {requested} is larger than the next available "
            f"sequence number {current + 1}"
        )
    if requested == current:
        _check_same_as_committed(simulator, definition)
        return
    unchanged = is_approved(simulator, mspid, definition)
    same_source = source_is_approved(
        simulator, mspid, name=name, sequence=requested, package_id=package_id
    )
    if unchanged and same_source:
        raise LifecycleError(
            f"attempted to redefine uncommitted sequence ({requested}) for namespace "
            f"{name} with unchanged content"
        )


def check_next_sequence(
    simulator: TxSimulator, definition: ChaincodeDefinition
) -> None:
    """Commit and readiness checks are for the next sequence only.

    Raises:
        LifecycleError: the requested sequence is not the committed one + 1.
    """
    current = committed_sequence(simulator, definition.name)
    if definition.sequence != current + 1:
        raise LifecycleError(
            f"requested sequence is {definition.sequence}, but new definition must be "
            f"sequence {current + 1}"
        )


def approvals(
    simulator: TxSimulator, channel: PeerChannel, definition: ChaincodeDefinition
) -> dict[str, bool]:
    """Whether each organisation of the channel approved exactly `definition`."""
    mspids = sorted(org.mspid for org in channel.config.application_orgs.values())
    return {mspid: is_approved(simulator, mspid, definition) for mspid in mspids}


def check_commit_approvals(
    approvals: Mapping[str, bool], definition: ChaincodeDefinition, *, mspid: str
) -> None:
    """A commit needs this peer's organisation's approval and a majority of approvals.

    Raises:
        LifecycleError: this organisation did not approve, or fewer than a majority did.
    """
    if mspid not in approvals:
        raise LifecycleError(
            "impossibly, this peer's org is processing requests for a channel it is "
            "not a member of"
        )
    if not approvals[mspid]:
        raise LifecycleError(
            f"chaincode definition not agreed to by this org ({mspid})"
        )
    approved = sorted(org for org, ok in approvals.items() if ok)
    missing = sorted(org for org, ok in approvals.items() if not ok)
    needed = len(approvals) // 2 + 1
    if len(approved) < needed:
        raise LifecycleError(
            f"chaincode definition '{definition.name}' sequence {definition.sequence} "
            f"is approved by {len(approved)} of {len(approvals)} organizations "
            f"({', '.join(approved)}); a commit needs a majority ({needed}); not "
            f"approved by: {', '.join(missing)}"
        )


def approved_definition(
    simulator: TxSimulator, mspid: str, *, name: str, sequence: int, channel_id: str
) -> Approval:
    """This organisation's approval (sequence 0: the latest, committed or next).

    Raises:
        LifecycleError: no approval is found, or this peer lacks its plaintext.
    """
    requested = sequence
    collection = implicit_collection(mspid)
    if requested == 0:
        requested = committed_sequence(simulator, name)
        next_key = metadata_key(f"{name}#{requested + 1}")
        if simulator.get_private_data(LIFECYCLE_NAMESPACE, collection, next_key):
            requested += 1
    approval = read_approval(simulator, mspid, name=name, sequence=requested)
    if approval is None:
        raise LifecycleError(
            f"could not fetch approved chaincode definition (name: '{name}', "
            f"sequence: '{sequence}') on channel '{channel_id}'"
        )
    return approval


def approved_result(approval: Approval) -> lb.QueryApprovedChaincodeDefinitionResult:
    definition = approval.definition
    result = lb.QueryApprovedChaincodeDefinitionResult(**_result_fields(definition))
    if approval.package_id:
        result.source.local_package.package_id = approval.package_id
    else:
        result.source.unavailable.SetInParent()
    return result


def committed_definition(simulator: TxSimulator, name: str) -> ChaincodeDefinition:
    """The committed definition of `name`, read through the simulator.

    Raises:
        DefinitionNotFound: `name` is not defined.
        LifecycleError: the stored definition does not decode.
    """
    try:
        definition = read_definition(SimulatedState(simulator), name)
    except ChaincodeDefinitionError as error:
        raise LifecycleError(str(error)) from error
    if definition is None:
        raise DefinitionNotFound(f"namespace {name} is not defined")
    return definition


def definition_result(
    definition: ChaincodeDefinition, approvals: Mapping[str, bool]
) -> lb.QueryChaincodeDefinitionResult:
    return lb.QueryChaincodeDefinitionResult(
        **_result_fields(definition), approvals=dict(approvals)
    )


def definitions_result(simulator: TxSimulator) -> lb.QueryChaincodeDefinitionsResult:
    """Every committed chaincode definition of the channel, by name.

    Raises:
        LifecycleError: a stored entry does not decode.
    """
    result = lb.QueryChaincodeDefinitionsResult()
    entries = simulator.get_state_range(
        LIFECYCLE_NAMESPACE, _METADATA_PREFIX, _METADATA_PREFIX + _RANGE_END
    )
    names = []
    while (entry := entries.next()) is not None:
        metadata = db_pb2.StateMetadata()
        try:
            metadata.ParseFromString(entry.value)
        except DecodeError as error:
            raise LifecycleError(f"{entry.key} does not decode: {error}") from error
        if metadata.datatype == DEFINITION_TYPE:
            names.append(entry.key.removeprefix(_METADATA_PREFIX))
    for name in names:
        definition = committed_definition(simulator, name)
        result.chaincode_definitions.add(name=name, **_result_fields(definition))
    return result


def _check_same_as_committed(
    simulator: TxSimulator, definition: ChaincodeDefinition
) -> None:
    try:
        committed = read_definition(SimulatedState(simulator), definition.name)
    except ChaincodeDefinitionError as error:
        raise LifecycleError(str(error)) from error
    if committed is None:
        raise LifecycleError(
            "missing metadata for currently committed sequence number "
            f"({definition.sequence})"
        )
    mismatch = parameter_mismatch(committed, definition)
    if mismatch:
        raise LifecycleError(
            "attempted to redefine the current committed sequence "
            f"({definition.sequence}) for namespace {definition.name} with different "
            f"parameters: {mismatch}"
        )


def _committed_or_none(ledger: _Committed, name: str) -> ChaincodeDefinition | None:
    try:
        return read_definition(ledger, name)
    except ChaincodeDefinitionError as error:
        raise LifecycleError(
            f"could not retrieve committed definition for chaincode '{name}': {error}"
        ) from error


def _default_policy(channel: PeerChannel) -> bytes:
    try:
        channel.config.policy_manager.get(DEFAULT_ENDORSEMENT_POLICY_REF)
    except PolicyError:
        raise LifecycleError(
            f"could not set defaults for chaincode definition in channel "
            f"{channel.channel_id}: policy '{DEFAULT_ENDORSEMENT_POLICY_REF}' must be "
            f"defined for channel '{channel.channel_id}' before chaincode operations "
            "can be attempted"
        ) from None
    return default_endorsement_policy()


class _ResultFields(TypedDict):
    sequence: int
    version: str
    endorsement_plugin: str
    validation_plugin: str
    validation_parameter: bytes
    init_required: bool
    collections: collection_pb2.CollectionConfigPackage


def _result_fields(definition: ChaincodeDefinition) -> _ResultFields:
    """The fields every definition query result (approved, committed, all) carries."""
    return _ResultFields(
        sequence=definition.sequence,
        version=definition.version,
        endorsement_plugin=definition.endorsement_plugin,
        validation_plugin=definition.validation_plugin,
        validation_parameter=definition.endorsement_policy,
        init_required=definition.init_required,
        collections=_collections(definition),
    )


def _collections(
    definition: ChaincodeDefinition,
) -> collection_pb2.CollectionConfigPackage:
    package = collection_pb2.CollectionConfigPackage()
    try:
        package.ParseFromString(definition.collections)
    except DecodeError as error:
        raise LifecycleError(
            f"the collections of '{definition.name}' do not decode: {error}"
        ) from error
    return package
