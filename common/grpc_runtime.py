"""gRPC core settings our processes start with.

gRPC reads ``GRPC_EXPERIMENTS`` once, when the ``grpc`` module is first imported, so
`apply_runtime_defaults` runs at the very start of the ``medledger`` command, before
any subcommand imports gRPC; chaincode processes a peer launches inherit the setting
through their environment. A value the operator exported is left alone.

The default turns off gRPC's EventEngine for client and listener sockets and uses the
older I/O manager. Measured on the 2-core machine (`medledger bench grpc`, TLS, 128
calls in flight): CPU per message −13 % for unary calls and −22 % on a stream;
`medledger bench orderer` (solo, one Broadcast stream): orderer 330–351 → 297–317 µs
per envelope, client 150–161 → 108–110 µs; `medledger bench e2e --workload create`:
10.9 → 10.5 ms CPU per transaction across all processes.

Fork support is off (``GRPC_ENABLE_FORK_SUPPORT=0``). Our processes start children
(launched chaincode, signature workers, etcd) and always exec right after the fork,
so gRPC's fork handlers are never needed; with them on — the gRPC core's own default
in the 1.8x line, though the Python layer reports them off — the handlers that run in
the child between fork and exec disturb the parent's live connections. Measured with
grpcio 1.85.3: a TLS server under uvloop that spawns ``/bin/true`` in a loop while 16
clients call it failed 65 of 2,226 calls in 20 s (``TSI_DATA_CORRUPTED``, "Socket
closed"), 10,438 of 12,524 with the older I/O manager; with fork support off, 0 of
4,062. That is what a peer launching chaincode processes did to its clients.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

__all__ = ["GRPC_EXPERIMENTS_DEFAULT", "RUNTIME_DEFAULTS", "apply_runtime_defaults"]

GRPC_EXPERIMENTS_DEFAULT = "-event_engine_client,-event_engine_listener"
RUNTIME_DEFAULTS = {
    "GRPC_EXPERIMENTS": GRPC_EXPERIMENTS_DEFAULT,
    "GRPC_ENABLE_FORK_SUPPORT": "0",
}


def apply_runtime_defaults(environ: MutableMapping[str, str] | None = None) -> None:
    """Set our gRPC environment defaults where the operator has not set them."""
    target = os.environ if environ is None else environ
    for name, value in RUNTIME_DEFAULTS.items():
        target.setdefault(name, value)
