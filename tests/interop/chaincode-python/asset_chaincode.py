"""An asset chaincode written against the official `fabric-chaincode-python` 2.5.4 shim.

It runs as a chaincode-as-a-service: `python asset_chaincode.py` with
`CHAINCODE_ID` (the package id) and `CHAINCODE_SERVER_ADDRESS` (HOST:PORT) in the
environment; the peer dials it. Transactions (arguments are strings):

- `CreateAsset id color owner`, `UpdateAsset id color owner`, `DeleteAsset id`
- `ReadAsset id` → the asset's JSON
- `Fill prefix count` → `count` assets `<prefix>0000`… in one transaction
- `AssetsInRange start end` → JSON list of the keys in [start, end)
- `WhoAmI` → JSON `{mspid, channel, has_certificate}` of the creator
- `Fail message` → status 500 with `message`

The shim does not catch exceptions from `invoke` (the transaction would never
complete), so every failure here becomes an `error()` response (status 500).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

# The package ships no type information.
from fabric_chaincode_python.fabric_shim import server  # type: ignore[import-untyped]
from fabric_chaincode_python.fabric_shim.interfaces import (  # type: ignore[import-untyped]
    Chaincode,
)
from fabric_chaincode_python.fabric_shim.response import (  # type: ignore[import-untyped]
    error,
    success,
)

Handler = Callable[[Any, list[str]], Awaitable[bytes]]


class AssetError(Exception):
    """A refused transaction; its text becomes the response message."""


def _asset(asset_id: str, color: str, owner: str) -> bytes:
    document = {"id": asset_id, "color": color, "owner": owner}
    return json.dumps(document, sort_keys=True).encode()


def _arity(args: list[str], count: int, usage: str) -> None:
    if len(args) != count:
        raise AssetError(f"expected {count} argument(s): {usage}")


async def _existing(stub: Any, asset_id: str) -> bytes:
    value: bytes = await stub.get_state(asset_id)
    if not value:
        raise AssetError(f"asset {asset_id} does not exist")
    return value


async def create_asset(stub: Any, args: list[str]) -> bytes:
    _arity(args, 3, "id color owner")
    if await stub.get_state(args[0]):
        raise AssetError(f"asset {args[0]} already exists")
    value = _asset(*args)
    await stub.put_state(args[0], value)
    return value


async def read_asset(stub: Any, args: list[str]) -> bytes:
    _arity(args, 1, "id")
    return await _existing(stub, args[0])


async def update_asset(stub: Any, args: list[str]) -> bytes:
    _arity(args, 3, "id color owner")
    await _existing(stub, args[0])
    value = _asset(*args)
    await stub.put_state(args[0], value)
    return value


async def delete_asset(stub: Any, args: list[str]) -> bytes:
    _arity(args, 1, "id")
    await _existing(stub, args[0])
    await stub.delete_state(args[0])
    return b""


async def fill(stub: Any, args: list[str]) -> bytes:
    _arity(args, 2, "prefix count")
    prefix, count = args[0], int(args[1])
    for number in range(count):
        key = f"{prefix}{number:04d}"
        await stub.put_state(key, _asset(key, "grey", "bulk"))
    return str(count).encode()


async def assets_in_range(stub: Any, args: list[str]) -> bytes:
    _arity(args, 2, "start end")
    results = await stub.get_state_by_range(args[0], args[1])
    keys = [record.key async for record in results]
    return json.dumps(keys).encode()


async def who_am_i(stub: Any, args: list[str]) -> bytes:
    _arity(args, 0, "")
    creator = stub.get_creator()
    document = {
        "mspid": creator.get("mspid", ""),
        "channel": stub.get_channel_id(),
        "has_certificate": b"BEGIN CERTIFICATE" in creator.get("idBytes", b""),
    }
    return json.dumps(document, sort_keys=True).encode()


async def fail(stub: Any, args: list[str]) -> bytes:
    _arity(args, 1, "message")
    raise AssetError(args[0])


TRANSACTIONS: dict[str, Handler] = {
    "CreateAsset": create_asset,
    "ReadAsset": read_asset,
    "UpdateAsset": update_asset,
    "DeleteAsset": delete_asset,
    "Fill": fill,
    "AssetsInRange": assets_in_range,
    "WhoAmI": who_am_i,
    "Fail": fail,
}


class AssetChaincode(Chaincode):  # type: ignore[misc]
    """Dispatches on the first argument; every outcome is a Response."""

    @staticmethod
    async def init(stub: Any) -> Any:
        return success(b"")

    @staticmethod
    async def invoke(stub: Any) -> Any:
        try:
            function, args = stub.get_function_and_parameters()
            handler = TRANSACTIONS.get(function)
            if handler is None:
                raise AssetError(f"unknown transaction {function!r}")
            return success(await handler(stub, args))
        except (AssetError, ValueError) as refused:
            return error(str(refused))
        except Exception as unexpected:  # the shim would leave the peer waiting
            return error(f"{type(unexpected).__name__}: {unexpected}")


def main() -> None:
    # The shim logs every message (proposals included) at DEBUG through "asyncio".
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    server.start(AssetChaincode)


if __name__ == "__main__":
    main()
