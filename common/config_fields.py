"""Field readers that every node's YAML config shares: addresses, paths, durations, TLS.

The peer, orderer and gateway configs (`peer.config`, `orderer.config`, `gateway.config`)
each describe their own keys, but the values inside them — a ``host:port``, a file path
relative to the config file, a Go duration, a server TLS block — mean the same thing
everywhere and fail with the same messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from common.channelconfig import parse_go_duration
from common.config import ConfigNode, optional_list
from common.tls import TlsFiles

__all__ = [
    "EXPECT_ADDRESS",
    "format_address",
    "parse_address",
    "read_address",
    "read_address_overrides",
    "read_duration",
    "read_path",
    "read_paths",
    "read_server_tls",
]

EXPECT_ADDRESS = "host:port with a port from 0 to 65535"

_HOST_PORT = re.compile(
    r"(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(?P<port>\d{1,5})"
)


def parse_address(text: str) -> tuple[str, int]:
    """Split "host:port" (IPv6 hosts in brackets).

    Raises:
        ValueError: not host:port, or the port is above 65535.
    """
    match = _HOST_PORT.fullmatch(text)
    if match is None or int(match["port"]) > 65535:
        raise ValueError(f"expected host:port, got {text!r}")
    return match["host"].strip("[]"), int(match["port"])


def format_address(host: str, port: int) -> str:
    """ "host:port", with IPv6 hosts in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def read_address(node: ConfigNode) -> str:
    """A "host:port" value (port 0 allowed)."""
    text = node.as_str(expected=EXPECT_ADDRESS)
    try:
        parse_address(text)
    except ValueError:
        raise node.expected(EXPECT_ADDRESS) from None
    return text


def read_address_overrides(node: ConfigNode | None) -> Mapping[str, str]:
    """An ``address_overrides`` mapping: endpoint in the channel config → where to dial.

    Both sides are host:port; absent means no overrides.
    """
    overrides: dict[str, str] = {}
    if node is not None:
        for endpoint, target in node.as_items():
            try:
                parse_address(endpoint)
            except ValueError:
                raise target.error(
                    f"the endpoint {endpoint!r} is not {EXPECT_ADDRESS}"
                ) from None
            overrides[endpoint] = read_address(target)
    return MappingProxyType(overrides)


def read_path(node: ConfigNode, base: Path) -> Path:
    """A file or folder path; a relative one is taken from `base` (the config's folder)."""
    path = Path(node.as_str(expected="a file or folder path"))
    return path if path.is_absolute() else base / path


def read_paths(fields: dict[str, ConfigNode], key: str, base: Path) -> tuple[Path, ...]:
    """The optional list of paths under `key` (empty when absent)."""
    return optional_list(fields, key, lambda item: read_path(item, base))


def read_duration(node: ConfigNode, *, example: str = "30s or 2m") -> float:
    """A positive Go duration ("500ms", "2m"), in seconds."""
    expected = f"a Go duration such as {example}"
    text = node.as_str(expected=expected)
    try:
        seconds = parse_go_duration(text)
    except ValueError:
        raise node.expected(expected) from None
    if seconds <= 0:
        raise node.expected("a positive duration")
    return seconds


def read_server_tls(node: ConfigNode, base: Path) -> TlsFiles | None:
    """A listener's ``tls:`` block; None when ``enabled: false``.

    Keys: ``enabled``, then ``cert`` and ``key`` (required when enabled),
    ``client_root_cas`` and ``mutual`` (mutual TLS needs the client roots).
    """
    fields = node.as_mapping(
        required=("enabled",), optional=("cert", "key", "client_root_cas", "mutual")
    )
    if not fields["enabled"].as_bool():
        return None
    for key in ("cert", "key"):
        if key not in fields:
            raise node.error(f"missing key '{key}' (TLS is enabled)")
    mutual = fields.get("mutual")
    files = TlsFiles(
        cert=read_path(fields["cert"], base),
        key=read_path(fields["key"], base),
        root_cas=read_paths(fields, "client_root_cas", base),
        mutual=mutual.as_bool() if mutual is not None else False,
    )
    if files.mutual and not files.root_cas:
        raise node.error("mutual TLS needs 'client_root_cas'")
    return files
