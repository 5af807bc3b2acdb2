from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChaincodeQueryResponse(_message.Message):
    __slots__ = ("chaincodes",)
    CHAINCODES_FIELD_NUMBER: _ClassVar[int]
    chaincodes: _containers.RepeatedCompositeFieldContainer[ChaincodeInfo]
    def __init__(self, chaincodes: _Optional[_Iterable[_Union[ChaincodeInfo, _Mapping]]] = ...) -> None: ...

class ChaincodeInfo(_message.Message):
    __slots__ = ("name", "version", "path", "input", "escc", "vscc", "id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    ESCC_FIELD_NUMBER: _ClassVar[int]
    VSCC_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    path: str
    input: str
    escc: str
    vscc: str
    id: bytes
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., path: _Optional[str] = ..., input: _Optional[str] = ..., escc: _Optional[str] = ..., vscc: _Optional[str] = ..., id: _Optional[bytes] = ...) -> None: ...

class ChannelQueryResponse(_message.Message):
    __slots__ = ("channels",)
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    channels: _containers.RepeatedCompositeFieldContainer[ChannelInfo]
    def __init__(self, channels: _Optional[_Iterable[_Union[ChannelInfo, _Mapping]]] = ...) -> None: ...

class ChannelInfo(_message.Message):
    __slots__ = ("channel_id",)
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    def __init__(self, channel_id: _Optional[str] = ...) -> None: ...

class JoinBySnapshotStatus(_message.Message):
    __slots__ = ("in_progress", "bootstrapping_snapshot_dir")
    IN_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    BOOTSTRAPPING_SNAPSHOT_DIR_FIELD_NUMBER: _ClassVar[int]
    in_progress: bool
    bootstrapping_snapshot_dir: str
    def __init__(self, in_progress: bool = ..., bootstrapping_snapshot_dir: _Optional[str] = ...) -> None: ...
