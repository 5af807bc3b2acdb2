"""Config updates on the orderer: a CONFIG_UPDATE from Broadcast becomes a CONFIG envelope.

At Broadcast, after the usual checks, `propose_config_tx` judges the update against the
channel's current config (`common.configtx`) and wraps the resulting ConfigEnvelope in a
CONFIG envelope signed by this orderer; that envelope is ordered alone in its block.
At cut time a chain passes it through `revalidate_config_tx`: a CONFIG envelope whose
config is the next one after the current config goes out unchanged; one made against an
older config (another config block was cut in between) is made again from its
`last_update` against the current config, or refused if it no longer applies.
"""

from __future__ import annotations

from common.channelconfig import ChannelConfig
from common.configtx import (
    EnvelopeSigner,
    create_config_tx,
    parse_config_tx,
    validate_config_update,
)
from common.errors import ConfigUpdateError, ModPolicyNotSatisfied
from orderer.broadcast import EnvelopeChecker, parse_broadcast_envelope
from orderer.errors import BroadcastRejected
from protos.common import common_pb2

__all__ = ["propose_config_tx", "revalidate_config_tx"]


def propose_config_tx(
    current: ChannelConfig, update: bytes, *, signer: EnvelopeSigner
) -> bytes:
    """The CONFIG envelope (signed by `signer`) that a CONFIG_UPDATE envelope makes.

    The update envelope's own signature and Writers check are the caller's
    (`EnvelopeChecker`); this judges the update itself.

    Raises:
        BroadcastRejected: FORBIDDEN when the signatures do not satisfy a mod_policy,
            BAD_REQUEST when the update breaks another rule, REQUEST_ENTITY_TOO_LARGE
            when the CONFIG envelope exceeds AbsoluteMaxBytes.
    """
    try:
        config_envelope = validate_config_update(current, update)
    except ModPolicyNotSatisfied as error:
        raise _rejected(error, common_pb2.FORBIDDEN) from None
    except ConfigUpdateError as error:
        raise _rejected(error, common_pb2.BAD_REQUEST) from None
    config_tx = create_config_tx(
        config_envelope, signer, channel_id=current.channel_id
    ).SerializeToString()
    max_bytes = current.batch_size.absolute_max_bytes
    if len(config_tx) > max_bytes:
        raise BroadcastRejected(
            f"config update: the config envelope of {len(config_tx)} bytes is larger "
            f"than AbsoluteMaxBytes {max_bytes}",
            status=common_pb2.REQUEST_ENTITY_TOO_LARGE,
        )
    return config_tx


def revalidate_config_tx(
    current: ChannelConfig,
    config_tx: bytes,
    *,
    signer: EnvelopeSigner,
    checker: EnvelopeChecker,
) -> bytes:
    """The CONFIG envelope to cut now, given the channel's config at cut time.

    `config_tx` made against `current` (its config is at sequence + 1) is returned as
    it is. Otherwise its `last_update` goes through Broadcast's checks again
    (`checker` is the current config's) and `propose_config_tx`, as Fabric does when
    the config sequence moved between Broadcast and cutting.

    Raises:
        BroadcastRejected: the update no longer applies (the status says why).
    """
    try:
        config_envelope = parse_config_tx(config_tx)
    except ConfigUpdateError as error:
        raise _rejected(error, common_pb2.BAD_REQUEST) from None
    if config_envelope.config.sequence == current.sequence + 1:
        return config_tx
    if not config_envelope.HasField("last_update"):
        raise BroadcastRejected(
            "config envelope made against an older config has no last_update",
            status=common_pb2.BAD_REQUEST,
        )
    update = config_envelope.last_update.SerializeToString()
    checker.check(parse_broadcast_envelope(update), size=len(update))
    return propose_config_tx(current, update, signer=signer)


def _rejected(error: ConfigUpdateError, status: int) -> BroadcastRejected:
    return BroadcastRejected(f"config update: {error}", status=status)
