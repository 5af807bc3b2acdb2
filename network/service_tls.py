"""TLS pairs for the network's helper servers: etcd members and chaincode servers.

The crypto generator covers peers, orderers and users. etcd members and chaincode
servers run as a service also need a certificate, and `ensure_server_pair` issues one
from an organisation's TLS CA (the CA whose certificate the clients already trust):
for the names it serves, usable as server and as client (etcd members dial each
other). Existing pairs are kept, so a network that restarts keeps its certificates.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common.crypto.certs import Certificate
from common.crypto.issue import ExtendedKeyUsage, KeyUsage, Subject, issue_certificate
from common.crypto.signing import PrivateKey
from common.errors import CryptoError
from network.cryptogen import OrganizationLayout

__all__ = ["ServerPair", "ensure_server_pair"]

VALIDITY = timedelta(days=3650)
CLOCK_SKEW = timedelta(minutes=5)
_PRIVATE_MODE = 0o600
_PUBLIC_MODE = 0o644


@dataclass(frozen=True, slots=True)
class ServerPair:
    """A certificate, its key and the CA that issued it (PEM files)."""

    cert: Path
    key: Path
    ca_cert: Path


def ensure_server_pair(
    organization: OrganizationLayout,
    *,
    common_name: str,
    names: tuple[str, ...],
    folder: Path,
) -> ServerPair:
    """The pair in `folder` (server.crt, server.key), issued now if it is missing.

    Raises:
        CryptoError: the organisation's TLS CA key does not belong to its certificate.
    """
    pair = ServerPair(
        folder / "server.crt", folder / "server.key", organization.tlsca_cert
    )
    if pair.cert.exists() and pair.key.exists():
        return pair
    ca_cert = Certificate.from_pem(organization.tlsca_cert.read_bytes())
    ca_key = PrivateKey.from_pem(organization.tlsca_key.read_bytes())
    if ca_key.public_key != ca_cert.public_key:
        raise CryptoError(f"{organization.tlsca_key}: not the key of the TLS CA")
    dns_names, ip_addresses = _split_names((*names, "localhost", "127.0.0.1"))
    now = datetime.now(UTC)
    key = PrivateKey.generate()
    cert = issue_certificate(
        Subject(common_name, organization=organization.mspid),
        public_key=key.public_key,
        issuer_cert=ca_cert,
        issuer_key=ca_key,
        not_before=now - CLOCK_SKEW,
        not_after=min(now + VALIDITY, ca_cert.not_after),
        san_dns=dns_names,
        san_ips=ip_addresses,
        key_usage={KeyUsage.DIGITAL_SIGNATURE, KeyUsage.KEY_ENCIPHERMENT},
        ext_key_usage={ExtendedKeyUsage.SERVER_AUTH, ExtendedKeyUsage.CLIENT_AUTH},
    )
    _write(pair.key, key.to_pem(), _PRIVATE_MODE)
    _write(pair.cert, cert.pem, _PUBLIC_MODE)
    return pair


def _split_names(names: tuple[str, ...]) -> tuple[list[str], list[str]]:
    dns_names: list[str] = []
    ip_addresses: list[str] = []
    for name in dict.fromkeys(names):
        try:
            ip_addresses.append(str(ipaddress.ip_address(name)))
        except ValueError:
            dns_names.append(name)
    return dns_names, ip_addresses


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(descriptor, data)
    finally:
        os.close(descriptor)
    os.replace(temporary, path)
