"""Settings of the etcd ordering backend, and how `orderer.yaml` maps onto them.

`backend.etcd` gives the endpoints, the key prefix and the TLS files for etcd; the
orderer's name is its `name`. The Forward service runs on the orderer's gRPC listener,
so `listen` is the address advertised to the other orderers (it must have a fixed
port), and the listener's TLS certificate and key double as the client certificate
for dialling other orderers, trusting `tls.client_root_cas` (the orderer
organisations' TLS CAs); that certificate also tells whether the orderer is one of a
channel's consenters (`is_consenter`). The limits keep their defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from common.channelconfig import Consenter
from common.errors import ConfigError
from common.tls import TlsFiles
from orderer.config import OrdererConfig, parse_address
from orderer.consensus.etcd_forward import ForwardTls
from orderer.consensus.etcd_types import EtcdTlsConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class EtcdSettings:
    """How an orderer reaches etcd and the other orderers, and its limits."""

    endpoints: tuple[str, ...]
    orderer_name: str
    forward_address: str
    """host:port where this orderer serves ForwardService (advertised when cutter)."""
    prefix: str = "/medledger"
    tls: EtcdTlsConfig | None = None
    forward_tls: ForwardTls | None = None
    lease_ttl_s: int = 2
    """etcd's minimum with its default election timeout; take-over takes about this."""
    request_timeout_s: float = 5.0
    order_timeout_s: float = 30.0
    forward_timeout_s: float = 10.0
    forward_attempts_max: int = 20
    forward_in_flight_max: int = 4
    pending_max: int = 100_000
    recent_window_s: float = 90.0
    """How long a cutter remembers the envelopes of stored blocks (to drop retries)."""
    recent_envelopes_max: int = 1_000_000
    retention_blocks: int = 1000
    """Blocks kept in etcd below the lowest height any orderer has reported."""
    report_interval_s: float = 1.0
    prune_interval_s: float = 30.0


def settings_from_config(config: OrdererConfig) -> EtcdSettings:
    """The etcd backend's settings for an orderer.yaml with `backend.type: etcd`.

    Raises:
        ConfigError: no etcd section, `listen` has port 0, or a TLS file is unreadable.
    """
    etcd = config.backend.etcd
    if etcd is None:
        raise ConfigError(f"{config.source}: backend etcd needs an 'etcd' section")
    _, port = parse_address(config.listen)
    if port == 0:
        raise ConfigError(
            f"{config.source}: listen: the etcd backend advertises this address to "
            f"the other orderers, so it needs a fixed port, not 0"
        )
    return EtcdSettings(
        endpoints=etcd.endpoints,
        prefix=etcd.prefix,
        orderer_name=config.name,
        forward_address=config.listen,
        tls=None if etcd.tls is None else _etcd_tls(etcd.tls),
        forward_tls=None if config.tls is None else _forward_tls(config.tls),
    )


def is_consenter(consenters: Sequence[Consenter], tls_cert_pem: bytes | None) -> bool:
    """Whether an orderer with this TLS certificate is one of the channel's consenters.

    The orderer set (who may cut and sign) is in the channel config; an orderer outside
    it forwards but never campaigns. Without consenters in the config, or without a
    certificate to compare (plaintext), every orderer counts as one.
    """
    if not consenters or tls_cert_pem is None:
        return True
    own = first_certificate(tls_cert_pem)
    return any(
        first_certificate(pem) == own
        for consenter in consenters
        for pem in (consenter.server_tls_cert, consenter.client_tls_cert)
    )


def first_certificate(pem: bytes) -> bytes:
    """The first PEM block's base64 body without whitespace (to compare certificates)."""
    begin = pem.find(b"-----BEGIN")
    end = pem.find(b"-----END", begin + 1)
    if begin < 0 or end < 0:
        return b"".join(pem.split())
    body = pem[pem.find(b"\n", begin) + 1 : end]
    return b"".join(body.split())


def _etcd_tls(files: TlsFiles) -> EtcdTlsConfig:
    return EtcdTlsConfig(
        ca_pem=_read_all(files.root_cas),
        cert_pem=None if files.cert is None else _read(files.cert),
        key_pem=None if files.key is None else _read(files.key),
    )


def _forward_tls(files: TlsFiles) -> ForwardTls:
    if files.cert is None or files.key is None:
        raise ConfigError(
            "tls: the etcd backend needs 'cert' and 'key' to dial orderers"
        )
    return ForwardTls(
        ca_pem=_read_all(files.root_cas),
        cert_pem=_read(files.cert),
        key_pem=_read(files.key),
    )


def _read_all(paths: Sequence[Path]) -> bytes:
    return b"".join(_read(path) for path in paths)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read TLS file: {error.strerror}") from error
