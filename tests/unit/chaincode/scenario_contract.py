"""The contract the SDK scenarios run: one small transaction per stub feature.

Served under two names ("scenario" and "partner") so that invoke_chaincode has another
chaincode to call within the same transaction.
"""

from __future__ import annotations

import json

from chaincode import (
    ChaincodeError,
    Context,
    Contract,
    KeyEndorsementPolicy,
    query,
    transaction,
)

SECRETS = "secrets"
"""The private data collection the scenarios write to."""


class ScenarioContract(Contract):
    """Transactions that each exercise one part of the stub."""

    @transaction
    async def Put(self, ctx: Context, key: str, value: str) -> None:
        await ctx.stub.put_state(key, value)

    @transaction
    async def PutMany(self, ctx: Context, values: dict[str, str]) -> int:
        for key, value in values.items():
            await ctx.stub.put_state(key, value)
        return len(values)

    @query
    async def Get(self, ctx: Context, key: str) -> bytes:
        return await ctx.stub.get_state(key)

    @transaction
    async def Delete(self, ctx: Context, key: str) -> None:
        await ctx.stub.del_state(key)

    @query
    async def Range(self, ctx: Context, start: str, end: str) -> list[str]:
        async with await ctx.stub.get_state_by_range(start, end) as results:
            return [kv.key async for kv in results]

    @query
    async def RangePage(
        self, ctx: Context, start: str, end: str, page_size: int, bookmark: str
    ) -> dict[str, object]:
        results, metadata = await ctx.stub.get_state_by_range_with_pagination(
            start, end, page_size, bookmark
        )
        async with results:
            keys = [kv.key async for kv in results]
        return {
            "keys": keys,
            "count": metadata.fetched_records_count,
            "next": metadata.bookmark,
        }

    @query
    async def FirstInRange(self, ctx: Context) -> str:
        """Stop after one result; leaving the block closes the peer's iterator."""
        async with await ctx.stub.get_state_by_range("", "") as results:
            async for kv in results:
                return kv.key
        return ""

    @transaction
    async def PutComposite(
        self, ctx: Context, object_type: str, attributes: list[str]
    ) -> str:
        key = ctx.stub.create_composite_key(object_type, attributes)
        await ctx.stub.put_state(key, json.dumps(attributes))
        return key

    @query
    async def ByPartialKey(
        self, ctx: Context, object_type: str, attributes: list[str]
    ) -> list[list[str]]:
        found = []
        async with await ctx.stub.get_state_by_partial_composite_key(
            object_type, attributes
        ) as results:
            async for kv in results:
                found.append(ctx.stub.split_composite_key(kv.key)[1])
        return found

    @query
    async def ByPartialKeyPage(
        self, ctx: Context, object_type: str, page_size: int, bookmark: str
    ) -> dict[str, object]:
        (
            results,
            metadata,
        ) = await ctx.stub.get_state_by_partial_composite_key_with_pagination(
            object_type, [], page_size, bookmark
        )
        async with results:
            found = [ctx.stub.split_composite_key(kv.key)[1] async for kv in results]
        return {"found": found, "next": metadata.bookmark}

    @query
    async def Query(self, ctx: Context, selector: str) -> list[str]:
        async with await ctx.stub.get_query_result(selector) as results:
            return [kv.key async for kv in results]

    @query
    async def QueryPage(
        self, ctx: Context, selector: str, page_size: int, bookmark: str
    ) -> dict[str, object]:
        results, metadata = await ctx.stub.get_query_result_with_pagination(
            selector, page_size, bookmark
        )
        async with results:
            keys = [kv.key async for kv in results]
        return {"keys": keys, "next": metadata.bookmark}

    @query
    async def History(self, ctx: Context, key: str) -> list[dict[str, object]]:
        async with await ctx.stub.get_history_for_key(key) as changes:
            return [
                {
                    "tx_id": change.tx_id,
                    "value": change.value.decode(),
                    "is_delete": change.is_delete,
                    "has_timestamp": change.timestamp is not None,
                }
                async for change in changes
            ]

    @transaction
    async def Emit(self, ctx: Context, name: str, payload: str) -> str:
        ctx.stub.set_event("ignored", b"replaced by the next call")
        ctx.stub.set_event(name, payload.encode())
        return ctx.stub.get_tx_id()

    @query
    async def WhoAmI(self, ctx: Context) -> dict[str, object]:
        identity = ctx.client_identity
        return {
            "id": identity.get_id(),
            "mspid": identity.get_mspid(),
            "role": identity.get_attribute_value("role"),
            "missing": identity.get_attribute_value("missing"),
            "cn": identity.get_x509_certificate().subject_cn,
        }

    @query
    async def RequireRole(self, ctx: Context, role: str) -> str:
        ctx.client_identity.assert_attribute_value("role", role)
        return "allowed"

    @query
    async def TxFacts(self, ctx: Context) -> dict[str, object]:
        stub = ctx.stub
        proposal = stub.get_signed_proposal()
        return {
            "tx_id": stub.get_tx_id(),
            "channel": stub.get_channel_id(),
            "creator_msp": stub.get_creator().mspid,
            "timestamp": stub.get_tx_timestamp().seconds,
            "binding": stub.get_binding(),
            "has_proposal": proposal is not None and bool(proposal.proposal_bytes),
            "function": stub.get_function_and_parameters()[0],
        }

    @transaction
    async def FailAfterWrite(self, ctx: Context, key: str) -> None:
        await ctx.stub.put_state(key, "must not be committed")
        raise RuntimeError(f"boom on {key}")

    @transaction
    async def Refuse(self, ctx: Context, status: int) -> None:
        raise ChaincodeError("refused on purpose", status=status)

    @query
    async def Transient(self, ctx: Context, name: str) -> bytes:
        return ctx.stub.get_transient().get(name, b"")

    @transaction
    async def PutPrivate(self, ctx: Context, key: str) -> None:
        value = ctx.stub.get_transient().get("value")
        if value is None:
            raise ChaincodeError("transient 'value' is required", status=400)
        await ctx.stub.put_private_data(SECRETS, key, value)

    @query
    async def GetPrivate(self, ctx: Context, key: str) -> dict[str, str]:
        value = await ctx.stub.get_private_data(SECRETS, key)
        digest = await ctx.stub.get_private_data_hash(SECRETS, key)
        return {"value": value.decode(), "hash": digest.hex()}

    @transaction
    async def DeletePrivate(self, ctx: Context, key: str, purge: bool) -> None:
        if purge:
            await ctx.stub.purge_private_data(SECRETS, key)
        else:
            await ctx.stub.del_private_data(SECRETS, key)

    @query
    async def PrivateRange(self, ctx: Context) -> list[str]:
        async with await ctx.stub.get_private_data_by_range(SECRETS, "", "") as results:
            return [kv.key async for kv in results]

    @transaction
    async def SetKeyPolicy(self, ctx: Context, key: str, orgs: list[str]) -> None:
        policy = KeyEndorsementPolicy()
        policy.add_orgs("MEMBER", *orgs)
        await ctx.stub.set_state_validation_parameter(key, policy.get_policy())

    @query
    async def GetKeyPolicy(self, ctx: Context, key: str) -> list[str]:
        policy = await ctx.stub.get_state_validation_parameter(key)
        return KeyEndorsementPolicy(policy).list_orgs()

    @transaction
    async def CallPartner(
        self, ctx: Context, function: str, args: list[str]
    ) -> dict[str, object]:
        response = await ctx.stub.invoke_chaincode("partner", [function, *args])
        return {
            "status": response.status,
            "message": response.message,
            "payload": response.payload.decode(),
        }

    @query
    async def PeerError(self, ctx: Context) -> str:
        """A request the peer answers with ERROR surfaces as an exception in chaincode."""
        try:
            await ctx.stub.get_query_result("not json")
        except Exception as error:
            return f"{type(error).__name__}: {error}"
        return "no error"
