"""A small chaincode for the private data acceptance test (tests/e2e/test_privdata_network.py).

Private values arrive as the transient entry "value". Reads answer with the plaintext
(empty when absent) or the hex SHA-256 the channel holds; `Purge` purges a private key
with its history; `SetKeyPolicy` / `SetPrivateKeyPolicy` give a key a key-level
endorsement policy of the named organisations' peers; `PutPublic` writes public state.
Its collections are in `collections.json` next to this file.
"""

from __future__ import annotations

from chaincode.contract import Context, Contract, query, transaction
from chaincode.shim import KeyEndorsementPolicy
from common.policies import Role


class PrivateDataProbe(Contract):
    def __init__(self) -> None:
        super().__init__("PrivateDataProbe")

    @transaction
    async def PutPrivate(self, ctx: Context, collection: str, key: str) -> None:
        value = ctx.stub.get_transient()["value"]
        await ctx.stub.put_private_data(collection, key, value)

    @transaction
    async def ReadPrivate(self, ctx: Context, collection: str, key: str) -> str:
        return (await ctx.stub.get_private_data(collection, key)).decode()

    @query
    async def GetPrivate(self, ctx: Context, collection: str, key: str) -> str:
        return (await ctx.stub.get_private_data(collection, key)).decode()

    @query
    async def GetPrivateHash(self, ctx: Context, collection: str, key: str) -> str:
        return (await ctx.stub.get_private_data_hash(collection, key)).hex()

    @transaction
    async def Purge(self, ctx: Context, collection: str, key: str) -> None:
        await ctx.stub.purge_private_data(collection, key)

    @transaction
    async def PutPublic(self, ctx: Context, key: str, value: str) -> None:
        await ctx.stub.put_state(key, value.encode())

    @query
    async def GetPublic(self, ctx: Context, key: str) -> str:
        return (await ctx.stub.get_state(key)).decode()

    @transaction
    async def SetKeyPolicy(self, ctx: Context, key: str, mspids: str) -> None:
        policy = KeyEndorsementPolicy()
        policy.add_orgs(Role.PEER, *mspids.split(","))
        await ctx.stub.set_state_validation_parameter(key, policy.get_policy())

    @transaction
    async def SetPrivateKeyPolicy(
        self, ctx: Context, collection: str, key: str, mspids: str
    ) -> None:
        policy = KeyEndorsementPolicy()
        policy.add_orgs(Role.PEER, *mspids.split(","))
        await ctx.stub.set_private_data_validation_parameter(
            collection, key, policy.get_policy()
        )


contracts = [PrivateDataProbe()]
