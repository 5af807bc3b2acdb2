"""Making channel config updates: the difference of two configs, admin signatures, and
the CONFIG_UPDATE envelope an administrator broadcasts.

The difference itself is `common.configtx.compute_update(channel_id, original,
updated)` (Fabric's ``configtxlator compute_update``); here `sign_config_update` adds
an admin's approval and `create_config_update_tx` wraps the signed update for the
orderer, which judges it with `common.configtx`.

An update travels between administrators as a file, as with Fabric's ``peer channel
signconfigtx -f`` and ``peer channel update -f``: the serialized `common.Envelope` of
type CONFIG_UPDATE whose data is the ConfigUpdateEnvelope. `update_file_envelope`
writes it (unsigned, with only a channel header, as configtxlator users wrap one, or
signed by the last admin who signed it, as Fabric rewrites it); `read_update_file`
checks one; `add_signature` appends an admin's ConfigSignature, refusing a second
one by the same identity; `signer_names` and `write_set_changes` describe a file for
the admin about to sign it (what it adds, sets, rewrites, and removes where the file
or the current config shows it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from common.configtx import (
    ElementKey,
    ElementKind,
    EnvelopeSigner,
    create_signed_tx,
)
from common.configtx import map_config as flatten
from common.crypto import load_certificate
from common.errors import ConfigUpdateError, MalformedCertificate
from common.protoutil import (
    Timestamp,
    channel_header_bytes,
    header_bytes,
    new_nonce,
    payload_bytes,
    signature_header_bytes,
)
from protos.common import common_pb2, configtx_pb2
from protos.msp import identities_pb2

__all__ = [
    "UpdateFile",
    "add_signature",
    "config_update_envelope",
    "create_config_update_tx",
    "has_signed",
    "read_update_file",
    "sign_config_update",
    "signer_names",
    "update_file_envelope",
    "write_set_changes",
]


def sign_config_update(
    config_update: bytes, signer: EnvelopeSigner, *, nonce: bytes | None = None
) -> configtx_pb2.ConfigSignature:
    """An admin's approval: a signature over ``signature_header ‖ config_update``.

    `config_update` is the marshaled ConfigUpdate, exactly as it travels in the
    ConfigUpdateEnvelope; the nonce defaults to fresh random bytes.
    """
    header = signature_header_bytes(
        creator=signer.serialized, nonce=new_nonce() if nonce is None else nonce
    )
    return configtx_pb2.ConfigSignature(
        signature_header=header, signature=signer.sign(header + config_update)
    )


def config_update_envelope(
    config_update: configtx_pb2.ConfigUpdate | bytes,
    *,
    signers: Iterable[EnvelopeSigner] = (),
    signatures: Iterable[configtx_pb2.ConfigSignature] = (),
) -> configtx_pb2.ConfigUpdateEnvelope:
    """A ConfigUpdateEnvelope carrying `signatures` and one new signature per signer.

    A ConfigUpdate message is marshaled once here; pass the bytes instead when the
    signatures were made elsewhere over those bytes.
    """
    if isinstance(config_update, configtx_pb2.ConfigUpdate):
        config_update = config_update.SerializeToString(deterministic=True)
    envelope = configtx_pb2.ConfigUpdateEnvelope(
        config_update=config_update, signatures=signatures
    )
    envelope.signatures.extend(
        sign_config_update(config_update, signer) for signer in signers
    )
    return envelope


def create_config_update_tx(
    channel_id: str,
    update_envelope: configtx_pb2.ConfigUpdateEnvelope,
    signer: EnvelopeSigner,
    *,
    timestamp: Timestamp | None = None,
    nonce: bytes | None = None,
) -> common_pb2.Envelope:
    """The CONFIG_UPDATE envelope an administrator broadcasts, signed by `signer`."""
    return create_signed_tx(
        common_pb2.CONFIG_UPDATE,
        update_envelope.SerializeToString(deterministic=True),
        signer,
        channel_id=channel_id,
        timestamp=timestamp,
        nonce=nonce,
    )


# Update files


@dataclass(frozen=True, slots=True)
class UpdateFile:
    """A config update file, decoded: its channel, the signed ConfigUpdateEnvelope and
    the ConfigUpdate that envelope carries."""

    channel_id: str
    envelope: configtx_pb2.ConfigUpdateEnvelope
    update: configtx_pb2.ConfigUpdate


def update_file_envelope(
    channel_id: str,
    update_envelope: configtx_pb2.ConfigUpdateEnvelope,
    signer: EnvelopeSigner | None = None,
) -> common_pb2.Envelope:
    """The CONFIG_UPDATE envelope to write to an update file.

    Signed by `signer` when given (Fabric's signconfigtx rewrites the envelope as the
    admin who signed last); otherwise unsigned, its header only the channel header.
    """
    if signer is not None:
        return create_config_update_tx(channel_id, update_envelope, signer)
    header = header_bytes(
        channel_header=channel_header_bytes(
            header_type=common_pb2.CONFIG_UPDATE, channel_id=channel_id
        ),
        signature_header=b"",
    )
    data = update_envelope.SerializeToString(deterministic=True)
    return common_pb2.Envelope(payload=payload_bytes(header=header, data=data))


def read_update_file(data: bytes, *, source: str) -> UpdateFile:
    """Decode an update file: an Envelope of type CONFIG_UPDATE whose data is a
    ConfigUpdateEnvelope for the channel its header names.

    The envelope's own signature is not required: the orderer judges the envelope
    the submitter makes.

    Raises:
        ConfigUpdateError: any layer is missing or does not decode, the type is not
            CONFIG_UPDATE, or the header and the update name different channels (the
            message names `source`).
    """
    what = f"{source}: not a config update file"
    envelope = _decode(common_pb2.Envelope, data, what=what)
    payload = _decode(common_pb2.Payload, envelope.payload, what=what)
    if not envelope.payload or not payload.header.channel_header:
        raise ConfigUpdateError(f"{what} (no envelope with a channel header)")
    channel_header = _decode(
        common_pb2.ChannelHeader, payload.header.channel_header, what=what
    )
    if channel_header.type != common_pb2.CONFIG_UPDATE:
        raise ConfigUpdateError(
            f"{what} (its header type is {channel_header.type}, "
            f"not CONFIG_UPDATE {common_pb2.CONFIG_UPDATE})"
        )
    if not channel_header.channel_id:
        raise ConfigUpdateError(f"{what} (its header names no channel)")
    update_envelope = _decode(
        configtx_pb2.ConfigUpdateEnvelope, payload.data, what=what
    )
    if not update_envelope.config_update:
        raise ConfigUpdateError(f"{what} (it carries no config update)")
    update = _decode(
        configtx_pb2.ConfigUpdate, update_envelope.config_update, what=what
    )
    if update.channel_id != channel_header.channel_id:
        raise ConfigUpdateError(
            f"{source}: the envelope is for channel {channel_header.channel_id!r} but "
            f"the update inside for {update.channel_id!r}"
        )
    for index, signature in enumerate(update_envelope.signatures):
        _decode(
            common_pb2.SignatureHeader,
            signature.signature_header,
            what=f"{source}: signature {index}",
        )
    return UpdateFile(channel_header.channel_id, update_envelope, update)


def add_signature(
    update_envelope: configtx_pb2.ConfigUpdateEnvelope, signer: EnvelopeSigner
) -> configtx_pb2.ConfigUpdateEnvelope:
    """A copy of `update_envelope` with `signer`'s signature appended.

    Raises:
        ConfigUpdateError: `signer`'s identity has signed it already.
    """
    if has_signed(update_envelope, signer):
        raise ConfigUpdateError(
            f"{_describe(signer.serialized)} has signed this update already"
        )
    return config_update_envelope(
        update_envelope.config_update,
        signatures=update_envelope.signatures,
        signers=(signer,),
    )


def has_signed(
    update_envelope: configtx_pb2.ConfigUpdateEnvelope, signer: EnvelopeSigner
) -> bool:
    """Whether `signer`'s identity has signed `update_envelope`."""
    return _identity(signer.serialized) in _signer_identities(update_envelope)


def signer_names(update_envelope: configtx_pb2.ConfigUpdateEnvelope) -> list[str]:
    """Who signed, in order: ``MSPID (common name)`` per signature."""
    names = []
    for signature in update_envelope.signatures:
        header = common_pb2.SignatureHeader.FromString(signature.signature_header)
        names.append(_describe(header.creator))
    return names


def write_set_changes(
    update: configtx_pb2.ConfigUpdate, *, current: configtx_pb2.Config | None = None
) -> list[str]:
    """What an update changes, one line per element of the write set that differs
    from the read set: ``adds``/``sets`` KIND PATH (an element new to its group, or a
    value or policy with a new content) or ``rewrites group PATH`` (members added or
    removed, or a new mod_policy); the members of an added group are not listed.

    A rewritten group's write set names every member it keeps, so a member it lacks
    is removed: ``removes KIND PATH`` follows the group's line for each member the
    read set, or the `current` config when the caller has it, holds there. An update
    computed as Fabric's configtxlator computes one leaves a removed member out of
    both sets, so the file alone names removals only given `current`.

    Raises:
        ConfigUpdateError: an element name in the sets or in `current` is not valid.
    """
    read = flatten(_group_or_none(update, "read_set"), what="read set")
    write = flatten(_group_or_none(update, "write_set"), what="write set")
    known = flatten(
        current.channel_group if current is not None else None, what="current config"
    )
    added_groups: list[tuple[str, ...]] = []
    lines = []
    for key in sorted(write, key=lambda key: key.names):
        element = write[key]
        if any(key.names[: len(group)] == group for group in added_groups):
            continue
        before = read.get(key)
        if before is None and element.version == 0:
            lines.append(f"adds {key.kind} {key.path}")
            if key.kind is ElementKind.GROUP:
                added_groups.append(key.names)
        elif before is None:
            lines.append(f"sets {key.kind} {key.path} (version {element.version})")
        elif before.version != element.version:
            verb = "rewrites" if key.kind is ElementKind.GROUP else "sets"
            lines.append(f"{verb} {key.kind} {key.path} (version {element.version})")
            if key.kind is ElementKind.GROUP:
                lines.extend(
                    f"removes {member.kind} {member.path}"
                    for member in _removed_members(key, write, (read, known))
                )
    return lines


def _removed_members(
    group: ElementKey,
    write: Mapping[ElementKey, object],
    bases: Iterable[Mapping[ElementKey, object]],
) -> list[ElementKey]:
    """The direct members of the rewritten `group` that a base holds and the write
    set does not, in path order (groups, then policies, then values of a name)."""
    depth = len(group.names) + 1
    removed = {
        key
        for base in bases
        for key in base
        if len(key.names) == depth
        and key.names[:-1] == group.names
        and key not in write
    }
    return sorted(removed, key=lambda key: (key.names, key.kind))


_M = TypeVar("_M", bound=Message)


def _decode(kind: type[_M], data: bytes, *, what: str) -> _M:
    try:
        return kind.FromString(data)
    except DecodeError:
        raise ConfigUpdateError(
            f"{what} ({kind.DESCRIPTOR.full_name} does not decode)"
        ) from None


def _group_or_none(
    update: configtx_pb2.ConfigUpdate, field: str
) -> configtx_pb2.ConfigGroup | None:
    if not update.HasField(field):
        return None
    group: configtx_pb2.ConfigGroup = getattr(update, field)
    return group


def _signer_identities(
    update_envelope: configtx_pb2.ConfigUpdateEnvelope,
) -> set[tuple[str, bytes]]:
    identities = set()
    for signature in update_envelope.signatures:
        header = common_pb2.SignatureHeader.FromString(signature.signature_header)
        identities.add(_identity(header.creator))
    return identities


def _identity(serialized: bytes) -> tuple[str, bytes]:
    """(MSP id, certificate) of a serialized identity; undecodable bytes as they are."""
    try:
        identity = identities_pb2.SerializedIdentity.FromString(serialized)
    except DecodeError:
        return "", serialized
    return identity.mspid, identity.id_bytes


def _describe(serialized: bytes) -> str:
    """``MSPID (common name)`` of a serialized identity, as far as it decodes."""
    mspid, certificate = _identity(serialized)
    try:
        common_name = load_certificate(certificate).subject_cn
    except MalformedCertificate:
        common_name = ""
    label = mspid or "an unknown identity"
    return f"{label} ({common_name})" if common_name else label
