"""A TLS gRPC echo server that starts child processes in a loop while it serves.

`python -m tests.support.spawning_echo CERT KEY SECONDS` applies medledger's gRPC
runtime defaults (as every `medledger` process does), serves `/echo.Echo/Echo` on a
free loopback port, prints `READY <port>`, spawns `/bin/true` back to back for SECONDS
through the event loop (as a peer launches chaincode), prints `SPAWNED <count>`, and
stops once its standard input closes.

The children must come from a real fork(), which runs the fork handlers: under uvloop
(as our nodes run when it is installed) libuv forks; without it, or with
`SPAWNING_ECHO_LOOP=asyncio`, the asyncio loop's subprocess would use vfork, so a
no-op `preexec_fn` makes it fork.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import time
from pathlib import Path

from common.grpc_runtime import apply_runtime_defaults

METHOD = "/echo.Echo/Echo"


def _same(data: bytes) -> bytes:
    return data


async def serve(cert: bytes, key: bytes, seconds: float, *, force_fork: bool) -> None:
    import grpc

    server = grpc.aio.server()

    async def echo(request: bytes, context: object) -> bytes:
        return request

    handler = grpc.method_handlers_generic_handler(
        "echo.Echo",
        {"Echo": grpc.unary_unary_rpc_method_handler(echo, _same, _same)},
    )
    server.add_generic_rpc_handlers((handler,))
    credentials = grpc.ssl_server_credentials([(key, cert)])
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    print(f"READY {port}", flush=True)
    spawned = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if force_fork:
            child = await asyncio.create_subprocess_exec(
                "/bin/true", preexec_fn=_nothing
            )
        else:
            child = await asyncio.create_subprocess_exec("/bin/true")
        await child.wait()
        spawned += 1
    print(f"SPAWNED {spawned}", flush=True)
    await asyncio.to_thread(sys.stdin.read)
    await server.stop(None)


def _nothing() -> None:
    """A preexec_fn: its presence alone makes subprocess fork instead of vfork."""


def main() -> None:
    apply_runtime_defaults()
    cert, key = Path(sys.argv[1]).read_bytes(), Path(sys.argv[2]).read_bytes()
    seconds = float(sys.argv[3])
    wanted = os.environ.get("SPAWNING_ECHO_LOOP", "uvloop")
    if wanted == "uvloop" and importlib.util.find_spec("uvloop") is not None:
        import uvloop

        uvloop.run(serve(cert, key, seconds, force_fork=False))
    else:
        asyncio.run(serve(cert, key, seconds, force_fork=True))


if __name__ == "__main__":
    main()
