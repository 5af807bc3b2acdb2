"""The only medledger package that touches the `cryptography` library.

Keys, ECDSA signatures (SHA-256, DER, low-S), X.509 certificates and CRLs, behind a
small typed API that the MSP, policies, protoutil and the nodes build on.
"""

from common.crypto.certs import (
    ATTRIBUTES_OID,
    Certificate,
    RevocationList,
    load_certificate,
    verify_signature,
)
from common.crypto.signing import PrivateKey, PublicKey, sha256

__all__ = [
    "ATTRIBUTES_OID",
    "Certificate",
    "PrivateKey",
    "PublicKey",
    "RevocationList",
    "load_certificate",
    "sha256",
    "verify_signature",
]
