"""Free loopback ports for nodes started on one machine (tests, benchmarks, the pytest plugin)."""

from __future__ import annotations

import contextlib
import socket

__all__ = ["free_ports"]


def free_ports(count: int, *, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports on `host` that were free a moment ago.

    All sockets stay bound until every port is chosen, so the ports differ; another
    process may still take one before it is used.
    """
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
