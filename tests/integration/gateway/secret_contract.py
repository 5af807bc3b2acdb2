"""A test chaincode that takes private input through the transient map.

`StoreDigest(key)` reads the transient entry `secret`, stores only its SHA-256 under
`key` and returns the digest; `Digest(key)` reads it back. The plaintext must reach the
chaincode and never the ledger. Served with
`python -m chaincode serve --module tests.integration.gateway.secret_contract`.
"""

from __future__ import annotations

import hashlib

from chaincode.contract import Context, Contract, query, transaction
from chaincode.errors import ChaincodeError

_BAD_REQUEST = 400


class Secrets(Contract):
    def __init__(self) -> None:
        super().__init__("Secrets")

    @transaction
    async def StoreDigest(self, ctx: Context, key: str) -> str:
        secret = ctx.stub.get_transient().get("secret")
        if secret is None:
            raise ChaincodeError(
                "transient entry 'secret' is missing", status=_BAD_REQUEST
            )
        digest = hashlib.sha256(secret).hexdigest()
        await ctx.stub.put_state(key, digest.encode())
        return digest

    @query
    async def Digest(self, ctx: Context, key: str) -> str:
        return (await ctx.stub.get_state(key) or b"").decode()

    @query
    async def TransientSize(self, ctx: Context) -> int:
        return len(ctx.stub.get_transient().get("secret", b""))


contracts = [Secrets()]
