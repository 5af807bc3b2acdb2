from protos.ledger.rwset import rwset_pb2 as _rwset_pb2
from protos.peer import collection_pb2 as _collection_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TxPvtReadWriteSetWithConfigInfo(_message.Message):
    __slots__ = ("endorsed_at", "pvt_rwset", "collection_configs")
    class CollectionConfigsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _collection_pb2.CollectionConfigPackage
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_collection_pb2.CollectionConfigPackage, _Mapping]] = ...) -> None: ...
    ENDORSED_AT_FIELD_NUMBER: _ClassVar[int]
    PVT_RWSET_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_CONFIGS_FIELD_NUMBER: _ClassVar[int]
    endorsed_at: int
    pvt_rwset: _rwset_pb2.TxPvtReadWriteSet
    collection_configs: _containers.MessageMap[str, _collection_pb2.CollectionConfigPackage]
    def __init__(self, endorsed_at: _Optional[int] = ..., pvt_rwset: _Optional[_Union[_rwset_pb2.TxPvtReadWriteSet, _Mapping]] = ..., collection_configs: _Optional[_Mapping[str, _collection_pb2.CollectionConfigPackage]] = ...) -> None: ...
