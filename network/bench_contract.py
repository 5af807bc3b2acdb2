"""The chaincode of the endorsement benchmark: one read and one write per transaction.

Served with `python -m chaincode serve --module network.bench_contract`; `Bump` reads
a counter and writes it back incremented, the smallest realistic read-modify-write.
`python -m network.bench_contract serve ...` is the same command on uvloop when it is
installed (the benchmark's launch command).
"""

from __future__ import annotations

import asyncio
import importlib
import sys

from chaincode.cli import main as serve_main
from chaincode.contract import Context, Contract, transaction

__all__ = ["Counter", "contracts", "main"]


class Counter(Contract):
    """A counter per key."""

    def __init__(self) -> None:
        super().__init__("Counter")

    @transaction
    async def Bump(self, ctx: Context, key: str) -> int:
        """Read the key's count and write it back plus one; returns the new count."""
        current = await ctx.stub.get_state(key)
        value = int(current) + 1 if current else 1
        await ctx.stub.put_state(key, str(value).encode())
        return value


contracts = [Counter()]


def main() -> int:
    """`python -m chaincode`, on uvloop's event loop when uvloop is installed."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        pass
    else:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return serve_main()


if __name__ == "__main__":
    sys.exit(main())
