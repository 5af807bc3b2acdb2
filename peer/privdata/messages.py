"""Building and reading the signed messages of `medledger.peer.v1.PrivateDataService`.

Pure helpers shared by both ends: signed Push, ack and Pull messages (payload bytes +
signature). Trimming a write set to the accepted collections is
`peer.ledger.pvtrwset.filter_with_config`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from common.msp import SigningIdentity
from peer.ledger.pvtrwset import decode
from protos.medledger.peer import privdata_pb2
from protos.transientstore import transientstore_pb2

__all__ = [
    "WithConfig",
    "collections_in",
    "decode_with_config",
    "sign_ack",
    "sign_pull",
    "sign_push",
]

WithConfig = transientstore_pb2.TxPvtReadWriteSetWithConfigInfo


def decode_with_config(data: bytes) -> WithConfig:
    """Raises WireError when `data` is not a TxPvtReadWriteSetWithConfigInfo."""
    return decode(WithConfig, data, what="private data")


def collections_in(message: WithConfig) -> list[tuple[str, str]]:
    """The (namespace, collection) pairs of the write sets, in order."""
    return [
        (ns.namespace, coll.collection_name)
        for ns in message.pvt_rwset.ns_pvt_rwset
        for coll in ns.collection_pvt_rwset
    ]


def sign_push(
    signer: SigningIdentity,
    *,
    channel_id: str,
    tx_id: str,
    endorsed_at: int,
    private_data: bytes,
) -> privdata_pb2.PushRequest:
    payload = privdata_pb2.PushPayload(
        channel_id=channel_id,
        tx_id=tx_id,
        endorsed_at=endorsed_at,
        private_data=private_data,
        sender=signer.serialized,
    )
    payload.timestamp.GetCurrentTime()
    data = payload.SerializeToString()
    return privdata_pb2.PushRequest(payload=data, signature=signer.sign(data))


def sign_ack(
    signer: SigningIdentity,
    *,
    payload: privdata_pb2.PushPayload,
    payload_bytes: bytes,
    stored: Iterable[tuple[str, str]],
) -> privdata_pb2.PushResponse:
    ack = privdata_pb2.PushAck(
        channel_id=payload.channel_id,
        tx_id=payload.tx_id,
        payload_hash=hashlib.sha256(payload_bytes).digest(),
        stored=[
            privdata_pb2.CollectionName(namespace=ns, collection=coll)
            for ns, coll in stored
        ],
        receiver=signer.serialized,
    )
    data = ack.SerializeToString()
    return privdata_pb2.PushResponse(payload=data, signature=signer.sign(data))


def sign_pull(
    signer: SigningIdentity,
    *,
    channel_id: str,
    digests: Iterable[privdata_pb2.PrivateDataDigest],
) -> privdata_pb2.PullRequest:
    payload = privdata_pb2.PullPayload(
        channel_id=channel_id, digests=list(digests), requester=signer.serialized
    )
    payload.timestamp.GetCurrentTime()
    data = payload.SerializeToString()
    return privdata_pb2.PullRequest(payload=data, signature=signer.sign(data))
