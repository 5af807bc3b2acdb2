from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ForwardStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FORWARD_STATUS_UNSPECIFIED: _ClassVar[ForwardStatus]
    FORWARD_STATUS_ORDERED: _ClassVar[ForwardStatus]
    FORWARD_STATUS_NOT_CUTTER: _ClassVar[ForwardStatus]
    FORWARD_STATUS_UNAVAILABLE: _ClassVar[ForwardStatus]
    FORWARD_STATUS_REJECTED: _ClassVar[ForwardStatus]
FORWARD_STATUS_UNSPECIFIED: ForwardStatus
FORWARD_STATUS_ORDERED: ForwardStatus
FORWARD_STATUS_NOT_CUTTER: ForwardStatus
FORWARD_STATUS_UNAVAILABLE: ForwardStatus
FORWARD_STATUS_REJECTED: ForwardStatus

class ForwardRequest(_message.Message):
    __slots__ = ("channel_id", "envelopes", "sender", "config_sequences")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    ENVELOPES_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    CONFIG_SEQUENCES_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    envelopes: _containers.RepeatedScalarFieldContainer[bytes]
    sender: str
    config_sequences: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, channel_id: _Optional[str] = ..., envelopes: _Optional[_Iterable[bytes]] = ..., sender: _Optional[str] = ..., config_sequences: _Optional[_Iterable[int]] = ...) -> None: ...

class ForwardResult(_message.Message):
    __slots__ = ("status", "block_number", "message", "reject_status")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    BLOCK_NUMBER_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REJECT_STATUS_FIELD_NUMBER: _ClassVar[int]
    status: ForwardStatus
    block_number: int
    message: str
    reject_status: int
    def __init__(self, status: _Optional[_Union[ForwardStatus, str]] = ..., block_number: _Optional[int] = ..., message: _Optional[str] = ..., reject_status: _Optional[int] = ...) -> None: ...

class ForwardResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ForwardResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ForwardResult, _Mapping]]] = ...) -> None: ...

class CutterRecord(_message.Message):
    __slots__ = ("orderer_name", "forward_address", "incarnation")
    ORDERER_NAME_FIELD_NUMBER: _ClassVar[int]
    FORWARD_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    orderer_name: str
    forward_address: str
    incarnation: bytes
    def __init__(self, orderer_name: _Optional[str] = ..., forward_address: _Optional[str] = ..., incarnation: _Optional[bytes] = ...) -> None: ...
