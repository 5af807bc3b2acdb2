from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class SerializedIdentity(_message.Message):
    __slots__ = ("mspid", "id_bytes")
    MSPID_FIELD_NUMBER: _ClassVar[int]
    ID_BYTES_FIELD_NUMBER: _ClassVar[int]
    mspid: str
    id_bytes: bytes
    def __init__(self, mspid: _Optional[str] = ..., id_bytes: _Optional[bytes] = ...) -> None: ...

class SerializedIdemixIdentity(_message.Message):
    __slots__ = ("nym_x", "nym_y", "ou", "role", "proof")
    NYM_X_FIELD_NUMBER: _ClassVar[int]
    NYM_Y_FIELD_NUMBER: _ClassVar[int]
    OU_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    nym_x: bytes
    nym_y: bytes
    ou: bytes
    role: bytes
    proof: bytes
    def __init__(self, nym_x: _Optional[bytes] = ..., nym_y: _Optional[bytes] = ..., ou: _Optional[bytes] = ..., role: _Optional[bytes] = ..., proof: _Optional[bytes] = ...) -> None: ...
