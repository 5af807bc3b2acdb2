"""Judging a config update against a channel's current config, with Fabric 2.5's rules.

Order phase (the orderer turns a CONFIG_UPDATE into a CONFIG envelope) and commit phase
(a peer re-checks the CONFIG envelope of a config block). The rules, in order:

1. the ConfigUpdate is for this channel;
2. every element of the read set exists at exactly the version the read set gives;
3. the *delta* is every write-set element whose version differs from its read-set
   version (or that the read set lacks); it must not be empty;
4. in the delta, a new element has version 0 and an existing one its current version
   + 1, and every mod_policy is a well-formed policy path;
5. the signatures satisfy the **current** mod_policy of every existing element in the
   delta. A relative mod_policy is resolved in the element's group (a group's own
   policy in itself); a new element needs no policy of its own, because it can only
   join the config through its group, whose version must then be bumped;
6. the delta overlaid on the current config is reassembled from /Channel down, each
   group keeping the members its (new or current) message names, so a group whose
   version is bumped can also drop members; every delta element must be reached;
7. the result parses as a `ChannelConfig` and keeps what may not change: the
   Application group, the consensus type and each organisation's MSP id.

Rule 6's last clause is stricter than Fabric, which silently drops an element added
under a group whose version was not bumped; medledger refuses such an update instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from common.channelconfig import ApplicationOrg, ChannelConfig, OrdererOrg, keys
from common.configtx.configmap import (
    ROOT_GROUP,
    ConfigElement,
    ConfigMap,
    ElementKey,
    assemble_group,
    element_name_problem,
    map_config,
)
from common.configtx.envelope import (
    config_update_signed_data,
    decode,
    parse_config_update_tx,
)
from common.errors import (
    ChannelConfigError,
    ConfigUpdateError,
    ConfigVersionMismatch,
    ModPolicyNotSatisfied,
    PolicyNotSatisfied,
    ReadSetMismatch,
    UnknownPolicy,
)
from common.msp import Identity
from common.policies import Policy, PolicyManager, valid_identities
from protos.common import common_pb2, configtx_pb2

__all__ = [
    "authorize_config_update",
    "validate_config_envelope",
    "validate_config_update",
]

_ROOT = f"/{ROOT_GROUP}"
_APPLICATION = f"{_ROOT}/{keys.APPLICATION}"
_ORDERER = f"{_ROOT}/{keys.ORDERER}"


def validate_config_update(
    current: ChannelConfig, envelope: bytes | common_pb2.Envelope
) -> configtx_pb2.ConfigEnvelope:
    """The next config of the channel, made from a CONFIG_UPDATE envelope.

    Returns the ConfigEnvelope an orderer wraps in a CONFIG envelope
    (`create_config_tx`): the full new config at sequence + 1, and the update envelope
    as `last_update`. The envelope's own signature (the submitter's Writers check) is
    the orderer's business, not this function's.

    Raises:
        ConfigUpdateError: the update breaks a rule; `path` names the element at fault.
    """
    last_update, update_envelope = parse_config_update_tx(
        envelope, channel_id=current.channel_id
    )
    config, _ = _apply(current, update_envelope)
    return configtx_pb2.ConfigEnvelope(config=config, last_update=last_update)


def authorize_config_update(
    current: ChannelConfig, update_envelope: configtx_pb2.ConfigUpdateEnvelope
) -> configtx_pb2.Config:
    """The next config (sequence + 1) that a signed ConfigUpdateEnvelope produces.

    Raises:
        ConfigUpdateError: the update breaks a rule; `path` names the element at fault.
    """
    config, _ = _apply(current, update_envelope)
    return config


def validate_config_envelope(
    current: ChannelConfig, config_envelope: bytes | configtx_pb2.ConfigEnvelope
) -> ChannelConfig:
    """Check a config block's ConfigEnvelope as a committing peer does; return its view.

    The config must be at the next sequence and be exactly what its `last_update`
    produces from the current config under the rules above.

    Raises:
        ConfigUpdateError: wrong sequence, no last_update, a rule broken, or a config
            that differs from the one the update produces.
    """
    if isinstance(config_envelope, bytes):
        config_envelope = decode(
            configtx_pb2.ConfigEnvelope, config_envelope, what="ConfigEnvelope"
        )
    if not config_envelope.HasField("config"):
        raise ConfigUpdateError("the ConfigEnvelope has no config")
    expected_sequence = current.sequence + 1
    if config_envelope.config.sequence != expected_sequence:
        raise ConfigUpdateError(
            f"the config is at sequence {config_envelope.config.sequence}, the next "
            f"config of channel {current.channel_id!r} must be at {expected_sequence}"
        )
    if not config_envelope.HasField("last_update"):
        raise ConfigUpdateError("the ConfigEnvelope has no last_update")
    _, update_envelope = parse_config_update_tx(
        config_envelope.last_update, channel_id=current.channel_id
    )
    config, view = _apply(current, update_envelope)
    if config.channel_group != config_envelope.config.channel_group:
        raise ConfigUpdateError(
            "the config differs from the one its last_update produces", path=_ROOT
        )
    return view


def _apply(
    current: ChannelConfig, update_envelope: configtx_pb2.ConfigUpdateEnvelope
) -> tuple[configtx_pb2.Config, ChannelConfig]:
    update = decode(
        configtx_pb2.ConfigUpdate, update_envelope.config_update, what="ConfigUpdate"
    )
    if update.channel_id != current.channel_id:
        raise ConfigUpdateError(
            f"the config update is for channel {update.channel_id!r}, "
            f"not {current.channel_id!r}"
        )
    current_map = map_config(current.config.channel_group, what="current config")
    read_set = map_config(_optional_group(update, "read_set"), what="read set")
    _check_read_set(read_set, current_map)
    write_set = map_config(_optional_group(update, "write_set"), what="write set")
    delta = {
        key: element
        for key, element in write_set.items()
        if key not in read_set or read_set[key].version != element.version
    }
    if not delta:
        raise ConfigUpdateError(
            "the update changes nothing: no write-set element has a new version (to "
            "add or remove members of a group, bump the group's version too)"
        )
    modified = _check_versions(delta, current_map)
    _check_mod_policies(modified, current, update_envelope)
    config = configtx_pb2.Config(
        sequence=current.sequence + 1,
        channel_group=_merge(current_map, delta),
    )
    view = _parse_updated(config, channel_id=current.channel_id)
    _check_unchanged_identity(current, view)
    return config, view


def _optional_group(
    update: configtx_pb2.ConfigUpdate, field: str
) -> configtx_pb2.ConfigGroup | None:
    if not update.HasField(field):
        return None
    group: configtx_pb2.ConfigGroup = getattr(update, field)
    return group


def _check_read_set(read_set: ConfigMap, current_map: ConfigMap) -> None:
    for key in sorted(read_set):
        existing = current_map.get(key)
        if existing is None:
            raise ReadSetMismatch(
                f"the read set names a {key.kind} the config does not have",
                path=key.path,
            )
        read_version = read_set[key].version
        if existing.version != read_version:
            raise ReadSetMismatch(
                f"the read set expects the {key.kind} at version {read_version}, "
                f"it is at version {existing.version}",
                path=key.path,
            )


def _check_versions(
    delta: ConfigMap, current_map: ConfigMap
) -> list[tuple[ElementKey, ConfigElement]]:
    """Check every delta element's version and mod_policy; return the existing ones."""
    modified = []
    for key in sorted(delta):
        element = delta[key]
        _check_mod_policy_path(element.mod_policy, key)
        existing = current_map.get(key)
        if existing is None:
            if element.version != 0:
                raise ConfigVersionMismatch(
                    f"a new {key.kind} must have version 0, the write set gives "
                    f"version {element.version}",
                    path=key.path,
                )
            continue
        if element.version != existing.version + 1:
            raise ConfigVersionMismatch(
                f"the {key.kind} is at version {existing.version}, so a change must "
                f"set version {existing.version + 1}, not {element.version}",
                path=key.path,
            )
        modified.append((key, existing))
    return modified


def _check_mod_policy_path(mod_policy: str, key: ElementKey) -> None:
    if not mod_policy:
        raise ConfigUpdateError(
            f"the {key.kind}'s mod_policy is not set", path=key.path
        )
    for name in mod_policy.removeprefix("/").split("/"):
        problem = element_name_problem(name)
        if problem is not None:
            raise ConfigUpdateError(
                f"the {key.kind}'s mod_policy {mod_policy!r} is no policy path: "
                f"{problem}",
                path=key.path,
            )


def _check_mod_policies(
    modified: Sequence[tuple[ElementKey, ConfigElement]],
    current: ChannelConfig,
    update_envelope: configtx_pb2.ConfigUpdateEnvelope,
) -> None:
    signed_data = config_update_signed_data(update_envelope)
    if not modified:
        return
    msps = current.msp_manager
    identities: Sequence[Identity] = valid_identities(signed_data, msps)
    for key, existing in modified:
        policy = _mod_policy(current.policy_manager, key, existing.mod_policy)
        try:
            policy.evaluate_identities(identities, msps)
        except PolicyNotSatisfied as error:
            raise ModPolicyNotSatisfied(
                f"the signatures do not satisfy the {key.kind}'s mod_policy "
                f"{existing.mod_policy!r}: {error}",
                path=key.path,
            ) from error


def _mod_policy(root: PolicyManager, key: ElementKey, mod_policy: str) -> Policy:
    """The policy a mod_policy names: absolute from /Channel, else from the element's
    group (a group's own mod_policy is resolved in the group itself)."""
    try:
        if mod_policy.startswith("/"):
            return root.get(mod_policy)
        return root.manager(key.group_names[1:]).get(mod_policy)
    except UnknownPolicy as error:
        raise ConfigUpdateError(
            f"the {key.kind}'s mod_policy {mod_policy!r} names no policy: {error}",
            path=key.path,
        ) from error


def _merge(current_map: ConfigMap, delta: ConfigMap) -> configtx_pb2.ConfigGroup:
    channel_group, reached = assemble_group({**current_map, **delta})
    for key in sorted(set(delta) - reached):
        raise ConfigUpdateError(
            f"the write set adds this {key.kind} without bumping the version of its "
            "group, so the config would not include it",
            path=key.path,
        )
    return channel_group


def _parse_updated(config: configtx_pb2.Config, *, channel_id: str) -> ChannelConfig:
    try:
        return ChannelConfig.from_config(config, channel_id=channel_id)
    except ChannelConfigError as error:
        message = str(error).removeprefix(f"{error.path}: ")
        raise ConfigUpdateError(
            f"the updated config is not valid: {message}", path=error.path
        ) from error


def _check_unchanged_identity(current: ChannelConfig, updated: ChannelConfig) -> None:
    """What a config update may not change, as Fabric's orderer and peers insist."""
    if keys.APPLICATION in current.config.channel_group.groups and (
        keys.APPLICATION not in updated.config.channel_group.groups
    ):
        raise ConfigUpdateError(
            "the Application group cannot be removed", path=_APPLICATION
        )
    if updated.consensus_type != current.consensus_type:
        raise ConfigUpdateError(
            f"the consensus type cannot change from {current.consensus_type!r} to "
            f"{updated.consensus_type!r}",
            path=f"{_ORDERER}/{keys.CONSENSUS_TYPE}",
        )
    _check_mspids(
        _APPLICATION,
        before=_mspids_by_group(current.application_orgs),
        after=_mspids_by_group(updated.application_orgs),
    )
    _check_mspids(
        _ORDERER,
        before=_mspids_by_group(current.orderer_orgs),
        after=_mspids_by_group(updated.orderer_orgs),
    )


def _mspids_by_group(
    orgs: Mapping[str, ApplicationOrg] | Mapping[str, OrdererOrg],
) -> dict[str, str]:
    return {org.name: org.mspid for org in orgs.values()}


def _check_mspids(
    section: str, *, before: Mapping[str, str], after: Mapping[str, str]
) -> None:
    for name, mspid in before.items():
        mspid_after = after.get(name, mspid)
        if mspid_after != mspid:
            raise ConfigUpdateError(
                f"an organisation's MSP id cannot change from {mspid!r} to "
                f"{mspid_after!r}",
                path=f"{section}/{name}/{keys.MSP}",
            )
