"""The participation REST API with plain HTTP requests, and reopening channels on restart.

Method: the calls osnadmin makes (list, join with a multipart `config-block`, info,
remove) against an in-process orderer's admin listener; then stop and start an orderer
on the same storage and check the chain continues.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import aiohttp

from common.blockstore import BlockStore
from common.protoutil import verify_block_hash_chain
from network.orderer_material import HOSPITAL, OrdererMaterial, new_envelope
from protos.common import common_pb2
from tests.support.orderer import broadcast, connected_orderer, running_orderer

API = "/participation/v1/channels"


def join_form(block: bytes, *, part: str = "config-block") -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field(part, block, filename="genesis.block")
    return form


async def test_list_join_info_remove(material: OrdererMaterial, tmp_path: Path) -> None:
    name = material.channel
    genesis = material.genesis.SerializeToString()
    async with running_orderer(material, tmp_path, join=False) as (_, addresses):
        base = f"http://{addresses['admin']}"
        async with aiohttp.ClientSession(base) as http:
            async with http.get(API) as response:
                assert response.status == 200
                assert await response.json() == {
                    "systemChannel": None,
                    "channels": None,
                }
            async with http.post(API, data=join_form(genesis)) as response:
                assert response.status == 201
                assert response.headers["Location"] == f"{API}/{name}"
                joined = await response.json()
            async with http.post(API, data=join_form(genesis)) as response:
                assert response.status == 405
                assert response.headers["Allow"] == "GET, DELETE"
            async with http.get(API) as response:
                listed = await response.json()
            async with http.get(f"{API}/{name}") as response:
                assert response.status == 200
                info = await response.json()
            async with http.delete(f"{API}/{name}") as response:
                assert response.status == 204
            async with http.get(f"{API}/{name}") as response:
                assert response.status == 404
                assert "error" in await response.json()
            async with http.delete(f"{API}/{name}") as response:
                assert response.status == 404

    expected_info = {
        "name": name,
        "url": f"{API}/{name}",
        "consensusRelation": "other",
        "status": "active",
        "height": 1,
    }
    assert joined == expected_info
    assert info == expected_info
    assert listed == {
        "systemChannel": None,
        "channels": [{"name": name, "url": f"{API}/{name}"}],
    }
    assert not (tmp_path / "storage" / "channels" / name).exists()


async def test_bad_requests(material: OrdererMaterial, tmp_path: Path) -> None:
    genesis = material.genesis.SerializeToString()
    async with running_orderer(material, tmp_path, join=False) as (_, addresses):
        base = f"http://{addresses['admin']}"
        async with aiohttp.ClientSession(base) as http:
            cases = [
                http.post(API, data=join_form(b"\xff\xff not a block")),
                http.post(API, data=join_form(genesis, part="block")),
                http.post(API, data=genesis),
                http.get(f"{API}/Bad_Name"),
            ]
            codes = []
            for request in cases:
                async with request as response:
                    codes.append(response.status)
                    assert "error" in await response.json()
            async with http.put(API) as response:
                assert (response.status, response.headers["Allow"]) == (
                    405,
                    "GET, POST",
                )
            async with http.get(API, headers={"Accept": "text/html"}) as response:
                assert response.status == 406
            async with http.get(
                "/participation/v1/", allow_redirects=False
            ) as response:
                assert (response.status, response.headers["Location"]) == (302, API)

    assert codes == [400, 400, 400, 400]


async def test_restart_reopens_channels_and_numbering_continues(
    material: OrdererMaterial, tmp_path: Path
) -> None:
    client = material.signing_identity(HOSPITAL, "dr-lee")
    first = [new_envelope(client) for _ in range(3)]
    second = [new_envelope(client) for _ in range(3)]
    async with connected_orderer(material, tmp_path) as (_, channel):
        assert {r.status for r in await broadcast(channel, first)} == {
            common_pb2.SUCCESS
        }
    async with connected_orderer(material, tmp_path, join=False) as (node, channel):
        assert node.registrar.names() == [material.channel]
        assert {r.status for r in await broadcast(channel, second)} == {
            common_pb2.SUCCESS
        }

    with BlockStore.open(tmp_path / "storage" / "channels" / material.channel) as store:
        blocks = list(store.iter_blocks())
    assert [e for block in blocks[1:] for e in block.data.data] == first + second
    for previous, block in itertools.pairwise(blocks):
        verify_block_hash_chain(previous, block)
