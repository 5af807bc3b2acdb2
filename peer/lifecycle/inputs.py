"""Checks on a chaincode definition before it is approved or committed (Fabric 2.5's rules).

Execute phase of `_lifecycle`. The name and version must be well formed and the
name no system chaincode's; each collection must have a valid unique name, sane peer
counts and a member policy that is an OR of principals of the channel's
organisations; and an upgrade must keep every committed collection with its
blockToLive (collections cannot be removed or have their expiry changed).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from google.protobuf.message import DecodeError

from common.errors import IdentityError
from common.msp import MspManager
from peer.errors import LifecycleError
from peer.lifecycle.definitions import ChaincodeDefinition
from protos.common import policies_pb2
from protos.msp import msp_principal_pb2
from protos.peer import collection_pb2

__all__ = ["static_collections", "validate_definition_input"]

_NAME = re.compile(r"[a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*")
_VERSION = re.compile(r"[A-Za-z0-9_.+-]+")
_COLLECTION_NAME = re.compile(r"[A-Za-z0-9-]+([A-Za-z0-9_-]+)*")
SYSTEM_CHAINCODE_NAMES = frozenset({"cscc", "escc", "lscc", "qscc", "vscc"})

_Principal = msp_principal_pb2.MSPPrincipal


def validate_definition_input(
    *,
    name: str,
    version: str,
    collections: collection_pb2.CollectionConfigPackage,
    msps: MspManager,
    committed: ChaincodeDefinition | None,
) -> None:
    """Fabric's checks of a definition's name, version and collections.

    Raises:
        LifecycleError: the first rule broken, in Fabric's words.
    """
    if not _NAME.fullmatch(name):
        raise LifecycleError(
            f"invalid chaincode name '{name}'. Names can only consist of "
            "alphanumerics, '_', and '-' and can only begin with alphanumerics"
        )
    if name in SYSTEM_CHAINCODE_NAMES:
        raise LifecycleError(
            f"chaincode name '{name}' is the name of a system chaincode"
        )
    if not _VERSION.fullmatch(version):
        raise LifecycleError(
            f"invalid chaincode version '{version}'. Versions can only consist of "
            "alphanumerics, '_', '-', '+', and '.'"
        )
    configs = static_collections(collections)
    _check_collections(configs, msps)
    if committed is not None and committed.collections:
        _check_against_committed(configs, static_collections_of(committed))


def static_collections(
    package: collection_pb2.CollectionConfigPackage,
) -> list[collection_pb2.StaticCollectionConfig]:
    """The static collection configs of a package.

    Raises:
        LifecycleError: an entry is not a static collection config.
    """
    configs = []
    for config in package.config:
        if not config.HasField("static_collection_config"):
            raise LifecycleError(
                "collection config contains unexpected payload type: "
                f"{config.WhichOneof('payload')}"
            )
        configs.append(config.static_collection_config)
    return configs


def static_collections_of(
    definition: ChaincodeDefinition,
) -> list[collection_pb2.StaticCollectionConfig]:
    package = collection_pb2.CollectionConfigPackage()
    try:
        package.ParseFromString(definition.collections)
    except DecodeError as error:
        raise LifecycleError(
            f"the committed collections of '{definition.name}' do not decode: {error}"
        ) from error
    return static_collections(package)


def _check_collections(
    configs: Sequence[collection_pb2.StaticCollectionConfig], msps: MspManager
) -> None:
    seen: set[str] = set()
    for config in configs:
        name = config.name
        if not _COLLECTION_NAME.fullmatch(name):
            raise LifecycleError(
                f"invalid collection name '{name}'. Names can only consist of "
                "alphanumerics, '_', and '-' and cannot begin with '_'"
            )
        if name in seen:
            raise LifecycleError(
                f"collection-name: {name} -- found duplicate in collection configuration"
            )
        seen.add(name)
        if config.maximum_peer_count < config.required_peer_count:
            raise LifecycleError(
                f"collection-name: {name} -- maximum peer count "
                f"({config.maximum_peer_count}) cannot be less than the required peer "
                f"count ({config.required_peer_count})"
            )
        if config.required_peer_count < 0:
            raise LifecycleError(
                f"collection-name: {name} -- requiredPeerCount "
                f"({config.required_peer_count}) cannot be less than zero"
            )
        _check_member_policy(config, msps)


def _check_member_policy(
    config: collection_pb2.StaticCollectionConfig, msps: MspManager
) -> None:
    name = config.name
    if not config.HasField("member_orgs_policy"):
        raise LifecycleError(
            f"collection member policy is not set for collection '{name}'"
        )
    if not config.member_orgs_policy.HasField("signature_policy"):
        raise LifecycleError(
            f"collection member org policy is empty for collection '{name}'"
        )
    envelope = config.member_orgs_policy.signature_policy
    if not _is_or_concatenation(envelope.rule):
        raise LifecycleError(
            f"collection-name: {name} -- error in member org policy: signature policy "
            "is not an OR concatenation"
        )
    for principal in envelope.identities:
        _check_principal(name, principal, msps)


def _is_or_concatenation(rule: policies_pb2.SignaturePolicy) -> bool:
    if not rule.HasField("n_out_of"):
        return True
    if rule.n_out_of.n != 1:
        return False
    return all(_is_or_concatenation(inner) for inner in rule.n_out_of.rules)


def _check_principal(collection: str, principal: _Principal, msps: MspManager) -> None:
    kind = principal.principal_classification
    try:
        if kind == _Principal.ROLE:
            role = msp_principal_pb2.MSPRole.FromString(principal.principal)
            mspid = role.msp_identifier
        elif kind == _Principal.ORGANIZATION_UNIT:
            unit = msp_principal_pb2.OrganizationUnit.FromString(principal.principal)
            mspid = unit.msp_identifier
        elif kind == _Principal.IDENTITY:
            msps.deserialize_identity(principal.principal)
            return
        else:
            raise LifecycleError(
                f"collection-name: {collection} -- principal type {kind} is not supported"
            )
    except DecodeError as error:
        raise LifecycleError(
            f"collection-name: {collection} -- cannot unmarshal principal: {error}"
        ) from error
    except IdentityError:
        raise LifecycleError(
            f"collection-name: {collection} -- contains an identity that is not part "
            "of the channel"
        ) from None
    if mspid not in msps:
        raise LifecycleError(
            f"collection-name: {collection} -- collection member '{mspid}' is not part "
            "of the channel"
        )


def _check_against_committed(
    proposed: Sequence[collection_pb2.StaticCollectionConfig],
    committed: Sequence[collection_pb2.StaticCollectionConfig],
) -> None:
    if not committed:
        return
    if not proposed:
        raise LifecycleError(
            "the proposed collection config does not contain previously defined "
            "collections"
        )
    by_name = {config.name: config for config in proposed}
    for existing in committed:
        new = by_name.get(existing.name)
        if new is None:
            raise LifecycleError(
                f"existing collection [{existing.name}] missing in the proposed "
                "collection configuration"
            )
        if new.block_to_live != existing.block_to_live:
            raise LifecycleError(
                f"the BlockToLive in an existing collection [{existing.name}] "
                f"modified. Existing value [{existing.block_to_live}]"
            )
