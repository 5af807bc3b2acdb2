"""What the peer, orderer and gateway set up alike: their first config keys, their listener.

Every node's YAML file (`peer.config`, `orderer.config`, `gateway.config`) starts with
the same four keys, `NODE_KEYS`:

    name: peer0.hospital-a.example.com       # the node's name (logs)
    msp: {id: HospitalAMSP, dir: peer0/msp}  # its organisation and local MSP folder
    listen: 127.0.0.1:7051                   # its gRPC listener; port 0 = any free port
    tls: {enabled: true, cert: ..., key: ...}   # that listener's TLS

`read_node_fields` reads them into the keyword arguments that each node's config
dataclass takes first. At start, `new_server` makes the node's gRPC server with its
message size limit and `bind_listener` binds it to ``listen``, returning the address
the server really listens on.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypedDict

import grpc

from common.config import ConfigNode
from common.config_fields import (
    format_address,
    parse_address,
    read_address,
    read_path,
    read_server_tls,
)
from common.tls import TlsFiles, server_credentials

__all__ = [
    "NODE_KEYS",
    "NodeFields",
    "bind_listener",
    "new_server",
    "read_node_fields",
]

NODE_KEYS = ("name", "msp", "listen", "tls")
"""The keys every node's config requires; each loader adds its own."""


class NodeFields(TypedDict):
    """The fields every node's config dataclass has, read from `NODE_KEYS`."""

    source: Path
    name: str
    mspid: str
    msp_dir: Path
    listen: str
    tls: TlsFiles | None


def read_node_fields(path: Path, fields: dict[str, ConfigNode]) -> NodeFields:
    """Read `NODE_KEYS` of the config file at `path` (relative paths from its folder).

    `fields` is the file's top-level mapping, read with `NODE_KEYS` among its required
    keys.

    Raises:
        ConfigError: a value, or a key of ``msp``, is missing or wrong.
    """
    base = path.parent
    msp = fields["msp"].as_mapping(required=("id", "dir"))
    return NodeFields(
        source=path,
        name=fields["name"].as_str(),
        mspid=msp["id"].as_str(),
        msp_dir=read_path(msp["dir"], base),
        listen=read_address(fields["listen"]),
        tls=read_server_tls(fields["tls"], base),
    )


def new_server(
    max_message_bytes: int,
    *,
    options: Sequence[tuple[str, Any]] = (),
    interceptors: Sequence[grpc.aio.ServerInterceptor[Any, Any]] = (),
) -> grpc.aio.Server:
    """A gRPC server that sends and receives messages of up to `max_message_bytes`.

    `options` are further channel arguments; message size limits among them give way.
    """
    merged = dict(options)
    merged["grpc.max_receive_message_length"] = max_message_bytes
    merged["grpc.max_send_message_length"] = max_message_bytes
    return grpc.aio.server(
        options=list(merged.items()), interceptors=list(interceptors) or None
    )


def bind_listener(server: grpc.aio.Server, listen: str, tls: TlsFiles | None) -> str:
    """Bind `server` to `listen` (plaintext when `tls` is None).

    Returns "host:port" with the port really bound (port 0 asks for any free one).
    """
    if tls is None:
        port = server.add_insecure_port(listen)
    else:
        port = server.add_secure_port(listen, server_credentials(tls))
    host, _ = parse_address(listen)
    return format_address(host, port)
