"""Dissemination at endorsement: push private write sets to the collections' member peers.

The endorser's private data hook (`Disseminator.hook`, called in a worker thread)
keeps the write sets in this peer's transient store, then pushes them from the event
loop. Per collection with a config in the write sets: the known peers of its member
organisations are candidates; up to `maximum_peer_count` of them, in random order,
are chosen, and each chosen peer receives only the collections its organisation is a
member of. A peer acknowledges with a signed ack naming what it stored; a collection
counts the acks of peers of its member organisations that name it. Fewer than
`required_peer_count` acknowledgements (or fewer candidates) fail the endorsement with
a `ChaincodeError` naming the collection. Collections without a config (the
`_lifecycle` approvals in implicit collections) stay on this peer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import grpc

from common.errors import MedledgerError
from common.msp import SigningIdentity
from peer.channels import PeerChannel
from peer.config import KnownPeer
from peer.errors import ChaincodeError
from peer.ledger.pvtrwset import filter_with_config
from peer.privdata.directory import PeerDirectory
from peer.privdata.members import configs_of, member_mspids, verify_peer
from peer.privdata.messages import (
    WithConfig,
    collections_in,
    decode_with_config,
    sign_push,
)
from protos.medledger.peer import privdata_pb2, privdata_pb2_grpc

__all__ = ["Disseminator", "plan_dissemination"]

_LOG = logging.getLogger(__name__)

Collection = tuple[str, str]


@dataclass(frozen=True, slots=True)
class _Plan:
    targets: Mapping[str, tuple[KnownPeer, frozenset[Collection]]]
    required: Mapping[Collection, int]
    members: Mapping[Collection, frozenset[str]]


def plan_dissemination(message: WithConfig, candidates: Sequence[KnownPeer]) -> _Plan:
    """Which peers get which collections, and the acks each collection needs.

    Raises:
        ChaincodeError: a collection has fewer candidate peers than it requires.
    """
    targets: dict[str, tuple[KnownPeer, set[Collection]]] = {}
    required: dict[Collection, int] = {}
    members: dict[Collection, frozenset[str]] = {}
    for ns, coll in collections_in(message):
        config = configs_of(message.collection_configs[ns]).get(coll)
        if config is None:
            continue
        mspids = member_mspids(config)
        chosen = [peer for peer in candidates if peer.mspid in mspids]
        need = max(0, config.required_peer_count)
        if len(chosen) < need:
            raise ChaincodeError(
                f"failed to distribute private data of collection {coll} of "
                f"chaincode {ns}: it requires {need} peers but only {len(chosen)} "
                "eligible peers are known"
            )
        required[(ns, coll)] = need
        members[(ns, coll)] = mspids
        for peer in chosen[: max(need, config.maximum_peer_count)]:
            targets.setdefault(peer.address, (peer, set()))[1].add((ns, coll))
    return _Plan(
        targets={a: (p, frozenset(c)) for a, (p, c) in targets.items()},
        required=required,
        members=members,
    )


class Disseminator:
    """The endorser's private data hook (see the module docstring)."""

    def __init__(
        self,
        *,
        signer: SigningIdentity,
        directory: PeerDirectory,
        push_timeout_s: float,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._signer = signer
        self._directory = directory
        self._timeout_s = push_timeout_s
        self._loop = loop

    def hook(self, channel: PeerChannel, tx_id: str, data: bytes) -> None:
        """Store locally, then disseminate (worker thread; blocks until done).

        Raises:
            ChaincodeError: a collection got fewer acknowledgements than it requires.
        """
        height = channel.height()
        channel.store_private_data(tx_id, height, data)
        future = asyncio.run_coroutine_threadsafe(
            self.disseminate(channel, tx_id, height, data), self._loop
        )
        future.result()

    async def disseminate(
        self, channel: PeerChannel, tx_id: str, height: int, data: bytes
    ) -> None:
        """Push to member peers; raises ChaincodeError when too few acknowledge."""
        message = decode_with_config(data)
        config = channel.config
        plan = plan_dissemination(message, self._directory.peers(config))
        if not plan.targets:
            return
        results = await asyncio.gather(
            *(
                self._push(channel, tx_id, height, message, peer, collections)
                for peer, collections in plan.targets.values()
            )
        )
        acks: dict[Collection, int] = dict.fromkeys(plan.required, 0)
        for mspid, stored in results:
            for collection in stored:
                if collection in acks and mspid in plan.members[collection]:
                    acks[collection] += 1
        for (ns, coll), need in plan.required.items():
            if acks[(ns, coll)] < need:
                raise ChaincodeError(
                    f"failed to distribute private data of collection {coll} of "
                    f"chaincode {ns}: {acks[(ns, coll)]} of the {need} required "
                    "peers acknowledged"
                )

    async def _push(
        self,
        channel: PeerChannel,
        tx_id: str,
        height: int,
        message: WithConfig,
        peer: KnownPeer,
        collections: frozenset[Collection],
    ) -> tuple[str, frozenset[Collection]]:
        """One push; (the acknowledging peer's MSP id, what it stored), or nothing."""
        private_data = filter_with_config(
            message, lambda ns, coll: (ns, coll) in collections
        )
        request = sign_push(
            self._signer,
            channel_id=channel.channel_id,
            tx_id=tx_id,
            endorsed_at=height,
            private_data=private_data.SerializeToString(deterministic=True),
        )
        stub = privdata_pb2_grpc.PrivateDataServiceStub(
            self._directory.channel(channel.config, peer)
        )
        try:
            response = await stub.Push(request, timeout=self._timeout_s)
            ack = privdata_pb2.PushAck.FromString(response.payload)
            receiver = verify_peer(
                channel.config, ack.receiver, response.payload, response.signature
            )
        except (grpc.RpcError, MedledgerError, ValueError) as error:
            _LOG.warning(
                "private data push failed channel=%s tx_id=%s peer=%s: %s",
                channel.channel_id,
                tx_id,
                peer.address,
                _describe(error),
            )
            return "", frozenset()
        if receiver.mspid != peer.mspid or ack.tx_id != tx_id:
            _LOG.warning(
                "private data ack rejected peer=%s mspid=%s",
                peer.address,
                receiver.mspid,
            )
            return "", frozenset()
        stored = frozenset((c.namespace, c.collection) for c in ack.stored)
        return receiver.mspid, stored & collections


def _describe(error: BaseException) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        return f"{error.code().name}: {error.details()}"
    return str(error)
