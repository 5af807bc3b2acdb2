"""`python -m chaincode serve`: run chaincode in either of Fabric's two modes.

Dial mode (the peer launched us): `--peer-address HOST:PORT --chaincode-id NAME:HASH`,
or Fabric's environment `CORE_PEER_ADDRESS`, `CORE_CHAINCODE_ID_NAME`,
`CORE_PEER_TLS_ENABLED`, `CORE_PEER_TLS_ROOTCERT_FILE`, `CORE_TLS_CLIENT_KEY_PATH`,
`CORE_TLS_CLIENT_CERT_PATH`. Prints `READY <peer address>` once registered and exits
when the peer ends the stream (status 0) or cannot be reached (status 1).

Server mode (chaincode as a service): `--listen HOST:PORT --chaincode-id ID`, or
`CHAINCODE_SERVER_ADDRESS` and `CHAINCODE_ID` (TLS: `CHAINCODE_TLS_CERT`,
`CHAINCODE_TLS_KEY`, `CHAINCODE_CLIENT_CA_CERT`, all file paths; `CHAINCODE_TLS_DISABLED=true`
ignores them). Prints
`READY <bound address>` once listening and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from chaincode.errors import ServeConfigError, StreamClosedError
from chaincode.loader import load_chaincode
from chaincode.shim.dial import STREAMS_VARIABLE, ClientTls, serve_peer
from chaincode.shim.execute import Chaincode
from chaincode.shim.server import ChaincodeServer, ServerTls
from common.node import run

_log = logging.getLogger(__name__)

STOP_GRACE_S = 5.0
EXIT_OK = 0
EXIT_PEER_LOST = 1
EXIT_CONFIG = 2
MAX_STREAMS = 16
"""At most this many streams, whatever the environment says."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeConfig:
    """Everything `serve` needs, resolved from flags and environment."""

    modules: tuple[str, ...]
    chaincode_id: str
    peer_address: str | None = None
    listen_address: str | None = None
    client_tls: ClientTls | None = None
    server_tls: ServerTls | None = None
    streams: int = 1
    """Dial mode: streams to open (`MEDLEDGER_CHAINCODE_STREAMS`, set by our peer)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m chaincode`; the process exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = serve_config(args, os.environ)
        chaincode = load_chaincode(config.modules)
        run(serve(config, chaincode))
    except ServeConfigError as error:
        print(f"chaincode: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except StreamClosedError as error:
        print(f"chaincode: {error}", file=sys.stderr)
        return EXIT_PEER_LOST
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m chaincode", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser(
        "serve",
        help="serve chaincode to a peer",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__,
    )
    serve_parser.add_argument(
        "--module",
        action="append",
        required=True,
        metavar="MODULE[:ATTRIBUTE]",
        help="contracts to serve (repeatable; the first contract is the default)",
    )
    # The dotted and -name spellings are those Fabric's Go and Node launchers pass.
    serve_parser.add_argument(
        "--chaincode-id", "--chaincode-id-name", help="package id, NAME:HASH"
    )
    mode = serve_parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--peer-address", "--peer.address", help="dial mode: the peer's HOST:PORT"
    )
    mode.add_argument(
        "--listen", help="server mode: HOST:PORT to listen on (port 0: any)"
    )
    serve_parser.add_argument(
        "--tls-root-cert", help="dial mode: the peer's TLS CA (PEM)"
    )
    serve_parser.add_argument("--tls-client-key", help="dial mode: our TLS key (PEM)")
    serve_parser.add_argument("--tls-client-cert", help="dial mode: our TLS cert (PEM)")
    serve_parser.add_argument(
        "--tls-cert", help="server mode: our TLS certificate (PEM)"
    )
    serve_parser.add_argument("--tls-key", help="server mode: our TLS key (PEM)")
    serve_parser.add_argument(
        "--tls-client-ca", help="server mode: require peer certificates from this CA"
    )
    serve_parser.add_argument("--log-level", default="warning", help="default: warning")
    return parser


def serve_config(args: argparse.Namespace, environ: Mapping[str, str]) -> ServeConfig:
    """Resolve the mode, address, id and TLS material (flags win over environment).

    Raises:
        ServeConfigError: no mode, no chaincode id, or an unreadable TLS file.
    """
    modules = tuple(args.module)
    if args.listen or (
        not args.peer_address and environ.get("CHAINCODE_SERVER_ADDRESS")
    ):
        chaincode_id = args.chaincode_id or environ.get("CHAINCODE_ID") or ""
        return ServeConfig(
            modules=modules,
            chaincode_id=_required(chaincode_id, "--chaincode-id (or CHAINCODE_ID)"),
            listen_address=args.listen or environ["CHAINCODE_SERVER_ADDRESS"],
            server_tls=_server_tls(args, environ),
        )
    peer_address = _required(
        args.peer_address or environ.get("CORE_PEER_ADDRESS") or "",
        "--peer-address or --listen (or CORE_PEER_ADDRESS)",
    )
    chaincode_id = args.chaincode_id or environ.get("CORE_CHAINCODE_ID_NAME") or ""
    return ServeConfig(
        modules=modules,
        chaincode_id=_required(
            chaincode_id, "--chaincode-id (or CORE_CHAINCODE_ID_NAME)"
        ),
        peer_address=peer_address,
        client_tls=_client_tls(args, environ),
        streams=_streams(environ),
    )


async def serve(config: ServeConfig, chaincode: Chaincode) -> None:
    """Serve in the configured mode until the peer leaves or a signal arrives.

    Raises:
        StreamClosedError: (dial mode) the peer could not be reached or registered.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, task.cancel)
    try:
        if config.listen_address is not None:
            await _serve_listening(config, chaincode, config.listen_address)
        else:
            assert config.peer_address is not None
            await _serve_dialling(config, chaincode, config.peer_address)
    except asyncio.CancelledError:
        _log.info("stopping on signal")
    finally:
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(number)


async def _serve_listening(
    config: ServeConfig, chaincode: Chaincode, address: str
) -> None:
    server = ChaincodeServer(
        chaincode,
        chaincode_id=config.chaincode_id,
        address=address,
        tls=config.server_tls,
    )
    try:
        bound = await server.start()
    except RuntimeError as error:  # grpc cannot bind the address
        raise ServeConfigError(f"cannot listen on {address}: {error}") from None
    print(f"READY {bound}", flush=True)
    try:
        await server.wait_for_termination()
    finally:
        await server.stop(STOP_GRACE_S)


async def _serve_dialling(
    config: ServeConfig, chaincode: Chaincode, address: str
) -> None:
    await serve_peer(
        chaincode,
        peer_address=address,
        chaincode_id=config.chaincode_id,
        tls=config.client_tls,
        on_ready=lambda: print(f"READY {address}", flush=True),
        streams=config.streams,
    )


def _streams(environ: Mapping[str, str]) -> int:
    """The stream count a medledger peer asked for; 1 when absent or not a number."""
    try:
        return min(max(1, int(environ.get(STREAMS_VARIABLE, "1"))), MAX_STREAMS)
    except ValueError:
        return 1


def _required(value: str, what: str) -> str:
    if not value:
        raise ServeConfigError(f"missing {what}")
    return value


def _client_tls(
    args: argparse.Namespace, environ: Mapping[str, str]
) -> ClientTls | None:
    enabled = environ.get("CORE_PEER_TLS_ENABLED", "").lower() == "true"
    if not (args.tls_root_cert or enabled):
        return None
    root = args.tls_root_cert or environ.get("CORE_PEER_TLS_ROOTCERT_FILE")
    key = args.tls_client_key or environ.get("CORE_TLS_CLIENT_KEY_PATH")
    cert = args.tls_client_cert or environ.get("CORE_TLS_CLIENT_CERT_PATH")
    if not root:
        raise ServeConfigError("TLS is enabled but no root certificate file is given")
    if bool(key) != bool(cert):
        raise ServeConfigError(
            "the TLS client key and certificate must be given together"
        )
    return ClientTls(
        root_certificate=read_pem(root),
        client_key=read_pem(key) if key else None,
        client_certificate=read_pem(cert) if cert else None,
    )


def _server_tls(
    args: argparse.Namespace, environ: Mapping[str, str]
) -> ServerTls | None:
    if environ.get("CHAINCODE_TLS_DISABLED", "").lower() == "true":
        environ = {}
    cert = args.tls_cert or environ.get("CHAINCODE_TLS_CERT")
    key = args.tls_key or environ.get("CHAINCODE_TLS_KEY")
    client_ca = args.tls_client_ca or environ.get("CHAINCODE_CLIENT_CA_CERT")
    if not cert and not key:
        return None
    if not (cert and key):
        raise ServeConfigError("the TLS certificate and key must be given together")
    return ServerTls(
        certificate=read_pem(cert),
        key=read_pem(key),
        client_root_certificate=read_pem(client_ca) if client_ca else None,
    )


def read_pem(path: str) -> bytes:
    """A PEM file, also accepted base64-encoded (as Fabric's peer writes client keys).

    Raises:
        ServeConfigError: the file cannot be read or holds neither form.
    """
    try:
        data = Path(path).read_bytes().strip()
    except OSError as error:
        raise ServeConfigError(f"cannot read {path}: {error.strerror}") from None
    if data.startswith(b"-----BEGIN"):
        return data + b"\n"
    try:
        decoded = base64.b64decode(data, validate=True)
    except binascii.Error:
        decoded = b""
    if not decoded.strip().startswith(b"-----BEGIN"):
        raise ServeConfigError(f"{path} holds neither PEM nor base64-encoded PEM")
    return decoded
