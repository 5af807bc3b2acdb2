from protos.peer import proposal_response_pb2 as _proposal_response_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SignedChaincodeDeploymentSpec(_message.Message):
    __slots__ = ("chaincode_deployment_spec", "instantiation_policy", "owner_endorsements")
    CHAINCODE_DEPLOYMENT_SPEC_FIELD_NUMBER: _ClassVar[int]
    INSTANTIATION_POLICY_FIELD_NUMBER: _ClassVar[int]
    OWNER_ENDORSEMENTS_FIELD_NUMBER: _ClassVar[int]
    chaincode_deployment_spec: bytes
    instantiation_policy: bytes
    owner_endorsements: _containers.RepeatedCompositeFieldContainer[_proposal_response_pb2.Endorsement]
    def __init__(self, chaincode_deployment_spec: _Optional[bytes] = ..., instantiation_policy: _Optional[bytes] = ..., owner_endorsements: _Optional[_Iterable[_Union[_proposal_response_pb2.Endorsement, _Mapping]]] = ...) -> None: ...
