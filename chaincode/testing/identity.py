"""Client identities for chaincode tests: a real X.509 certificate per name, made once.

`make_identity` issues (and caches) a certificate from a per-MSP test CA, with NodeOU
organisational units and optional Fabric CA attributes, so `ctx.client_identity` sees
exactly what it would see from a Fabric CA enrolment.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

from common.crypto import Certificate, PrivateKey
from common.crypto.issue import Subject, issue_ca, issue_certificate
from common.protoutil import SerializedIdentity

_VALIDITY = timedelta(days=365)


def make_identity(
    mspid: str = "Org1MSP",
    common_name: str = "User1",
    *,
    attributes: dict[str, str] | None = None,
    organizational_units: tuple[str, ...] = ("client",),
) -> SerializedIdentity:
    """A SerializedIdentity whose certificate is issued by the test CA of `mspid`."""
    frozen = (
        tuple(sorted((attributes or {}).items())) if attributes is not None else None
    )
    return _identity(mspid, common_name, frozen, organizational_units)


@functools.lru_cache(maxsize=256)
def _identity(
    mspid: str,
    common_name: str,
    attributes: tuple[tuple[str, str], ...] | None,
    organizational_units: tuple[str, ...],
) -> SerializedIdentity:
    ca_certificate, ca_key = _certificate_authority(mspid)
    now = datetime.now(UTC)
    certificate = issue_certificate(
        Subject(
            common_name=common_name,
            organization=mspid,
            organizational_units=organizational_units,
            country="US",
        ),
        public_key=PrivateKey.generate().public_key,
        issuer_cert=ca_certificate,
        issuer_key=ca_key,
        not_before=now - _VALIDITY,
        not_after=now + _VALIDITY,
        attributes=dict(attributes) if attributes is not None else None,
    )
    return SerializedIdentity(mspid=mspid, id_bytes=certificate.pem)


@functools.lru_cache(maxsize=64)
def _certificate_authority(mspid: str) -> tuple[Certificate, PrivateKey]:
    key = PrivateKey.generate()
    now = datetime.now(UTC)
    subject = Subject(
        common_name=f"ca.{mspid.lower()}", organization=mspid, country="US"
    )
    certificate = issue_ca(
        subject, key=key, not_before=now - _VALIDITY, not_after=now + _VALIDITY
    )
    return certificate, key
