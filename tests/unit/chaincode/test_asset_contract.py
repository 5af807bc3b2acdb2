"""The sample asset-transfer contract, on the mock peer."""

from __future__ import annotations

import json

import pytest

from chaincode.contracts.asset import OWNER_INDEX, AssetTransfer, contracts
from chaincode.testing import MockPeer


@pytest.fixture
async def peer() -> MockPeer:
    peer = MockPeer(AssetTransfer())
    assert (await peer.submit("InitLedger")).status == 200
    return peer


def asset(
    asset_id: str, color: str, size: int, owner: str, value: int
) -> dict[str, object]:
    return {
        "ID": asset_id,
        "Color": color,
        "Size": size,
        "Owner": owner,
        "AppraisedValue": value,
    }


async def test_create_read_update_delete(peer: MockPeer) -> None:
    created = await peer.submit("CreateAsset", "a9", "black", "3", "Ana", "300")
    assert created.json() == asset("a9", "black", 3, "Ana", 300)
    assert (await peer.evaluate("ReadAsset", "a9")).json() == asset(
        "a9", "black", 3, "Ana", 300
    )
    stored = peer.ledger.get("mockcc", "a9")
    assert (
        stored
        == b'{"AppraisedValue":300,"Color":"black","ID":"a9","Owner":"Ana","Size":3}'
    )
    duplicate = await peer.submit("CreateAsset", "a9", "black", "3", "Ana", "300")
    assert (duplicate.status, duplicate.message) == (409, "the asset a9 already exists")
    await peer.submit("UpdateAsset", "a9", "white", "4", "Ana", "350")
    assert (await peer.evaluate("ReadAsset", "a9")).json() == asset(
        "a9", "white", 4, "Ana", 350
    )
    assert (await peer.submit("DeleteAsset", "a9")).status == 200
    assert (await peer.evaluate("AssetExists", "a9")).json() is False
    missing = await peer.evaluate("ReadAsset", "a9")
    assert (missing.status, missing.message) == (404, "the asset a9 does not exist")


async def test_transfer_moves_the_index_and_emits_an_event(peer: MockPeer) -> None:
    result = await peer.submit("TransferAsset", "asset1", "Brad")
    assert result.payload == b"Tomoko"
    assert result.event is not None
    assert result.event.name == "TransferAsset"
    assert json.loads(result.event.payload) == {
        "ID": "asset1",
        "NewOwner": "Brad",
        "OldOwner": "Tomoko",
    }
    owned = (await peer.evaluate("GetAssetsByOwner", "Brad")).json()
    assert isinstance(owned, list)
    assert [item["ID"] for item in owned] == ["asset1", "asset2"]
    assert (await peer.evaluate("GetAssetsByOwner", "Tomoko")).json() == []
    index_keys = [key for key in peer.ledger.keys("mockcc") if key.startswith("\x00")]
    assert all(OWNER_INDEX in key for key in index_keys)
    assert len(index_keys) == 4


async def test_queries(peer: MockPeer) -> None:
    everything = (await peer.evaluate("GetAllAssets")).json()
    assert isinstance(everything, list)
    assert [item["ID"] for item in everything] == [
        "asset1",
        "asset2",
        "asset3",
        "asset4",
    ]
    blue = (
        await peer.evaluate("QueryAssets", '{"selector": {"Color": "blue"}}')
    ).json()
    assert blue == [asset("asset1", "blue", 5, "Tomoko", 100)]
    page = (await peer.evaluate("GetAssetsWithPagination", "3", "")).json()
    assert isinstance(page, dict)
    assert (page["fetchedRecordsCount"], page["bookmark"]) == (3, "asset4")
    rest = (await peer.evaluate("GetAssetsWithPagination", "3", "asset4")).json()
    assert isinstance(rest, dict)
    assert ([item["ID"] for item in rest["records"]], rest["bookmark"]) == (
        ["asset4"],
        "",
    )


async def test_history_is_newest_first(peer: MockPeer) -> None:
    moved = await peer.submit("TransferAsset", "asset2", "Max")
    deleted = await peer.submit("DeleteAsset", "asset2")
    history = (await peer.evaluate("GetAssetHistory", "asset2")).json()
    assert isinstance(history, list)
    assert [entry["TxId"] for entry in history[:2]] == [deleted.tx_id, moved.tx_id]
    assert [entry["IsDelete"] for entry in history] == [True, False, False]
    assert history[1]["Value"]["Owner"] == "Max"
    assert all(isinstance(entry["Timestamp"], int) for entry in history)


def test_module_exports_its_contracts() -> None:
    assert [type(contract) for contract in contracts] == [AssetTransfer]
