"""The chaincode of the endorsement benchmark: one read and one write per transaction.

Served with `python -m chaincode serve --module network.bench_contract`; `Bump` reads
a counter and writes it back incremented, the smallest realistic read-modify-write.
`python -m network.bench_contract serve ...` is the same command (kept for old launch
specs; `python -m chaincode` picks uvloop itself through `common.node.run`).
"""

from __future__ import annotations

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
    """`python -m chaincode`."""
    return serve_main()


if __name__ == "__main__":
    sys.exit(main())
