"""Fabric's X.509 MSP: deserialize and validate identities, roles, principal matching.

One `Msp` per organisation per channel, built from the org's FabricMSPConfig (or an
MSP folder). The endorser, validator, orderer and gateway reach it via `MspManager`.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from google.protobuf.message import DecodeError

from common.crypto import Certificate, sha256
from common.errors import (
    ExpiredCertificate,
    IdentityError,
    InvalidNodeOU,
    RevokedCertificate,
    UnknownMsp,
    UntrustedCertificate,
)
from common.msp.definition import MspDefinition, parse_msp_config
from common.msp.identity import (
    Identity,
    Role,
    certificate_from_id_bytes,
    parse_serialized_identity,
)
from protos.msp import msp_config_pb2, msp_principal_pb2

CACHE_SIZE = 4096
_T = TypeVar("_T")

_ROLE_BY_MSP_ROLE = {
    msp_principal_pb2.MSPRole.MEMBER: Role.MEMBER,
    msp_principal_pb2.MSPRole.ADMIN: Role.ADMIN,
    msp_principal_pb2.MSPRole.CLIENT: Role.CLIENT,
    msp_principal_pb2.MSPRole.PEER: Role.PEER,
    msp_principal_pb2.MSPRole.ORDERER: Role.ORDERER,
}


class Msp:
    """One organisation's X.509 MSP.

    Deserialized identities and certificate chains are cached by their exact bytes,
    so a creator seen in many transactions is parsed and chain-checked once.
    """

    def __init__(self, config: msp_config_pb2.FabricMSPConfig) -> None:
        """Raises ConfigError when the config is not a usable MSP definition."""
        self._config = msp_config_pb2.FabricMSPConfig()
        self._config.CopyFrom(config)
        self._definition: MspDefinition = parse_msp_config(config)
        self._identities: dict[bytes, Identity] = {}
        self._chains: dict[bytes, tuple[Certificate, ...]] = {}

    @classmethod
    def from_config(cls, config: msp_config_pb2.FabricMSPConfig) -> Msp:
        """Build from FabricMSPConfig (as found in channel config)."""
        return cls(config)

    @classmethod
    def from_folder(cls, path: Path | str, *, mspid: str) -> Msp:
        """Build from an MSP folder (cacerts/, intermediatecerts/, crls/, config.yaml).

        Raises:
            ConfigError: a file is missing or wrong; the message names it.
        """
        from common.msp.folder import load_msp_config

        return cls(load_msp_config(Path(path), mspid=mspid))

    @property
    def mspid(self) -> str:
        return self._definition.mspid

    @property
    def node_ous_enabled(self) -> bool:
        return self._definition.node_ous is not None

    def to_config(self) -> msp_config_pb2.FabricMSPConfig:
        """The FabricMSPConfig this MSP was built from (a copy)."""
        config = msp_config_pb2.FabricMSPConfig()
        config.CopyFrom(self._config)
        return config

    def deserialize_identity(self, serialized: bytes) -> Identity:
        """Parse SerializedIdentity bytes into an identity of this MSP (not validated).

        Raises:
            MalformedIdentity: not a SerializedIdentity with a PEM certificate.
            UnknownMsp: the mspid is not this MSP's.
        """
        cached = self._identities.get(serialized)
        if cached is not None:
            return cached
        mspid, id_bytes = parse_serialized_identity(serialized)
        if mspid != self.mspid:
            raise UnknownMsp(
                f"identity names msp {mspid!r}, expected {self.mspid!r}", mspid=mspid
            )
        certificate = certificate_from_id_bytes(id_bytes, mspid=mspid)
        identity = Identity(mspid, certificate, bytes(serialized))
        _remember(self._identities, bytes(serialized), identity)
        return identity

    def validate(self, identity: Identity, *, at: datetime | None = None) -> None:
        """Check that the identity is a valid member of this MSP at time `at` (now).

        Raises:
            UnknownMsp: the identity belongs to another MSP.
            UntrustedCertificate: no chain to a CA of this MSP, or a CA certificate.
            ExpiredCertificate: expired or not yet valid at `at`.
            RevokedCertificate: in a CRL of its issuing CA.
            InvalidNodeOU: NodeOUs on and not exactly one role OU (or OU mismatch).
        """
        if identity.mspid != self.mspid:
            raise UnknownMsp(
                f"identity of msp {identity.mspid!r} presented to msp {self.mspid!r}",
                mspid=identity.mspid,
            )
        chain = self._chain(identity.certificate)
        self._check_validity_period(identity.certificate, at or datetime.now(UTC))
        self._check_revocation(chain)
        self._check_ous(identity.certificate, _certifiers_id(chain))

    def identity_roles(
        self, identity: Identity, *, at: datetime | None = None
    ) -> frozenset[Role]:
        """The roles a valid identity holds: MEMBER, its NodeOU role, ADMIN if listed.

        Raises:
            IdentityError: the identity is not valid in this MSP (see `validate`).
        """
        self.validate(identity, at=at)
        certificate = identity.certificate
        roles = {Role.MEMBER}
        if certificate.der in self._definition.admin_ders:
            roles.add(Role.ADMIN)
        node_ous = self._definition.node_ous or {}
        certifiers_id = _certifiers_id(self._chain(certificate))
        for role, ou in node_ous.items():
            if ou.is_held_by(certificate.subject_ous, certifiers_id):
                roles.add(role)
        return frozenset(roles)

    def has_role(
        self, identity: Identity, role: Role, *, at: datetime | None = None
    ) -> bool:
        """True when the (valid) identity holds `role`.

        Raises:
            IdentityError: the identity is not valid in this MSP (see `validate`).
        """
        return role in self.identity_roles(identity, at=at)

    def satisfies_principal(
        self,
        identity: Identity,
        principal: msp_principal_pb2.MSPPrincipal,
        *,
        at: datetime | None = None,
    ) -> bool:
        """True when the identity is valid at `at` and matches the principal.

        ROLE, IDENTITY and ORGANIZATION_UNIT principals are supported; any other
        classification, or principal bytes that do not parse, never match.
        """
        try:
            if not self._matches(identity, principal):
                return False
            self.validate(identity, at=at)
        except (IdentityError, DecodeError):
            return False
        return True

    def _matches(
        self, identity: Identity, principal: msp_principal_pb2.MSPPrincipal
    ) -> bool:
        """Does the principal describe this identity? (Validity is checked apart.)"""
        classification = principal.principal_classification
        if classification == msp_principal_pb2.MSPPrincipal.ROLE:
            role = msp_principal_pb2.MSPRole.FromString(principal.principal)
            return self._matches_role(identity, role)
        if classification == msp_principal_pb2.MSPPrincipal.IDENTITY:
            return self._matches_identity(identity, principal.principal)
        if classification == msp_principal_pb2.MSPPrincipal.ORGANIZATION_UNIT:
            unit = msp_principal_pb2.OrganizationUnit.FromString(principal.principal)
            return self._matches_unit(identity, unit)
        return False

    def _matches_role(
        self, identity: Identity, principal: msp_principal_pb2.MSPRole
    ) -> bool:
        role = _ROLE_BY_MSP_ROLE.get(principal.role)
        if principal.msp_identifier != self.mspid or identity.mspid != self.mspid:
            return False
        if role is None or role is Role.MEMBER:
            return role is Role.MEMBER
        certificate = identity.certificate
        if role is Role.ADMIN and certificate.der in self._definition.admin_ders:
            return True
        ou = (self._definition.node_ous or {}).get(role)
        certifiers_id = _certifiers_id(self._chain(certificate))
        return ou is not None and ou.is_held_by(certificate.subject_ous, certifiers_id)

    def _matches_identity(self, identity: Identity, principal: bytes) -> bool:
        """Same serialized bytes, or the same MSP id and certificate (DER)."""
        if principal == identity.serialized:
            return True
        mspid, id_bytes = parse_serialized_identity(principal)
        if mspid != identity.mspid:
            return False
        return certificate_from_id_bytes(id_bytes, mspid=mspid) == identity.certificate

    def _matches_unit(
        self, identity: Identity, principal: msp_principal_pb2.OrganizationUnit
    ) -> bool:
        """The OU is in the subject; the certifiers id, when given, must match."""
        certificate = identity.certificate
        if principal.msp_identifier != self.mspid or identity.mspid != self.mspid:
            return False
        if principal.organizational_unit_identifier not in certificate.subject_ous:
            return False
        wanted = principal.certifiers_identifier
        return not wanted or wanted == _certifiers_id(self._chain(certificate))

    def _chain(self, certificate: Certificate) -> tuple[Certificate, ...]:
        """The chain leaf → root, signature-checked once and cached by DER."""
        chain = self._chains.get(certificate.der)
        if chain is None:
            chain = self._build_chain(certificate)
            _remember(self._chains, certificate.der, chain)
        return chain

    def _build_chain(self, certificate: Certificate) -> tuple[Certificate, ...]:
        definition = self._definition
        if certificate.is_ca:
            raise UntrustedCertificate(
                f"{self._subject(certificate)} is a CA certificate and cannot be "
                f"used as an identity"
            )
        issuer = definition.find_issuer(certificate)
        if issuer is None:
            raise UntrustedCertificate(
                f"{self._subject(certificate)} was not issued by a CA of msp "
                f"{self.mspid!r} (issuer {certificate.issuer_string()!r})"
            )
        if issuer.der in definition.parent_ca_ders:
            raise UntrustedCertificate(
                f"{self._subject(certificate)} was issued by "
                f"{issuer.subject_string()!r}, which issues intermediate CAs; "
                f"identities of msp {self.mspid!r} must come from a leaf CA"
            )
        return (certificate, *definition.ca_chains[issuer.der])

    def _check_validity_period(self, certificate: Certificate, at: datetime) -> None:
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        if at < certificate.not_before:
            raise ExpiredCertificate(
                f"{self._subject(certificate)} is not yet valid: valid from "
                f"{certificate.not_before.isoformat()}, checked at {at.isoformat()}"
            )
        if at > certificate.not_after:
            raise ExpiredCertificate(
                f"{self._subject(certificate)} expired at "
                f"{certificate.not_after.isoformat()}, checked at {at.isoformat()}"
            )

    def _check_revocation(self, chain: tuple[Certificate, ...]) -> None:
        """Each certificate in the chain against the CRLs of the CA that issued it."""
        for child, parent in itertools.pairwise(chain):
            revoked = self._definition.revoked_by_ca.get(parent.der, frozenset())
            if child.serial_number in revoked:
                raise RevokedCertificate(
                    f"{self._subject(child)} (serial {child.serial_number:x}) is "
                    f"revoked by a crl of {parent.subject_string()!r}"
                )

    def _check_ous(self, certificate: Certificate, certifiers_id: bytes) -> None:
        """With NodeOUs: exactly one role OU. Without: one of the MSP's OUs, if set."""
        node_ous = self._definition.node_ous
        if node_ous is None:
            self._check_ou_identifiers(certificate, certifiers_id)
            return
        ous = certificate.subject_ous
        held = [role for role, ou in node_ous.items() if ou.organizational_unit in ous]
        for role in held:
            if not node_ous[role].is_certified_by(certifiers_id):
                raise InvalidNodeOU(
                    f"{self._subject(certificate)} carries the {role} OU but was not "
                    f"issued by the CA that msp {self.mspid!r} ties to that role"
                )
        if len(held) != 1:
            expected = ", ".join(ou.organizational_unit for ou in node_ous.values())
            raise InvalidNodeOU(
                f"{self._subject(certificate)} must carry exactly one role OU of "
                f"({expected}); it has {list(ous)}"
            )

    def _check_ou_identifiers(
        self, certificate: Certificate, certifiers_id: bytes
    ) -> None:
        identifiers = self._definition.ou_identifiers
        if not identifiers:
            return
        if not any(
            ou.is_held_by(certificate.subject_ous, certifiers_id) for ou in identifiers
        ):
            raise InvalidNodeOU(
                f"{self._subject(certificate)} has none of the OUs msp "
                f"{self.mspid!r} accepts; it has {list(certificate.subject_ous)}"
            )

    def _subject(self, certificate: Certificate) -> str:
        return f"certificate {certificate.subject_string()!r} of msp {self.mspid!r}"

    def __repr__(self) -> str:
        return f"Msp({self.mspid!r})"


def _certifiers_id(chain: tuple[Certificate, ...]) -> bytes:
    """Fabric's certifiers identifier: SHA-256 over the chain without the leaf."""
    return sha256(b"".join(certificate.der for certificate in chain[1:]))


def _remember(cache: dict[bytes, _T], key: bytes, value: _T) -> None:
    """Insert into a bounded cache, dropping the oldest entry when full."""
    if len(cache) >= CACHE_SIZE:
        cache.pop(next(iter(cache)), None)
    cache[key] = value
