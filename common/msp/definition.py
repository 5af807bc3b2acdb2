"""An MSP definition parsed once from FabricMSPConfig: CAs, chains, CRLs, NodeOUs.

`Msp` validates identities against this; everything costly (CA chains, CRL
signatures, certifier ids) is computed here, at channel-config time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from common.crypto import Certificate, RevocationList, load_certificate, sha256
from common.errors import ConfigError, MalformedCertificate
from common.msp.identity import Role
from protos.msp import msp_config_pb2

SUPPORTED_HASH_FAMILIES = ("", "SHA2")
SUPPORTED_IDENTIFIER_HASHES = ("", "SHA256")


@dataclass(frozen=True, slots=True)
class OUIdentifier:
    """An OU value, optionally tied to the CA that must directly issue the identity.

    `certifiers_id` is SHA-256 over the DER certificates from that CA up to its
    root (Fabric's certifiers identifier); empty means any CA of the MSP.
    """

    organizational_unit: str
    certifiers_id: bytes = b""

    def is_held_by(self, ous: Iterable[str], certifiers_id: bytes) -> bool:
        """True when the OU is among `ous` and, if tied to a CA, the CA matches."""
        return self.organizational_unit in ous and self.is_certified_by(certifiers_id)

    def is_certified_by(self, certifiers_id: bytes) -> bool:
        return not self.certifiers_id or self.certifiers_id == certifiers_id


@dataclass(frozen=True, slots=True, kw_only=True)
class MspDefinition:
    """The parsed trust material of one MSP."""

    mspid: str
    cas_by_subject: Mapping[bytes, tuple[Certificate, ...]]
    ca_chains: Mapping[bytes, tuple[Certificate, ...]]
    parent_ca_ders: frozenset[bytes]
    revoked_by_ca: Mapping[bytes, frozenset[int]]
    admin_ders: frozenset[bytes]
    ou_identifiers: tuple[OUIdentifier, ...]
    node_ous: Mapping[Role, OUIdentifier] | None

    def find_issuer(self, certificate: Certificate) -> Certificate | None:
        """The CA of this MSP that signed `certificate`, if any."""
        return find_issuer(certificate, self.cas_by_subject)

    def certifiers_id(self, ca: Certificate) -> bytes:
        """Fabric's certifiers identifier of a CA: hash of its chain to the root."""
        return sha256(b"".join(cert.der for cert in self.ca_chains[ca.der]))


def parse_msp_config(config: msp_config_pb2.FabricMSPConfig) -> MspDefinition:
    """Parse and check FabricMSPConfig.

    Raises:
        ConfigError: a certificate does not parse, a CA is not a CA or does not chain
            to a root, a NodeOU certificate is not a CA of the MSP, or the crypto
            config asks for other hashes than SHA-256.
    """
    mspid = config.name
    if not mspid:
        raise ConfigError("msp config: name (the msp id) is empty")
    _check_crypto_config(mspid, config)
    roots = _parse_cas(mspid, "root_certs", config.root_certs)
    if not roots:
        raise ConfigError(f"msp {mspid!r}: root_certs is empty")
    intermediates = _parse_cas(mspid, "intermediate_certs", config.intermediate_certs)
    by_subject = _index_by_subject((*roots, *intermediates))
    chains = _ca_chains(mspid, roots, intermediates, by_subject)
    base = MspDefinition(
        mspid=mspid,
        cas_by_subject=by_subject,
        ca_chains=chains,
        parent_ca_ders=frozenset(
            chain[1].der for chain in chains.values() if len(chain) > 1
        ),
        revoked_by_ca=_revocations(mspid, config.revocation_list, by_subject),
        admin_ders=frozenset(
            cert.der for cert in _parse_certs(mspid, "admins", config.admins)
        ),
        ou_identifiers=(),
        node_ous=None,
    )
    return _with_ous(base, config)


def find_issuer(
    certificate: Certificate, cas_by_subject: Mapping[bytes, tuple[Certificate, ...]]
) -> Certificate | None:
    """The CA whose subject is our issuer and whose key verifies our signature.

    Candidates whose key id matches our authority key id are tried first.
    """
    candidates = cas_by_subject.get(certificate.issuer_der, ())
    ordered = sorted(
        candidates,
        key=lambda ca: ca.subject_key_id != certificate.authority_key_id,
    )
    for ca in ordered:
        if ca.der != certificate.der and certificate.is_issued_by(ca):
            return ca
    return None


def _with_ous(
    definition: MspDefinition, config: msp_config_pb2.FabricMSPConfig
) -> MspDefinition:
    """Add OU identifiers and NodeOUs, whose certificates must be CAs of the MSP."""
    ou_identifiers = tuple(
        _ou_identifier(definition, "organizational_unit_identifiers", spec)
        for spec in config.organizational_unit_identifiers
    )
    node_ous = None
    if config.HasField("fabric_node_ous") and config.fabric_node_ous.enable:
        node_ous = _node_ous(definition, config.fabric_node_ous)
    return replace(definition, ou_identifiers=ou_identifiers, node_ous=node_ous)


def _node_ous(
    definition: MspDefinition, node_ous: msp_config_pb2.FabricNodeOUs
) -> dict[Role, OUIdentifier]:
    specs = {
        Role.CLIENT: ("client_ou_identifier", node_ous.client_ou_identifier),
        Role.PEER: ("peer_ou_identifier", node_ous.peer_ou_identifier),
        Role.ADMIN: ("admin_ou_identifier", node_ous.admin_ou_identifier),
        Role.ORDERER: ("orderer_ou_identifier", node_ous.orderer_ou_identifier),
    }
    return {
        role: _ou_identifier(definition, f"fabric_node_ous.{key}", spec)
        for role, (key, spec) in specs.items()
        if node_ous.HasField(key) and spec.organizational_unit_identifier
    }


def _ou_identifier(
    definition: MspDefinition, key: str, spec: msp_config_pb2.FabricOUIdentifier
) -> OUIdentifier:
    if not spec.certificate:
        return OUIdentifier(spec.organizational_unit_identifier)
    ca = _parse_certs(definition.mspid, key, [spec.certificate])[0]
    if ca.der not in definition.ca_chains:
        raise ConfigError(
            f"msp {definition.mspid!r}: {key} certificate {ca.subject_string()!r} "
            f"is not a root or intermediate CA of the msp"
        )
    return OUIdentifier(
        spec.organizational_unit_identifier, definition.certifiers_id(ca)
    )


def _check_crypto_config(mspid: str, config: msp_config_pb2.FabricMSPConfig) -> None:
    crypto = config.crypto_config
    if crypto.signature_hash_family not in SUPPORTED_HASH_FAMILIES:
        raise ConfigError(
            f"msp {mspid!r}: crypto_config.signature_hash_family "
            f"{crypto.signature_hash_family!r} is not supported (expected SHA2)"
        )
    if crypto.identity_identifier_hash_function not in SUPPORTED_IDENTIFIER_HASHES:
        raise ConfigError(
            f"msp {mspid!r}: crypto_config.identity_identifier_hash_function "
            f"{crypto.identity_identifier_hash_function!r} is not supported "
            f"(expected SHA256)"
        )


def _parse_certs(mspid: str, key: str, blobs: Iterable[bytes]) -> list[Certificate]:
    certificates = []
    for index, blob in enumerate(blobs):
        try:
            certificates.append(load_certificate(blob))
        except MalformedCertificate as error:
            raise ConfigError(f"msp {mspid!r}: {key}[{index}]: {error}") from None
    return certificates


def _parse_cas(mspid: str, key: str, blobs: Iterable[bytes]) -> tuple[Certificate, ...]:
    cas = _parse_certs(mspid, key, blobs)
    for index, ca in enumerate(cas):
        if not ca.is_ca:
            raise ConfigError(
                f"msp {mspid!r}: {key}[{index}] {ca.subject_string()!r} is not a CA "
                f"certificate (basic constraints ca=false or missing)"
            )
    return tuple(cas)


def _index_by_subject(
    cas: Iterable[Certificate],
) -> dict[bytes, tuple[Certificate, ...]]:
    index: dict[bytes, tuple[Certificate, ...]] = {}
    for ca in cas:
        if ca not in index.get(ca.subject_der, ()):
            index[ca.subject_der] = (*index.get(ca.subject_der, ()), ca)
    return index


def _ca_chains(
    mspid: str,
    roots: tuple[Certificate, ...],
    intermediates: tuple[Certificate, ...],
    by_subject: Mapping[bytes, tuple[Certificate, ...]],
) -> dict[bytes, tuple[Certificate, ...]]:
    """Map each CA's DER to its chain (itself first, a root last)."""
    root_ders = {root.der for root in roots}
    chains: dict[bytes, tuple[Certificate, ...]] = {root.der: (root,) for root in roots}
    for intermediate in intermediates:
        if intermediate.der in root_ders:
            continue
        chain = [intermediate]
        while chain[-1].der not in root_ders:
            issuer = find_issuer(chain[-1], by_subject)
            if issuer is None or issuer in chain:
                raise ConfigError(
                    f"msp {mspid!r}: intermediate CA {intermediate.subject_string()!r} "
                    f"does not chain to a root CA of the msp"
                )
            chain.append(issuer)
        chains[intermediate.der] = tuple(chain)
    return chains


def _revocations(
    mspid: str,
    crls: Iterable[bytes],
    by_subject: Mapping[bytes, tuple[Certificate, ...]],
) -> dict[bytes, frozenset[int]]:
    """Map each CA's DER to the serials revoked by CRLs that CA signed.

    A CRL signed by no CA of the MSP revokes nothing, as in Fabric.
    """
    revoked: dict[bytes, frozenset[int]] = {}
    for index, blob in enumerate(crls):
        try:
            crl = RevocationList.from_pem(blob)
        except MalformedCertificate as error:
            raise ConfigError(
                f"msp {mspid!r}: revocation_list[{index}]: {error}"
            ) from None
        for ca in by_subject.get(crl.issuer_der, ()):
            if crl.is_signed_by(ca):
                revoked[ca.der] = revoked.get(ca.der, frozenset()) | crl.revoked_serials
    return revoked
