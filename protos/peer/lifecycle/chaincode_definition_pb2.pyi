from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class ChaincodeEndorsementInfo(_message.Message):
    __slots__ = ("version", "init_required", "endorsement_plugin")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    INIT_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    ENDORSEMENT_PLUGIN_FIELD_NUMBER: _ClassVar[int]
    version: str
    init_required: bool
    endorsement_plugin: str
    def __init__(self, version: _Optional[str] = ..., init_required: bool = ..., endorsement_plugin: _Optional[str] = ...) -> None: ...

class ChaincodeValidationInfo(_message.Message):
    __slots__ = ("validation_plugin", "validation_parameter")
    VALIDATION_PLUGIN_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_PARAMETER_FIELD_NUMBER: _ClassVar[int]
    validation_plugin: str
    validation_parameter: bytes
    def __init__(self, validation_plugin: _Optional[str] = ..., validation_parameter: _Optional[bytes] = ...) -> None: ...
