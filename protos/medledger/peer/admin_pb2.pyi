from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AdminCommand(_message.Message):
    __slots__ = ("identity", "timestamp", "nonce", "join_channel", "list_channels", "list_purges")
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    JOIN_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    LIST_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    LIST_PURGES_FIELD_NUMBER: _ClassVar[int]
    identity: bytes
    timestamp: _timestamp_pb2.Timestamp
    nonce: bytes
    join_channel: JoinChannelCommand
    list_channels: ListChannelsCommand
    list_purges: ListPurgesCommand
    def __init__(self, identity: _Optional[bytes] = ..., timestamp: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., nonce: _Optional[bytes] = ..., join_channel: _Optional[_Union[JoinChannelCommand, _Mapping]] = ..., list_channels: _Optional[_Union[ListChannelsCommand, _Mapping]] = ..., list_purges: _Optional[_Union[ListPurgesCommand, _Mapping]] = ...) -> None: ...

class JoinChannelCommand(_message.Message):
    __slots__ = ("genesis_block",)
    GENESIS_BLOCK_FIELD_NUMBER: _ClassVar[int]
    genesis_block: bytes
    def __init__(self, genesis_block: _Optional[bytes] = ...) -> None: ...

class ListChannelsCommand(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class JoinChannelRequest(_message.Message):
    __slots__ = ("payload", "signature")
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    signature: bytes
    def __init__(self, payload: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class JoinChannelResponse(_message.Message):
    __slots__ = ("channel_id", "height")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    height: int
    def __init__(self, channel_id: _Optional[str] = ..., height: _Optional[int] = ...) -> None: ...

class ListChannelsRequest(_message.Message):
    __slots__ = ("payload", "signature")
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    signature: bytes
    def __init__(self, payload: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class ChannelSummary(_message.Message):
    __slots__ = ("channel_id", "height")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    height: int
    def __init__(self, channel_id: _Optional[str] = ..., height: _Optional[int] = ...) -> None: ...

class ListChannelsResponse(_message.Message):
    __slots__ = ("channels",)
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    channels: _containers.RepeatedCompositeFieldContainer[ChannelSummary]
    def __init__(self, channels: _Optional[_Iterable[_Union[ChannelSummary, _Mapping]]] = ...) -> None: ...

class ListPurgesCommand(_message.Message):
    __slots__ = ("channel_id", "namespace", "collection")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    namespace: str
    collection: str
    def __init__(self, channel_id: _Optional[str] = ..., namespace: _Optional[str] = ..., collection: _Optional[str] = ...) -> None: ...

class ListPurgesRequest(_message.Message):
    __slots__ = ("payload", "signature")
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    signature: bytes
    def __init__(self, payload: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class PurgeRecord(_message.Message):
    __slots__ = ("channel_id", "namespace", "collection", "key_hash", "block_number", "tx_number", "tx_id", "tx_timestamp", "private_state_removed", "hashed_state_removed", "store_entries_purged")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    KEY_HASH_FIELD_NUMBER: _ClassVar[int]
    BLOCK_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TX_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TX_ID_FIELD_NUMBER: _ClassVar[int]
    TX_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_STATE_REMOVED_FIELD_NUMBER: _ClassVar[int]
    HASHED_STATE_REMOVED_FIELD_NUMBER: _ClassVar[int]
    STORE_ENTRIES_PURGED_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    namespace: str
    collection: str
    key_hash: bytes
    block_number: int
    tx_number: int
    tx_id: str
    tx_timestamp: _timestamp_pb2.Timestamp
    private_state_removed: bool
    hashed_state_removed: bool
    store_entries_purged: int
    def __init__(self, channel_id: _Optional[str] = ..., namespace: _Optional[str] = ..., collection: _Optional[str] = ..., key_hash: _Optional[bytes] = ..., block_number: _Optional[int] = ..., tx_number: _Optional[int] = ..., tx_id: _Optional[str] = ..., tx_timestamp: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., private_state_removed: bool = ..., hashed_state_removed: bool = ..., store_entries_purged: _Optional[int] = ...) -> None: ...

class ListPurgesResponse(_message.Message):
    __slots__ = ("purges",)
    PURGES_FIELD_NUMBER: _ClassVar[int]
    purges: _containers.RepeatedCompositeFieldContainer[PurgeRecord]
    def __init__(self, purges: _Optional[_Iterable[_Union[PurgeRecord, _Mapping]]] = ...) -> None: ...
