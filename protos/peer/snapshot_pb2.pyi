from google.protobuf import empty_pb2 as _empty_pb2
from protos.common import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SnapshotRequest(_message.Message):
    __slots__ = ("signature_header", "channel_id", "block_number")
    SIGNATURE_HEADER_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    BLOCK_NUMBER_FIELD_NUMBER: _ClassVar[int]
    signature_header: _common_pb2.SignatureHeader
    channel_id: str
    block_number: int
    def __init__(self, signature_header: _Optional[_Union[_common_pb2.SignatureHeader, _Mapping]] = ..., channel_id: _Optional[str] = ..., block_number: _Optional[int] = ...) -> None: ...

class SnapshotQuery(_message.Message):
    __slots__ = ("signature_header", "channel_id")
    SIGNATURE_HEADER_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    signature_header: _common_pb2.SignatureHeader
    channel_id: str
    def __init__(self, signature_header: _Optional[_Union[_common_pb2.SignatureHeader, _Mapping]] = ..., channel_id: _Optional[str] = ...) -> None: ...

class SignedSnapshotRequest(_message.Message):
    __slots__ = ("request", "signature")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    request: bytes
    signature: bytes
    def __init__(self, request: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class QueryPendingSnapshotsResponse(_message.Message):
    __slots__ = ("block_numbers",)
    BLOCK_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    block_numbers: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, block_numbers: _Optional[_Iterable[int]] = ...) -> None: ...
