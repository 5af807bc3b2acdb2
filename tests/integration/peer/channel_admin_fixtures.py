"""Shared pieces of the channel administration tests: a TLS orderer and A's peer.

`tls_channel` starts, for one test, an in-process solo orderer over TLS for the
medical-records channel of `material` and peer0 of Hospital A (TLS) joined to it by
A's admin. `order` broadcasts one envelope to that orderer; `filter_of` reads a
block's transaction filter from a peer's ledger.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from common.tls import TlsFiles
from peer.admin import AdminTarget, join_channel
from peer.node import PeerNode
from protos.common import common_pb2
from tests.support.orderer import broadcast, running_orderer
from tests.support.orderer import open_channel as open_orderer_channel
from tests.support.peer import (
    CHANNEL,
    HOSPITAL_A,
    PeerMaterial,
    running_peer,
    write_peer_yaml,
)


@dataclass(frozen=True)
class TlsChannel:
    """The running orderer's gRPC address, A's peer node and its gRPC address."""

    orderer: str
    peer_a: PeerNode
    peer_a_address: str


@contextlib.asynccontextmanager
async def tls_channel(
    material: PeerMaterial, folder: Path
) -> AsyncIterator[TlsChannel]:
    """Solo orderer over TLS + peer0 of Hospital A (TLS), joined, until the block ends."""
    async with running_orderer(material.orderer, folder / "orderer", tls=True) as (
        _,
        addresses,
    ):
        orderer = addresses["grpc"]
        config = write_peer_yaml(
            folder / "a" / "peer.yaml",
            material,
            HOSPITAL_A,
            storage=folder / "a" / "data",
            orderer_address=orderer,
            tls=True,
        )
        async with running_peer(config) as (peer_a, a_addresses):
            await join_channel(
                AdminTarget(
                    address=a_addresses["grpc"],
                    tls=TlsFiles(root_cas=(material.tls_ca(HOSPITAL_A),)),
                ),
                signer=material.user(HOSPITAL_A, "Admin"),
                genesis_block=material.genesis.SerializeToString(),
            )
            yield TlsChannel(orderer, peer_a, a_addresses["grpc"])


async def order(orderer: str, material: PeerMaterial, envelope: bytes) -> int:
    """Broadcast one envelope over TLS; the status the orderer answers."""
    async with open_orderer_channel(orderer, material.orderer) as link:
        [answer] = await broadcast(link, [envelope])
    return int(answer.status)


def filter_of(node: PeerNode, number: int) -> bytes:
    """The transactions filter of block `number` in `node`'s medical-records ledger."""
    store = node.channels.require(CHANNEL).ledger.block_store
    block = store.block_by_number(number)
    return bytes(block.metadata.metadata[common_pb2.TRANSACTIONS_FILTER])
