from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PushPayload(_message.Message):
    __slots__ = ("channel_id", "tx_id", "endorsed_at", "private_data", "sender", "timestamp")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    TX_ID_FIELD_NUMBER: _ClassVar[int]
    ENDORSED_AT_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_DATA_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    tx_id: str
    endorsed_at: int
    private_data: bytes
    sender: bytes
    timestamp: _timestamp_pb2.Timestamp
    def __init__(self, channel_id: _Optional[str] = ..., tx_id: _Optional[str] = ..., endorsed_at: _Optional[int] = ..., private_data: _Optional[bytes] = ..., sender: _Optional[bytes] = ..., timestamp: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PushRequest(_message.Message):
    __slots__ = ("payload", "signature")
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    signature: bytes
    def __init__(self, payload: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class CollectionName(_message.Message):
    __slots__ = ("namespace", "collection")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    collection: str
    def __init__(self, namespace: _Optional[str] = ..., collection: _Optional[str] = ...) -> None: ...

class PushAck(_message.Message):
    __slots__ = ("channel_id", "tx_id", "payload_hash", "stored", "receiver")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    TX_ID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_HASH_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    RECEIVER_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    tx_id: str
    payload_hash: bytes
    stored: _containers.RepeatedCompositeFieldContainer[CollectionName]
    receiver: bytes
    def __init__(self, channel_id: _Optional[str] = ..., tx_id: _Optional[str] = ..., payload_hash: _Optional[bytes] = ..., stored: _Optional[_Iterable[_Union[CollectionName, _Mapping]]] = ..., receiver: _Optional[bytes] = ...) -> None: ...

class PushResponse(_message.Message):
    __slots__ = ("payload", "signature")
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    signature: bytes
    def __init__(self, payload: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class PrivateDataDigest(_message.Message):
    __slots__ = ("tx_id", "block_num", "tx_num", "namespace", "collection")
    TX_ID_FIELD_NUMBER: _ClassVar[int]
    BLOCK_NUM_FIELD_NUMBER: _ClassVar[int]
    TX_NUM_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    tx_id: str
    block_num: int
    tx_num: int
    namespace: str
    collection: str
    def __init__(self, tx_id: _Optional[str] = ..., block_num: _Optional[int] = ..., tx_num: _Optional[int] = ..., namespace: _Optional[str] = ..., collection: _Optional[str] = ...) -> None: ...

class PullPayload(_message.Message):
    __slots__ = ("channel_id", "digests", "requester", "timestamp")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    DIGESTS_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    digests: _containers.RepeatedCompositeFieldContainer[PrivateDataDigest]
    requester: bytes
    timestamp: _timestamp_pb2.Timestamp
    def __init__(self, channel_id: _Optional[str] = ..., digests: _Optional[_Iterable[_Union[PrivateDataDigest, _Mapping]]] = ..., requester: _Optional[bytes] = ..., timestamp: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PullRequest(_message.Message):
    __slots__ = ("payload", "signature")
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    signature: bytes
    def __init__(self, payload: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class PrivateDataElement(_message.Message):
    __slots__ = ("digest", "rwset")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    RWSET_FIELD_NUMBER: _ClassVar[int]
    digest: PrivateDataDigest
    rwset: bytes
    def __init__(self, digest: _Optional[_Union[PrivateDataDigest, _Mapping]] = ..., rwset: _Optional[bytes] = ...) -> None: ...

class PullResponse(_message.Message):
    __slots__ = ("elements",)
    ELEMENTS_FIELD_NUMBER: _ClassVar[int]
    elements: _containers.RepeatedCompositeFieldContainer[PrivateDataElement]
    def __init__(self, elements: _Optional[_Iterable[_Union[PrivateDataElement, _Mapping]]] = ...) -> None: ...
