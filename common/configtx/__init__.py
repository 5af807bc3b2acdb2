"""Channel config updates: validating a CONFIG_UPDATE and making the CONFIG envelope.

The orderer calls `validate_config_update(current, envelope)` on a CONFIG_UPDATE
envelope from Broadcast and orders `create_config_tx(config_envelope, signer, ...)`; a
peer calls `validate_config_envelope(current, parse_config_tx(envelope))` on the
envelope of a config block before adopting the new `ChannelConfig`. The rules are
Fabric 2.5's (read set, write set, versions, mod_policy); an operator's tool
computes the update from two configs with `compute_update(channel_id, original,
updated)`; `network.config_update` signs it.
"""

from common.configtx.configmap import (
    ROOT_GROUP,
    ConfigElement,
    ConfigMap,
    ElementKey,
    ElementKind,
    assemble_group,
    map_config,
)
from common.configtx.envelope import (
    EnvelopeSigner,
    config_update_signed_data,
    create_config_tx,
    create_signed_tx,
    parse_config_tx,
    parse_config_update_tx,
)
from common.configtx.update import compute_update
from common.configtx.validator import (
    authorize_config_update,
    validate_config_envelope,
    validate_config_update,
)

__all__ = [
    "ROOT_GROUP",
    "ConfigElement",
    "ConfigMap",
    "ElementKey",
    "ElementKind",
    "EnvelopeSigner",
    "assemble_group",
    "authorize_config_update",
    "compute_update",
    "config_update_signed_data",
    "create_config_tx",
    "create_signed_tx",
    "map_config",
    "parse_config_tx",
    "parse_config_update_tx",
    "validate_config_envelope",
    "validate_config_update",
]
