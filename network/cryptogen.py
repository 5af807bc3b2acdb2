"""The crypto material generator: CAs, MSP folders and TLS material for a consortium.

For every organisation of a `ConsortiumSpec`, `generate_crypto` makes a signing CA and
a TLS CA, the organisation's MSP folder (what the channel configuration carries) and,
for each peer, orderer and user, a local MSP folder and a TLS folder, in Fabric's
layout:

    OUT/organizations/<domain>/
      ca/{ca.<domain>-cert.pem,priv_sk}    tlsca/{tlsca.<domain>-cert.pem,priv_sk}
      msp/{cacerts,tlscacerts,crls}/ msp/config.yaml              (NodeOUs enabled)
      peers/<name>.<domain>/msp/{cacerts,tlscacerts,keystore,signcerts,config.yaml}
      peers/<name>.<domain>/tls/{ca.crt,server.crt,server.key}
      orderers/<name>.<domain>/...                                (as peers)
      users/<user>@<domain>/msp/...
      users/<user>@<domain>/tls/{ca.crt,client.crt,client.key}

Certificates carry the NodeOU of their role (``peer``, ``orderer``, ``admin``,
``client``); users' certificates also carry Fabric CA attributes.  Generation is
idempotent: existing keys and certificates are kept, and only missing ones are made
(signed by the existing CAs), unless ``force=True``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common.crypto.certs import Certificate, RevocationList
from common.crypto.issue import (
    ExtendedKeyUsage,
    Subject,
    issue_ca,
    issue_certificate,
    issue_crl,
)
from common.crypto.signing import PrivateKey, PublicKey
from common.errors import ConfigError, CryptoError
from network.spec import ConsortiumSpec, NodeSpec, OrganizationSpec, UserSpec

__all__ = [
    "CryptoLayout",
    "IdentityLayout",
    "OrganizationLayout",
    "crypto_layout",
    "generate_crypto",
    "node_ous_config",
]

CA_VALIDITY = timedelta(days=3650)
LEAF_VALIDITY = timedelta(days=3650)
# Certificates start a little in the past so that hosts with slightly slow clocks
# accept them at once.
CLOCK_SKEW = timedelta(minutes=5)

PRIVATE_KEY_FILE = "priv_sk"
_PRIVATE_MODE = 0o600
_PUBLIC_MODE = 0o644

NODE_OUS = (
    ("ClientOUIdentifier", "client"),
    ("PeerOUIdentifier", "peer"),
    ("AdminOUIdentifier", "admin"),
    ("OrdererOUIdentifier", "orderer"),
)


@dataclass(frozen=True)
class IdentityLayout:
    """Where one node's or user's local MSP and TLS material live."""

    name: str
    role: str
    msp_dir: Path
    tls_dir: Path
    tls_cert: Path
    tls_key: Path

    @property
    def signcert(self) -> Path:
        """The enrolment certificate (``signcerts/<name>-cert.pem``)."""
        return self.msp_dir / "signcerts" / f"{self.name}-cert.pem"

    @property
    def private_key(self) -> Path:
        """The signing key (``keystore/priv_sk``)."""
        return self.msp_dir / "keystore" / PRIVATE_KEY_FILE

    @property
    def tls_ca(self) -> Path:
        """The organisation's TLS CA certificate (``tls/ca.crt``)."""
        return self.tls_dir / "ca.crt"


@dataclass(frozen=True)
class OrganizationLayout:
    """Where one organisation's material lives."""

    mspid: str
    domain: str
    root: Path
    peers: tuple[IdentityLayout, ...]
    orderers: tuple[IdentityLayout, ...]
    users: tuple[IdentityLayout, ...]

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca" / f"ca.{self.domain}-cert.pem"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca" / PRIVATE_KEY_FILE

    @property
    def tlsca_cert(self) -> Path:
        return self.root / "tlsca" / f"tlsca.{self.domain}-cert.pem"

    @property
    def tlsca_key(self) -> Path:
        return self.root / "tlsca" / PRIVATE_KEY_FILE

    @property
    def msp_dir(self) -> Path:
        """The organisation MSP, as the channel configuration carries it."""
        return self.root / "msp"

    @property
    def crl(self) -> Path:
        """The signing CA's revocation list inside the organisation MSP."""
        return self.msp_dir / "crls" / f"ca.{self.domain}-crl.pem"

    @property
    def nodes(self) -> tuple[IdentityLayout, ...]:
        return self.peers + self.orderers

    def peer(self, name: str) -> IdentityLayout:
        """A peer by its short name (``peer0``)."""
        return _find(self.peers, f"{name}.{self.domain}")

    def orderer(self, name: str) -> IdentityLayout:
        """An orderer by its short name (``orderer0``)."""
        return _find(self.orderers, f"{name}.{self.domain}")

    def user(self, name: str) -> IdentityLayout:
        """A user by its name in the spec (``Admin``)."""
        return _find(self.users, f"{name}@{self.domain}")


@dataclass(frozen=True)
class CryptoLayout:
    """Where all of a consortium's material lives under the output folder."""

    root: Path
    organizations: tuple[OrganizationLayout, ...]

    def organization(self, mspid: str) -> OrganizationLayout:
        """The organisation with this MSP id (KeyError when there is none)."""
        for organization in self.organizations:
            if organization.mspid == mspid:
                return organization
        raise KeyError(mspid)

    @property
    def organization_dirs(self) -> dict[str, Path]:
        """Each organisation's folder by MSP id."""
        return {org.mspid: org.root for org in self.organizations}


def crypto_layout(spec: ConsortiumSpec, out_dir: Path) -> CryptoLayout:
    """The paths `generate_crypto` writes for `spec` under `out_dir` (reads nothing)."""
    return CryptoLayout(
        out_dir,
        tuple(
            _organization_layout(org, out_dir / "organizations" / org.domain)
            for org in spec.organizations
        ),
    )


def generate_crypto(
    spec: ConsortiumSpec,
    out_dir: Path,
    *,
    force: bool = False,
    now: datetime | None = None,
) -> CryptoLayout:
    """Make every organisation's CAs, MSP folders and TLS material under `out_dir`.

    Existing keys and certificates are kept unless `force` is true, so running again
    after adding a user or a node only makes the new material.

    Raises:
        ConfigError: a CA folder is incomplete (a key without its certificate or the
            reverse), so new certificates could not be signed consistently.
        CryptoError: an existing CA key does not belong to its certificate.
    """
    clock = now if now is not None else datetime.now(UTC)
    layout = crypto_layout(spec, out_dir)
    for organization, organization_layout in zip(
        spec.organizations, layout.organizations, strict=True
    ):
        _generate_organization(
            organization, organization_layout, force=force, now=clock
        )
    return layout


def node_ous_config(ca_file: str) -> str:
    """The MSP ``config.yaml`` enabling NodeOUs, each tied to ``cacerts/<ca_file>``."""
    lines = ["NodeOUs:", "  Enable: true"]
    for key, unit in NODE_OUS:
        lines += [
            f"  {key}:",
            f"    Certificate: cacerts/{ca_file}",
            f"    OrganizationalUnitIdentifier: {unit}",
        ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class _Authority:
    """A CA certificate with its key, ready to sign."""

    cert: Certificate
    key: PrivateKey

    def validity(self, now: datetime) -> tuple[datetime, datetime]:
        """Validity of a new leaf it signs: from just before now, not beyond its own."""
        return now - CLOCK_SKEW, min(now + LEAF_VALIDITY, self.cert.not_after)


@dataclass(frozen=True)
class _Organization:
    """Everything needed to issue an organisation's node and user material."""

    spec: OrganizationSpec
    layout: OrganizationLayout
    ca: _Authority
    tlsca: _Authority
    force: bool
    now: datetime


def _generate_organization(
    spec: OrganizationSpec,
    layout: OrganizationLayout,
    *,
    force: bool,
    now: datetime,
) -> None:
    ca = _ensure_ca(
        layout.ca_cert,
        layout.ca_key,
        Subject(f"ca.{spec.domain}", organization=spec.name),
        force=force,
        now=now,
    )
    tlsca = _ensure_ca(
        layout.tlsca_cert,
        layout.tlsca_key,
        Subject(f"tlsca.{spec.domain}", organization=spec.name),
        force=force,
        now=now,
    )
    organization = _Organization(spec, layout, ca, tlsca, force, now)
    _write_msp_folder(layout.msp_dir, organization)
    if force or not layout.crl.exists():
        _write_file(layout.crl, _empty_crl(ca, now=now).pem, mode=_PUBLIC_MODE)
    for node, node_layout in zip(spec.nodes, layout.nodes, strict=True):
        _generate_node(node, node_layout, organization)
    for user, user_layout in zip(spec.users, layout.users, strict=True):
        _generate_user(user, user_layout, organization)


def _ensure_ca(
    cert_path: Path, key_path: Path, subject: Subject, *, force: bool, now: datetime
) -> _Authority:
    """Load the CA at these paths, or make it when it is absent (or `force`)."""
    if not force and cert_path.exists() and key_path.exists():
        return _read_ca(cert_path, key_path)
    if not force and (cert_path.exists() or key_path.exists()):
        present, missing = (
            (cert_path, key_path) if cert_path.exists() else (key_path, cert_path)
        )
        raise ConfigError(
            f"{cert_path.parent}: incomplete CA: {present.name} exists but "
            f"{missing.name} is missing; restore it, or regenerate all of this "
            "output folder with force"
        )
    key = PrivateKey.generate()
    cert = issue_ca(
        subject, key=key, not_before=now - CLOCK_SKEW, not_after=now + CA_VALIDITY
    )
    _write_file(key_path, key.to_pem(), mode=_PRIVATE_MODE)
    _write_file(cert_path, cert.pem, mode=_PUBLIC_MODE)
    return _Authority(cert, key)


def _read_ca(cert_path: Path, key_path: Path) -> _Authority:
    try:
        cert = Certificate.from_pem(cert_path.read_bytes())
    except CryptoError as error:
        raise type(error)(f"{cert_path}: {error}") from None
    try:
        key = PrivateKey.from_pem(key_path.read_bytes())
    except CryptoError as error:
        raise type(error)(f"{key_path}: {error}") from None
    if key.public_key != cert.public_key:
        raise CryptoError(f"{key_path}: the key does not belong to {cert_path.name}")
    return _Authority(cert, key)


def _write_msp_folder(msp_dir: Path, organization: _Organization) -> None:
    """The CA certificates and NodeOU config that every MSP folder of the org holds."""
    ca_file = organization.layout.ca_cert.name
    tlsca_file = organization.layout.tlsca_cert.name
    _sync_file(msp_dir / "cacerts" / ca_file, organization.ca.cert.pem)
    _sync_file(msp_dir / "tlscacerts" / tlsca_file, organization.tlsca.cert.pem)
    _sync_file(msp_dir / "config.yaml", node_ous_config(ca_file).encode())


def _empty_crl(ca: _Authority, *, now: datetime) -> RevocationList:
    return issue_crl(
        issuer_cert=ca.cert,
        issuer_key=ca.key,
        revoked_serials=(),
        this_update=now - CLOCK_SKEW,
        next_update=ca.cert.not_after,
    )


def _generate_node(
    node: NodeSpec, layout: IdentityLayout, organization: _Organization
) -> None:
    _write_local_msp(layout, organization, attributes=None)
    dns_names, ip_addresses = _tls_server_names(node)
    tlsca = organization.tlsca
    not_before, not_after = tlsca.validity(organization.now)
    _ensure_key_pair(
        layout.tls_cert,
        layout.tls_key,
        lambda public_key: issue_certificate(
            Subject(layout.name, organization=organization.spec.name),
            public_key=public_key,
            issuer_cert=tlsca.cert,
            issuer_key=tlsca.key,
            not_before=not_before,
            not_after=not_after,
            san_dns=dns_names,
            san_ips=ip_addresses,
            ext_key_usage={ExtendedKeyUsage.SERVER_AUTH, ExtendedKeyUsage.CLIENT_AUTH},
        ),
        force=organization.force,
    )


def _generate_user(
    user: UserSpec, layout: IdentityLayout, organization: _Organization
) -> None:
    # Fabric CA writes these three for every enrolled identity; chaincode may rely on
    # them (hf.EnrollmentID in particular).
    attributes = {
        "hf.Affiliation": "",
        "hf.EnrollmentID": user.name,
        "hf.Type": layout.role,
        **user.attributes,
    }
    _write_local_msp(layout, organization, attributes=attributes)
    tlsca = organization.tlsca
    not_before, not_after = tlsca.validity(organization.now)
    _ensure_key_pair(
        layout.tls_cert,
        layout.tls_key,
        lambda public_key: issue_certificate(
            Subject(layout.name, organization=organization.spec.name),
            public_key=public_key,
            issuer_cert=tlsca.cert,
            issuer_key=tlsca.key,
            not_before=not_before,
            not_after=not_after,
            ext_key_usage={ExtendedKeyUsage.CLIENT_AUTH},
        ),
        force=organization.force,
    )


def _write_local_msp(
    layout: IdentityLayout,
    organization: _Organization,
    *,
    attributes: dict[str, str] | None,
) -> None:
    """A node's or user's MSP and TLS CA: shared CA files, its own key and cert."""
    _write_msp_folder(layout.msp_dir, organization)
    _sync_file(layout.tls_ca, organization.tlsca.cert.pem)
    ca = organization.ca
    not_before, not_after = ca.validity(organization.now)
    _ensure_key_pair(
        layout.signcert,
        layout.private_key,
        lambda public_key: issue_certificate(
            Subject(
                layout.name,
                organization=organization.spec.name,
                organizational_units=(layout.role,),
            ),
            public_key=public_key,
            issuer_cert=ca.cert,
            issuer_key=ca.key,
            not_before=not_before,
            not_after=not_after,
            attributes=attributes,
        ),
        force=organization.force,
    )


def _tls_server_names(node: NodeSpec) -> tuple[list[str], list[str]]:
    """DNS names and IP addresses a TLS server certificate must cover."""
    candidates = [node.full_name, node.name, node.host, "localhost", *node.sans]
    candidates += ["127.0.0.1", "::1"]
    dns_names: list[str] = []
    ip_addresses: list[str] = []
    for candidate in dict.fromkeys(candidates):
        try:
            ip_addresses.append(str(ipaddress.ip_address(candidate)))
        except ValueError:
            dns_names.append(candidate)
    return dns_names, ip_addresses


def _ensure_key_pair(
    cert_path: Path,
    key_path: Path,
    issue: Callable[[PublicKey], Certificate],
    *,
    force: bool,
) -> None:
    """Make a key and its certificate unless both already exist (or `force`).

    A leaf with only one of the two files (an interrupted run) is made afresh: nothing
    else depends on it.
    """
    if not force and cert_path.exists() and key_path.exists():
        return
    key = PrivateKey.generate()
    cert = issue(key.public_key)
    _write_file(key_path, key.to_pem(), mode=_PRIVATE_MODE)
    _write_file(cert_path, cert.pem, mode=_PUBLIC_MODE)


def _sync_file(path: Path, data: bytes) -> None:
    """Write a copy of shared material unless the file already holds exactly `data`."""
    if path.exists() and path.read_bytes() == data:
        return
    _write_file(path, data, mode=_PUBLIC_MODE)


def _write_file(path: Path, data: bytes, *, mode: int) -> None:
    """Replace `path` atomically with `data`, with exactly the permissions `mode`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(descriptor, mode)
        os.write(descriptor, data)
    finally:
        os.close(descriptor)
    os.replace(temporary, path)


def _organization_layout(
    organization: OrganizationSpec, root: Path
) -> OrganizationLayout:
    return OrganizationLayout(
        mspid=organization.mspid,
        domain=organization.domain,
        root=root,
        peers=tuple(_node_layout(node, root / "peers") for node in organization.peers),
        orderers=tuple(
            _node_layout(node, root / "orderers") for node in organization.orderers
        ),
        users=tuple(_user_layout(user, root / "users") for user in organization.users),
    )


def _node_layout(node: NodeSpec, parent: Path) -> IdentityLayout:
    folder = parent / node.full_name
    return IdentityLayout(
        name=node.full_name,
        role=str(node.role),
        msp_dir=folder / "msp",
        tls_dir=folder / "tls",
        tls_cert=folder / "tls" / "server.crt",
        tls_key=folder / "tls" / "server.key",
    )


def _user_layout(user: UserSpec, parent: Path) -> IdentityLayout:
    folder = parent / user.full_name
    return IdentityLayout(
        name=user.full_name,
        role="admin" if user.admin else "client",
        msp_dir=folder / "msp",
        tls_dir=folder / "tls",
        tls_cert=folder / "tls" / "client.crt",
        tls_key=folder / "tls" / "client.key",
    )


def _find(identities: tuple[IdentityLayout, ...], name: str) -> IdentityLayout:
    for identity in identities:
        if identity.name == name:
            return identity
    raise KeyError(name)
