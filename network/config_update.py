"""Making channel config updates: the difference of two configs, admin signatures, and
the CONFIG_UPDATE envelope an administrator broadcasts.

`compute_update(original, updated, channel_id=...)` finds the smallest ConfigUpdate
that turns one config into the other, as Fabric's ``configtxlator compute_update``
does; `sign_config_update` adds an admin's approval; `create_config_update_tx` wraps
the signed update for the orderer, which judges it with `common.configtx`.

The rules of the difference are `common.configtx.update`'s.
"""

from __future__ import annotations

from collections.abc import Iterable

from common.configtx import EnvelopeSigner, create_signed_tx
from common.configtx.update import compute_update as compute_difference
from common.protoutil import Timestamp, new_nonce, signature_header_bytes
from protos.common import common_pb2, configtx_pb2

__all__ = [
    "compute_update",
    "config_update_envelope",
    "create_config_update_tx",
    "sign_config_update",
]


def compute_update(
    original: configtx_pb2.Config, updated: configtx_pb2.Config, *, channel_id: str
) -> configtx_pb2.ConfigUpdate:
    """The ConfigUpdate that turns `original` into `updated` on `channel_id`
    (`common.configtx.update.compute_update`, which documents the rules).

    Raises:
        ConfigUpdateError: a config has no channel group, or the two do not differ.
    """
    return compute_difference(channel_id, original, updated)


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
