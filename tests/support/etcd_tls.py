"""TLS material for test etcd clusters: an orderer organisation's TLS CA and two certs.

`EtcdTls.issue(folder)` makes, with `common.crypto.issue`, a CA, one server certificate
for 127.0.0.1 and localhost (shared by the members, also used between them) and one
client certificate, as PEM files; the harness (tests.support.etcd) passes them to etcd
and etcdctl, and tests to the ordering backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common.crypto.issue import (
    ExtendedKeyUsage,
    KeyUsage,
    Subject,
    issue_ca,
    issue_certificate,
)
from common.crypto.signing import PrivateKey

HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True, kw_only=True)
class EtcdTls:
    """PEM files for a TLS-only cluster: CA, member certificate, client certificate."""

    ca_file: Path
    server_cert_file: Path
    server_key_file: Path
    client_cert_file: Path
    client_key_file: Path

    @classmethod
    def issue(cls, folder: Path, *, org: str = "OrdererOrg") -> EtcdTls:
        """A fresh TLS CA of `org` with a server and a client certificate, in `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        now = datetime.now(UTC)
        not_before, not_after = now - timedelta(hours=1), now + timedelta(days=2)
        ca_key = PrivateKey.generate()
        ca = issue_ca(
            Subject(f"tlsca.{org}", organization=org),
            key=ca_key,
            not_before=not_before,
            not_after=not_after,
        )
        files = {"ca_file": _write(folder / "ca.pem", ca.pem)}
        roles = {
            "server": (
                {ExtendedKeyUsage.SERVER_AUTH, ExtendedKeyUsage.CLIENT_AUTH},
                f"etcd.{org}",
            ),
            "client": ({ExtendedKeyUsage.CLIENT_AUTH}, f"orderer.{org}"),
        }
        for role, (usages, common_name) in roles.items():
            key = PrivateKey.generate()
            cert = issue_certificate(
                Subject(common_name, organization=org),
                public_key=key.public_key,
                issuer_cert=ca,
                issuer_key=ca_key,
                san_dns=("localhost",),
                san_ips=(HOST,),
                key_usage={KeyUsage.DIGITAL_SIGNATURE, KeyUsage.KEY_ENCIPHERMENT},
                ext_key_usage=usages,
                not_before=not_before,
                not_after=not_after,
            )
            files[f"{role}_cert_file"] = _write(folder / f"{role}.pem", cert.pem)
            files[f"{role}_key_file"] = _write(folder / f"{role}-key.pem", key.to_pem())
        return cls(**files)

    def etcdctl_flags(self) -> list[str]:
        return [
            f"--cacert={self.ca_file}",
            f"--cert={self.client_cert_file}",
            f"--key={self.client_key_file}",
        ]

    def member_flags(self) -> list[str]:
        return [
            f"--trusted-ca-file={self.ca_file}",
            f"--cert-file={self.server_cert_file}",
            f"--key-file={self.server_key_file}",
            "--client-cert-auth",
            f"--peer-trusted-ca-file={self.ca_file}",
            f"--peer-cert-file={self.server_cert_file}",
            f"--peer-key-file={self.server_key_file}",
            "--peer-client-cert-auth",
        ]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
