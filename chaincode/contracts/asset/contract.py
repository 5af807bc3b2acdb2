"""The sample asset-transfer contract: assets with an owner, an owner index, history.

Assets are stored as sorted-key JSON under their id, so every endorser writes the same
bytes. A composite-key index `owner~id` answers "assets of an owner" without a rich
query; `QueryAssets` shows the rich-query form. Transfers emit a `TransferAsset` event.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from chaincode.contract import Context, Contract, query, transaction
from chaincode.errors import ChaincodeError

OWNER_INDEX = "owner~id"
"""Composite-key object type of the owner index: (owner, asset id) → b"\\x00"."""
_INDEX_VALUE = b"\x00"
_NOT_FOUND = 404
_CONFLICT = 409


@dataclass(frozen=True, slots=True)
class Asset:
    """One asset, with the field names of Fabric's asset-transfer samples."""

    ID: str
    Color: str
    Size: int
    Owner: str
    AppraisedValue: int

    def to_bytes(self) -> bytes:
        """Deterministic JSON (sorted keys, no spaces)."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Asset:
        return cls(**json.loads(data))


class AssetTransfer(Contract):
    """Create, read, update, delete and transfer assets."""

    def __init__(self) -> None:
        super().__init__("AssetTransfer", title="Asset transfer", version="1.0.0")

    @transaction
    async def InitLedger(self, ctx: Context) -> None:
        """Create a handful of assets (for demos and benchmarks)."""
        for number, (color, owner) in enumerate(
            [
                ("blue", "Tomoko"),
                ("red", "Brad"),
                ("green", "Jin Soo"),
                ("yellow", "Max"),
            ],
            start=1,
        ):
            await _store(
                ctx, Asset(f"asset{number}", color, 5 * number, owner, 100 * number)
            )

    @transaction
    async def CreateAsset(
        self,
        ctx: Context,
        asset_id: str,
        color: str,
        size: int,
        owner: str,
        appraised_value: int,
    ) -> Asset:
        """Create a new asset; fails with 409 when the id exists."""
        if await ctx.stub.get_state(asset_id):
            raise ChaincodeError(
                f"the asset {asset_id} already exists", status=_CONFLICT
            )
        asset = Asset(asset_id, color, size, owner, appraised_value)
        await _store(ctx, asset)
        return asset

    @query
    async def ReadAsset(self, ctx: Context, asset_id: str) -> Asset:
        """The asset with this id; fails with 404 when there is none."""
        return await _load(ctx, asset_id)

    @transaction
    async def UpdateAsset(
        self,
        ctx: Context,
        asset_id: str,
        color: str,
        size: int,
        owner: str,
        appraised_value: int,
    ) -> Asset:
        """Replace every field of an existing asset."""
        previous = await _load(ctx, asset_id)
        asset = Asset(asset_id, color, size, owner, appraised_value)
        await _store(ctx, asset, previous_owner=previous.Owner)
        return asset

    @transaction
    async def DeleteAsset(self, ctx: Context, asset_id: str) -> None:
        """Delete an asset and its index entry."""
        asset = await _load(ctx, asset_id)
        await ctx.stub.del_state(asset_id)
        await ctx.stub.del_state(_index_key(ctx, asset.Owner, asset_id))

    @query
    async def AssetExists(self, ctx: Context, asset_id: str) -> bool:
        """Whether an asset with this id exists."""
        return bool(await ctx.stub.get_state(asset_id))

    @transaction
    async def TransferAsset(self, ctx: Context, asset_id: str, new_owner: str) -> str:
        """Give the asset to `new_owner`; returns the previous owner and emits an event."""
        asset = await _load(ctx, asset_id)
        moved = Asset(
            asset.ID, asset.Color, asset.Size, new_owner, asset.AppraisedValue
        )
        await _store(ctx, moved, previous_owner=asset.Owner)
        event = {"ID": asset_id, "OldOwner": asset.Owner, "NewOwner": new_owner}
        ctx.stub.set_event("TransferAsset", json.dumps(event, sort_keys=True).encode())
        return asset.Owner

    @query
    async def GetAllAssets(self, ctx: Context) -> list[Asset]:
        """Every asset, in id order."""
        async with await ctx.stub.get_state_by_range("", "") as results:
            return [Asset.from_bytes(kv.value) async for kv in results]

    @query
    async def GetAssetsByOwner(self, ctx: Context, owner: str) -> list[Asset]:
        """The assets of one owner, through the owner index."""
        assets = []
        async with await ctx.stub.get_state_by_partial_composite_key(
            OWNER_INDEX, [owner]
        ) as entries:
            async for entry in entries:
                _, (_, asset_id) = ctx.stub.split_composite_key(entry.key)
                assets.append(await _load(ctx, asset_id))
        return assets

    @query
    async def QueryAssets(self, ctx: Context, query_string: str) -> list[Asset]:
        """Assets matching a rich (Mango) query, e.g. {"selector": {"Color": "blue"}}."""
        async with await ctx.stub.get_query_result(query_string) as results:
            return [Asset.from_bytes(kv.value) async for kv in results]

    @query
    async def GetAssetsWithPagination(
        self, ctx: Context, page_size: int, bookmark: str
    ) -> dict[str, object]:
        """One page of assets in id order, and the bookmark of the next page."""
        results, metadata = await ctx.stub.get_state_by_range_with_pagination(
            "", "", page_size, bookmark
        )
        async with results:
            records = [Asset.from_bytes(kv.value) async for kv in results]
        return {
            "records": records,
            "fetchedRecordsCount": metadata.fetched_records_count,
            "bookmark": metadata.bookmark,
        }

    @query
    async def GetAssetHistory(
        self, ctx: Context, asset_id: str
    ) -> list[dict[str, object]]:
        """Every committed change of an asset, newest first."""
        history: list[dict[str, object]] = []
        async with await ctx.stub.get_history_for_key(asset_id) as changes:
            async for change in changes:
                history.append(
                    {
                        "TxId": change.tx_id,
                        "Timestamp": change.timestamp.seconds
                        if change.timestamp
                        else None,
                        "IsDelete": change.is_delete,
                        "Value": None if change.is_delete else json.loads(change.value),
                    }
                )
        return history


async def _load(ctx: Context, asset_id: str) -> Asset:
    data = await ctx.stub.get_state(asset_id)
    if not data:
        raise ChaincodeError(f"the asset {asset_id} does not exist", status=_NOT_FOUND)
    return Asset.from_bytes(data)


async def _store(
    ctx: Context, asset: Asset, *, previous_owner: str | None = None
) -> None:
    await ctx.stub.put_state(asset.ID, asset.to_bytes())
    if previous_owner == asset.Owner:
        return
    if previous_owner is not None:
        await ctx.stub.del_state(_index_key(ctx, previous_owner, asset.ID))
    await ctx.stub.put_state(_index_key(ctx, asset.Owner, asset.ID), _INDEX_VALUE)


def _index_key(ctx: Context, owner: str, asset_id: str) -> str:
    return ctx.stub.create_composite_key(OWNER_INDEX, [owner, asset_id])
