"""`medledger crypto revoke`: an organisation's CA revokes one of its certificates.

A clinician leaves the hospital, or a key is lost: the organisation's signing CA
(``ca/ca.<domain>-cert.pem`` with ``ca/priv_sk``, as `crypto generate` lays it out)
signs a new revocation list naming the certificate's serial number. The new list keeps
every earlier entry (with its revocation date and reason), carries the next CRL number,
and replaces ``msp/crls/ca.<domain>-crl.pem`` in the organisation MSP folder and in the
local MSP folders of the organisation's peers and orderers.

Where it takes effect, as in Fabric: a channel's members judge identities with the
MSP definitions in the channel config, so the organisation MSP's CRL reaches them only
through a config update (`medledger channel update-org`); a node's local MSP (its own
identity, the admins of its local operations such as `channel join`) is read when the
node starts.

Revoking a certificate that the CRL already names changes nothing and is not an error
(exit status 0, with a message saying so), so the command can be run again safely. A
certificate the organisation's CA did not issue, or an unknown user, is an error.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common.crypto.certs import Certificate, RevocationList
from common.crypto.issue import CRL_REASONS, crl_number, revoke_in_crl
from common.crypto.signing import PrivateKey
from common.errors import ConfigError, CryptoError

__all__ = [
    "Revocation",
    "add_crypto_revoke_command",
    "read_certificate",
    "revoke_certificate",
    "user_certificate",
]

EXIT_OK = 0
CLOCK_SKEW = timedelta(minutes=5)
_PUBLIC_MODE = 0o644


@dataclass(frozen=True, slots=True)
class Revocation:
    """What `revoke_certificate` did."""

    serial: int
    subject: str
    crl_number: int
    written: tuple[Path, ...]
    already_revoked: bool


@dataclass(frozen=True, slots=True)
class _Authority:
    cert: Certificate
    key: PrivateKey
    domain: str


def revoke_certificate(
    org_dir: Path,
    certificate: Certificate,
    *,
    reason: str | None = None,
    now: datetime | None = None,
) -> Revocation:
    """Add `certificate` to the CRL of the signing CA of the organisation in
    `org_dir` and write the CRL into the organisation's MSP folders.

    Raises:
        ConfigError: `org_dir` has no usable CA, or the CA did not issue
            `certificate`.
        CryptoError: the CA key does not belong to the CA certificate.
    """
    authority = _read_authority(org_dir)
    if not certificate.is_issued_by(authority.cert):
        raise ConfigError(
            f"{certificate.subject_string()!r} (serial {certificate.serial_number:x}) "
            f"was not issued by {authority.cert.subject_string()!r}, the CA of "
            f"{org_dir}"
        )
    crl_file = org_dir / "msp" / "crls" / f"ca.{authority.domain}-crl.pem"
    previous = _previous_crl(crl_file, authority.cert)
    subject = certificate.subject_string()
    if previous is not None and previous.is_revoked(certificate.serial_number):
        return Revocation(
            serial=certificate.serial_number,
            subject=subject,
            crl_number=crl_number(previous),
            written=(),
            already_revoked=True,
        )
    clock = now if now is not None else datetime.now(UTC)
    number = 1 if previous is None else crl_number(previous) + 1
    crl = revoke_in_crl(
        previous,
        issuer_cert=authority.cert,
        issuer_key=authority.key,
        serial=certificate.serial_number,
        this_update=clock - CLOCK_SKEW,
        next_update=authority.cert.not_after,
        crl_number=number,
        reason=reason,
    )
    targets = (crl_file, *_local_crl_files(org_dir, crl_file.name))
    for target in targets:
        _write_public(target, crl.pem)
    return Revocation(
        serial=certificate.serial_number,
        subject=subject,
        crl_number=number,
        written=targets,
        already_revoked=False,
    )


def user_certificate(org_dir: Path, user: str) -> Path:
    """The enrolment certificate of `user` (``dr-lee`` or ``dr-lee@<domain>``).

    Raises:
        ConfigError: the organisation has no such user.
    """
    certs = sorted((org_dir / "ca").glob("ca.*-cert.pem"))
    domain = _domain(certs[0]) if len(certs) == 1 else org_dir.resolve().name
    name = user if "@" in user else f"{user}@{domain}"
    signcerts = org_dir / "users" / name / "msp" / "signcerts"
    found = sorted(signcerts.glob("*.pem")) if signcerts.is_dir() else []
    if not found:
        known = sorted(
            path.name for path in (org_dir / "users").glob("*") if path.is_dir()
        )
        raise ConfigError(
            f"{org_dir}: no user {name!r} (users: {', '.join(known) or 'none'})"
        )
    return found[0]


def read_certificate(path: Path) -> Certificate:
    """Raises: ConfigError: unreadable, or not a certificate."""
    try:
        return Certificate.from_pem(path.read_bytes())
    except OSError as error:
        raise ConfigError(f"{path}: {error.strerror}") from None
    except CryptoError as error:
        raise ConfigError(f"{path}: {error}") from None


def _read_authority(org_dir: Path) -> _Authority:
    certs = sorted((org_dir / "ca").glob("ca.*-cert.pem"))
    key_file = org_dir / "ca" / "priv_sk"
    if len(certs) != 1 or not key_file.is_file():
        raise ConfigError(
            f"{org_dir}: expected one ca/ca.<domain>-cert.pem and ca/priv_sk "
            "(an organisation folder of `crypto generate`)"
        )
    cert = read_certificate(certs[0])
    try:
        key = PrivateKey.from_pem(key_file.read_bytes())
    except CryptoError as error:
        raise ConfigError(f"{key_file}: {error}") from None
    if key.public_key != cert.public_key:
        raise CryptoError(f"{key_file}: the key does not belong to {certs[0].name}")
    return _Authority(cert, key, _domain(certs[0]))


def _domain(ca_cert_file: Path) -> str:
    """The domain in ``ca.<domain>-cert.pem``."""
    return ca_cert_file.name.removeprefix("ca.").removesuffix("-cert.pem")


def _previous_crl(path: Path, ca: Certificate) -> RevocationList | None:
    """The CA's current CRL, or None when there is none yet.

    Raises:
        ConfigError: the file is not a CRL of this CA.
    """
    if not path.exists():
        return None
    try:
        crl = RevocationList.from_pem(path.read_bytes())
    except CryptoError as error:
        raise ConfigError(f"{path}: {error}") from None
    if not crl.is_signed_by(ca):
        raise ConfigError(f"{path}: not a CRL signed by {ca.subject_string()!r}")
    return crl


def _local_crl_files(org_dir: Path, name: str) -> list[Path]:
    """The CRL file of every peer's and orderer's local MSP of the organisation."""
    return [
        msp / "crls" / name
        for kind in ("peers", "orderers")
        for msp in sorted((org_dir / kind).glob("*/msp"))
        if msp.is_dir()
    ]


def _write_public(path: Path, data: bytes) -> None:
    """Replace `path` atomically with `data` (mode 0644)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.chmod(temporary, _PUBLIC_MODE)
    os.replace(temporary, path)


# Command


def add_crypto_revoke_command(
    crypto_commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Add `revoke` under `medledger crypto`."""
    revoke = crypto_commands.add_parser(
        "revoke",
        help="revoke a certificate: add it to the organisation CA's CRL",
        description=(
            "Add a certificate to the revocation list of the organisation's signing "
            "CA (keeping earlier entries, CRL number + 1) and write the list into "
            "msp/crls/ of the organisation MSP and of its nodes' local MSPs. "
            "Channels learn of it by `channel update-org`. A certificate already "
            "revoked is reported and left as it is (exit status 0)."
        ),
    )
    revoke.add_argument(
        "--org-dir",
        type=Path,
        required=True,
        help="the organisation's folder (OUT/organizations/<domain>)",
    )
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--cert", type=Path, help="the certificate to revoke (PEM)")
    which.add_argument(
        "--user", help="revoke this user's enrolment certificate (e.g. dr-lee)"
    )
    revoke.add_argument(
        "--reason",
        choices=CRL_REASONS,
        type=str.lower,
        help="the CRL entry's reason (default: none given)",
    )
    revoke.set_defaults(handler=run_crypto_revoke)


def run_crypto_revoke(args: argparse.Namespace) -> int:
    path = args.cert or user_certificate(args.org_dir, args.user)
    certificate = read_certificate(path)
    outcome = revoke_certificate(args.org_dir, certificate, reason=args.reason)
    who = f"{outcome.subject} (serial {outcome.serial:x})"
    if outcome.already_revoked:
        print(f"{who} is already revoked (CRL number {outcome.crl_number}); unchanged")
        return EXIT_OK
    print(f"revoked {who}: CRL number {outcome.crl_number}")
    for written in outcome.written:
        print(f"wrote {written}")
    return EXIT_OK
