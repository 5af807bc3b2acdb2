from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BlockchainInfo(_message.Message):
    __slots__ = ("height", "currentBlockHash", "previousBlockHash", "bootstrappingSnapshotInfo")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    CURRENTBLOCKHASH_FIELD_NUMBER: _ClassVar[int]
    PREVIOUSBLOCKHASH_FIELD_NUMBER: _ClassVar[int]
    BOOTSTRAPPINGSNAPSHOTINFO_FIELD_NUMBER: _ClassVar[int]
    height: int
    currentBlockHash: bytes
    previousBlockHash: bytes
    bootstrappingSnapshotInfo: BootstrappingSnapshotInfo
    def __init__(self, height: _Optional[int] = ..., currentBlockHash: _Optional[bytes] = ..., previousBlockHash: _Optional[bytes] = ..., bootstrappingSnapshotInfo: _Optional[_Union[BootstrappingSnapshotInfo, _Mapping]] = ...) -> None: ...

class BootstrappingSnapshotInfo(_message.Message):
    __slots__ = ("lastBlockInSnapshot",)
    LASTBLOCKINSNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    lastBlockInSnapshot: int
    def __init__(self, lastBlockInSnapshot: _Optional[int] = ...) -> None: ...
