"""Membership: Fabric's X.509 MSP (identities, validation, NodeOU roles, principals).

`Msp` is one organisation's trust material; `MspManager` holds a channel's MSPs and
is what policies, the endorser, the validator and the orderer talk to.
"""

from common.msp.definition import OUIdentifier
from common.msp.folder import load_msp_config, load_signing_identity
from common.msp.identity import Identity, Role, SigningIdentity
from common.msp.manager import MspManager
from common.msp.provider import Msp

__all__ = [
    "Identity",
    "Msp",
    "MspManager",
    "OUIdentifier",
    "Role",
    "SigningIdentity",
    "load_msp_config",
    "load_signing_identity",
]
