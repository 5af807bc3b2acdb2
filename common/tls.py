"""TLS for gRPC and HTTP listeners and dialers, from PEM files.

Every medledger link is TLS (server-authenticated, optionally mutual) unless the
operator configures plaintext. `TlsFiles` names the PEM files; `server_credentials`
and `channel_credentials` build grpc credentials, `server_ssl_context` and
`client_ssl_context` the equivalent `ssl.SSLContext` for aiohttp. `cert_hash` is the
SHA-256 of a certificate's DER bytes: what a Deliver request's `tls_cert_hash`
binds the request to.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from common.errors import ConfigError

__all__ = [
    "TlsFiles",
    "cert_hash",
    "channel_credentials",
    "client_ssl_context",
    "peer_cert_hash",
    "server_credentials",
    "server_ssl_context",
]

_PEM_AUTH_KEY = "x509_pem_cert"


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsFiles:
    """One side's TLS material.

    For a server, `root_cas` are the CAs its clients' certificates must chain to
    (needed when `mutual`); for a client, the CAs of the servers it trusts, and
    `cert`/`key` are its client certificate (optional unless the server is mutual).
    """

    cert: Path | None = None
    key: Path | None = None
    root_cas: tuple[Path, ...] = ()
    mutual: bool = False


def server_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    """grpc server credentials; client certificates are required when mutual.

    Raises:
        ConfigError: a file is missing or unreadable, or mutual TLS has no root CAs.
    """
    cert, key = _pair(files)
    roots = _read_roots(files.root_cas)
    if files.mutual and not roots:
        raise ConfigError("mutual TLS needs client root CAs")
    return grpc.ssl_server_credentials(
        [(key, cert)],
        root_certificates=roots or None,
        require_client_auth=files.mutual,
    )


def channel_credentials(files: TlsFiles) -> grpc.ChannelCredentials:
    """grpc channel credentials trusting `root_cas`, with the client pair if given."""
    roots = _read_roots(files.root_cas)
    cert = key = None
    if files.cert is not None or files.key is not None:
        cert, key = _pair(files)
    return grpc.ssl_channel_credentials(
        root_certificates=roots or None, private_key=key, certificate_chain=cert
    )


def server_ssl_context(files: TlsFiles) -> ssl.SSLContext:
    """An HTTPS server context; client certificates are required when mutual."""
    _pair(files)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(files.cert), str(files.key))
    roots = _read_roots(files.root_cas)
    if roots:
        context.load_verify_locations(cadata=roots.decode("ascii"))
    if files.mutual:
        if not roots:
            raise ConfigError("mutual TLS needs client root CAs")
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_ssl_context(files: TlsFiles) -> ssl.SSLContext:
    """An HTTPS client context trusting `root_cas`, presenting the pair if given."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    roots = _read_roots(files.root_cas)
    if roots:
        context.load_verify_locations(cadata=roots.decode("ascii"))
    if files.cert is not None and files.key is not None:
        context.load_cert_chain(str(files.cert), str(files.key))
    return context


def cert_hash(certificate: bytes) -> bytes:
    """SHA-256 of a certificate's DER encoding (PEM input is converted first)."""
    if certificate.lstrip().startswith(b"-----BEGIN"):
        certificate = ssl.PEM_cert_to_DER_cert(certificate.decode("ascii"))
    return hashlib.sha256(certificate).digest()


def peer_cert_hash(context: grpc.aio.ServicerContext[Any, Any]) -> bytes | None:
    """The hash of the client's TLS certificate on this call, None without one."""
    pems = list(context.auth_context().get(_PEM_AUTH_KEY, ()))
    return cert_hash(pems[0]) if pems else None


def _pair(files: TlsFiles) -> tuple[bytes, bytes]:
    if files.cert is None or files.key is None:
        raise ConfigError("TLS needs both a certificate and a key file")
    return _read(files.cert), _read(files.key)


def _read_roots(paths: Sequence[Path]) -> bytes:
    return b"".join(_read(path) for path in paths)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read TLS file: {error.strerror}") from error
