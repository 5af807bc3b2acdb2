"""Why two endorsers' ProposalResponsePayloads differ, in words.

All endorsements of a transaction must sign byte-identical payloads. When a peer's
payload differs from the first one collected, the gateway names the first few
differences — a read at another version, a different write, another private-data
hash, response or event — so that a non-deterministic chaincode or a lagging peer is
easy to spot.
"""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf.message import DecodeError

from protos.ledger.rwset import rwset_pb2
from protos.ledger.rwset.kvrwset import kv_rwset_pb2
from protos.peer import proposal_pb2, proposal_response_pb2

__all__ = ["describe_payload_difference"]

_MAX_ITEMS = 3


def describe_payload_difference(expected: bytes, actual: bytes) -> str:
    """A short description of how `actual` differs from `expected` (both payload bytes)."""
    try:
        first = _action(expected)
        second = _action(actual)
    except DecodeError:
        return "a proposal response payload does not decode"
    items = list(_differences(first, second))
    if not items:
        return "the payloads differ in encoding only"
    shown = "; ".join(items[:_MAX_ITEMS])
    more = f" (and {len(items) - _MAX_ITEMS} more)" if len(items) > _MAX_ITEMS else ""
    return shown + more


def _action(data: bytes) -> proposal_pb2.ChaincodeAction:
    payload = proposal_response_pb2.ProposalResponsePayload.FromString(data)
    return proposal_pb2.ChaincodeAction.FromString(payload.extension)


def _differences(
    first: proposal_pb2.ChaincodeAction, second: proposal_pb2.ChaincodeAction
) -> Iterator[str]:
    if first.response.status != second.response.status:
        yield (
            f"chaincode response status differs ({first.response.status} vs "
            f"{second.response.status})"
        )
    elif first.response != second.response:
        yield "chaincode response differs"
    if first.events != second.events:
        yield "chaincode event differs"
    if first.results != second.results:
        yield from _rwset_differences(first.results, second.results)


def _rwset_differences(first: bytes, second: bytes) -> Iterator[str]:
    try:
        a = _summary(first)
        b = _summary(second)
    except DecodeError:
        yield "read-write set does not decode"
        return
    for key in sorted(a.keys() | b.keys()):
        if a.get(key) != b.get(key):
            yield f"{key[0]} of {key[1]!r} in {key[2]} differs"


def _summary(data: bytes) -> dict[tuple[str, str, str], bytes]:
    """(kind, key, namespace) → what was read or written, for comparison."""
    summary: dict[tuple[str, str, str], bytes] = {}
    for ns in rwset_pb2.TxReadWriteSet.FromString(data).ns_rwset:
        kv = kv_rwset_pb2.KVRWSet.FromString(ns.rwset)
        for read in kv.reads:
            summary[("read", read.key, ns.namespace)] = read.version.SerializeToString()
        for write in kv.writes:
            summary[("write", write.key, ns.namespace)] = (
                b"\x00" if write.is_delete else b"\x01" + write.value
            )
        for metadata in kv.metadata_writes:
            summary[("metadata write", metadata.key, ns.namespace)] = (
                metadata.SerializeToString(deterministic=True)
            )
        for collection in ns.collection_hashed_rwset:
            summary[("private data", collection.collection_name, ns.namespace)] = (
                collection.pvt_rwset_hash
            )
        if kv.range_queries_info:
            summary[("range query", "", ns.namespace)] = b"".join(
                info.SerializeToString(deterministic=True)
                for info in kv.range_queries_info
            )
    return summary
