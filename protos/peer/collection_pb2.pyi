from protos.common import policies_pb2 as _policies_pb2
from protos.peer import policy_pb2 as _policy_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CollectionConfigPackage(_message.Message):
    __slots__ = ("config",)
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config: _containers.RepeatedCompositeFieldContainer[CollectionConfig]
    def __init__(self, config: _Optional[_Iterable[_Union[CollectionConfig, _Mapping]]] = ...) -> None: ...

class CollectionConfig(_message.Message):
    __slots__ = ("static_collection_config",)
    STATIC_COLLECTION_CONFIG_FIELD_NUMBER: _ClassVar[int]
    static_collection_config: StaticCollectionConfig
    def __init__(self, static_collection_config: _Optional[_Union[StaticCollectionConfig, _Mapping]] = ...) -> None: ...

class StaticCollectionConfig(_message.Message):
    __slots__ = ("name", "member_orgs_policy", "required_peer_count", "maximum_peer_count", "block_to_live", "member_only_read", "member_only_write", "endorsement_policy")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ORGS_POLICY_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_PEER_COUNT_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_PEER_COUNT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_TO_LIVE_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ONLY_READ_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ONLY_WRITE_FIELD_NUMBER: _ClassVar[int]
    ENDORSEMENT_POLICY_FIELD_NUMBER: _ClassVar[int]
    name: str
    member_orgs_policy: CollectionPolicyConfig
    required_peer_count: int
    maximum_peer_count: int
    block_to_live: int
    member_only_read: bool
    member_only_write: bool
    endorsement_policy: _policy_pb2.ApplicationPolicy
    def __init__(self, name: _Optional[str] = ..., member_orgs_policy: _Optional[_Union[CollectionPolicyConfig, _Mapping]] = ..., required_peer_count: _Optional[int] = ..., maximum_peer_count: _Optional[int] = ..., block_to_live: _Optional[int] = ..., member_only_read: bool = ..., member_only_write: bool = ..., endorsement_policy: _Optional[_Union[_policy_pb2.ApplicationPolicy, _Mapping]] = ...) -> None: ...

class CollectionPolicyConfig(_message.Message):
    __slots__ = ("signature_policy",)
    SIGNATURE_POLICY_FIELD_NUMBER: _ClassVar[int]
    signature_policy: _policies_pb2.SignaturePolicyEnvelope
    def __init__(self, signature_policy: _Optional[_Union[_policies_pb2.SignaturePolicyEnvelope, _Mapping]] = ...) -> None: ...
