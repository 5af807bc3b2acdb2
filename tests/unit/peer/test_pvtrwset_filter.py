"""filter_with_config: only the accepted collections' write sets and configs survive."""

from __future__ import annotations

from peer.ledger.pvtrwset import filter_with_config
from protos.ledger.rwset import rwset_pb2
from protos.peer import collection_pb2
from protos.transientstore import transientstore_pb2


def _message() -> transientstore_pb2.TxPvtReadWriteSetWithConfigInfo:
    message = transientstore_pb2.TxPvtReadWriteSetWithConfigInfo(endorsed_at=7)
    message.pvt_rwset.data_model = rwset_pb2.TxReadWriteSet.KV
    for ns, colls in (("ehr", ("AB", "AC")), ("asset", ("AB",))):
        message.pvt_rwset.ns_pvt_rwset.add(
            namespace=ns,
            collection_pvt_rwset=[
                rwset_pb2.CollectionPvtReadWriteSet(
                    collection_name=coll, rwset=f"{ns}/{coll}".encode()
                )
                for coll in colls
            ],
        )
        message.collection_configs[ns].config.extend(
            collection_pb2.CollectionConfig(
                static_collection_config=collection_pb2.StaticCollectionConfig(
                    name=coll
                )
            )
            for coll in colls
        )
    return message


def test_only_accepted_collections_are_kept() -> None:
    kept = filter_with_config(_message(), lambda ns, coll: (ns, coll) == ("ehr", "AC"))

    assert kept.endorsed_at == 7
    assert kept.pvt_rwset.data_model == rwset_pb2.TxReadWriteSet.KV
    assert [
        (ns.namespace, coll.collection_name, coll.rwset)
        for ns in kept.pvt_rwset.ns_pvt_rwset
        for coll in ns.collection_pvt_rwset
    ] == [("ehr", "AC", b"ehr/AC")]
    assert {
        ns: [c.static_collection_config.name for c in package.config]
        for ns, package in kept.collection_configs.items()
    } == {"ehr": ["AC"]}


def test_nothing_accepted_leaves_no_write_set() -> None:
    kept = filter_with_config(_message(), lambda _ns, _coll: False)

    assert not kept.pvt_rwset.ns_pvt_rwset
    assert not kept.collection_configs
