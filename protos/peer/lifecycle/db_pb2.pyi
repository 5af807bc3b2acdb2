from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class StateMetadata(_message.Message):
    __slots__ = ("datatype", "fields")
    DATATYPE_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    datatype: str
    fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, datatype: _Optional[str] = ..., fields: _Optional[_Iterable[str]] = ...) -> None: ...

class StateData(_message.Message):
    __slots__ = ("Int64", "Bytes", "String")
    INT64_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    STRING_FIELD_NUMBER: _ClassVar[int]
    Int64: int
    Bytes: bytes
    String: str
    def __init__(self, Int64: _Optional[int] = ..., Bytes: _Optional[bytes] = ..., String: _Optional[str] = ...) -> None: ...
