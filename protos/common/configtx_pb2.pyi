from protos.common import common_pb2 as _common_pb2
from protos.common import policies_pb2 as _policies_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConfigEnvelope(_message.Message):
    __slots__ = ("config", "last_update")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    LAST_UPDATE_FIELD_NUMBER: _ClassVar[int]
    config: Config
    last_update: _common_pb2.Envelope
    def __init__(self, config: _Optional[_Union[Config, _Mapping]] = ..., last_update: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ...) -> None: ...

class Config(_message.Message):
    __slots__ = ("sequence", "channel_group")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_GROUP_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    channel_group: ConfigGroup
    def __init__(self, sequence: _Optional[int] = ..., channel_group: _Optional[_Union[ConfigGroup, _Mapping]] = ...) -> None: ...

class ConfigUpdateEnvelope(_message.Message):
    __slots__ = ("config_update", "signatures")
    CONFIG_UPDATE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    config_update: bytes
    signatures: _containers.RepeatedCompositeFieldContainer[ConfigSignature]
    def __init__(self, config_update: _Optional[bytes] = ..., signatures: _Optional[_Iterable[_Union[ConfigSignature, _Mapping]]] = ...) -> None: ...

class ConfigUpdate(_message.Message):
    __slots__ = ("channel_id", "read_set", "write_set", "isolated_data")
    class IsolatedDataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bytes
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    READ_SET_FIELD_NUMBER: _ClassVar[int]
    WRITE_SET_FIELD_NUMBER: _ClassVar[int]
    ISOLATED_DATA_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    read_set: ConfigGroup
    write_set: ConfigGroup
    isolated_data: _containers.ScalarMap[str, bytes]
    def __init__(self, channel_id: _Optional[str] = ..., read_set: _Optional[_Union[ConfigGroup, _Mapping]] = ..., write_set: _Optional[_Union[ConfigGroup, _Mapping]] = ..., isolated_data: _Optional[_Mapping[str, bytes]] = ...) -> None: ...

class ConfigGroup(_message.Message):
    __slots__ = ("version", "groups", "values", "policies", "mod_policy")
    class GroupsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ConfigGroup
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ConfigGroup, _Mapping]] = ...) -> None: ...
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ConfigValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ConfigValue, _Mapping]] = ...) -> None: ...
    class PoliciesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ConfigPolicy
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ConfigPolicy, _Mapping]] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    MOD_POLICY_FIELD_NUMBER: _ClassVar[int]
    version: int
    groups: _containers.MessageMap[str, ConfigGroup]
    values: _containers.MessageMap[str, ConfigValue]
    policies: _containers.MessageMap[str, ConfigPolicy]
    mod_policy: str
    def __init__(self, version: _Optional[int] = ..., groups: _Optional[_Mapping[str, ConfigGroup]] = ..., values: _Optional[_Mapping[str, ConfigValue]] = ..., policies: _Optional[_Mapping[str, ConfigPolicy]] = ..., mod_policy: _Optional[str] = ...) -> None: ...

class ConfigValue(_message.Message):
    __slots__ = ("version", "value", "mod_policy")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    MOD_POLICY_FIELD_NUMBER: _ClassVar[int]
    version: int
    value: bytes
    mod_policy: str
    def __init__(self, version: _Optional[int] = ..., value: _Optional[bytes] = ..., mod_policy: _Optional[str] = ...) -> None: ...

class ConfigPolicy(_message.Message):
    __slots__ = ("version", "policy", "mod_policy")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    MOD_POLICY_FIELD_NUMBER: _ClassVar[int]
    version: int
    policy: _policies_pb2.Policy
    mod_policy: str
    def __init__(self, version: _Optional[int] = ..., policy: _Optional[_Union[_policies_pb2.Policy, _Mapping]] = ..., mod_policy: _Optional[str] = ...) -> None: ...

class ConfigSignature(_message.Message):
    __slots__ = ("signature_header", "signature")
    SIGNATURE_HEADER_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    signature_header: bytes
    signature: bytes
    def __init__(self, signature_header: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...
