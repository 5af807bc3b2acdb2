from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class BlockMetadata(_message.Message):
    __slots__ = ("consenter_ids", "next_consenter_id", "raft_index")
    CONSENTER_IDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CONSENTER_ID_FIELD_NUMBER: _ClassVar[int]
    RAFT_INDEX_FIELD_NUMBER: _ClassVar[int]
    consenter_ids: _containers.RepeatedScalarFieldContainer[int]
    next_consenter_id: int
    raft_index: int
    def __init__(self, consenter_ids: _Optional[_Iterable[int]] = ..., next_consenter_id: _Optional[int] = ..., raft_index: _Optional[int] = ...) -> None: ...

class ClusterMetadata(_message.Message):
    __slots__ = ("active_nodes",)
    ACTIVE_NODES_FIELD_NUMBER: _ClassVar[int]
    active_nodes: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, active_nodes: _Optional[_Iterable[int]] = ...) -> None: ...
