"""A tiny contract for the private data tests: puts a transient value into a collection.

`PutPrivate(collection, key)` writes the transient entry "value" as the key's private
value; `GetPrivate(collection, key)` reads it back (empty when absent);
`QueryPrivate(collection, query)` returns the keys a rich query matches, space-separated.
"""

from __future__ import annotations

from chaincode.contract import Context, Contract, query, transaction


class PrivateRecords(Contract):
    def __init__(self) -> None:
        super().__init__("PrivateRecords")

    @transaction
    async def PutPrivate(self, ctx: Context, collection: str, key: str) -> None:
        value = ctx.stub.get_transient()["value"]
        await ctx.stub.put_private_data(collection, key, value)

    @query
    async def GetPrivate(self, ctx: Context, collection: str, key: str) -> str:
        return (await ctx.stub.get_private_data(collection, key)).decode()

    @query
    async def QueryPrivate(self, ctx: Context, collection: str, selector: str) -> str:
        found = await ctx.stub.get_private_data_query_result(collection, selector)
        async with found as results:
            return " ".join([kv.key async for kv in results])


contracts = [PrivateRecords()]
