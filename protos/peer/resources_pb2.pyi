from protos.common import configtx_pb2 as _configtx_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChaincodeIdentifier(_message.Message):
    __slots__ = ("hash", "version")
    HASH_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    hash: bytes
    version: str
    def __init__(self, hash: _Optional[bytes] = ..., version: _Optional[str] = ...) -> None: ...

class ChaincodeValidation(_message.Message):
    __slots__ = ("name", "argument")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARGUMENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    argument: bytes
    def __init__(self, name: _Optional[str] = ..., argument: _Optional[bytes] = ...) -> None: ...

class VSCCArgs(_message.Message):
    __slots__ = ("endorsement_policy_ref",)
    ENDORSEMENT_POLICY_REF_FIELD_NUMBER: _ClassVar[int]
    endorsement_policy_ref: str
    def __init__(self, endorsement_policy_ref: _Optional[str] = ...) -> None: ...

class ChaincodeEndorsement(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ConfigTree(_message.Message):
    __slots__ = ("channel_config", "resources_config")
    CHANNEL_CONFIG_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_CONFIG_FIELD_NUMBER: _ClassVar[int]
    channel_config: _configtx_pb2.Config
    resources_config: _configtx_pb2.Config
    def __init__(self, channel_config: _Optional[_Union[_configtx_pb2.Config, _Mapping]] = ..., resources_config: _Optional[_Union[_configtx_pb2.Config, _Mapping]] = ...) -> None: ...
