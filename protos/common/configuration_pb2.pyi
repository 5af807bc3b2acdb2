from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HashingAlgorithm(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class BlockDataHashingStructure(_message.Message):
    __slots__ = ("width",)
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    width: int
    def __init__(self, width: _Optional[int] = ...) -> None: ...

class OrdererAddresses(_message.Message):
    __slots__ = ("addresses",)
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    addresses: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, addresses: _Optional[_Iterable[str]] = ...) -> None: ...

class Consenter(_message.Message):
    __slots__ = ("id", "host", "port", "msp_id", "identity", "client_tls_cert", "server_tls_cert")
    ID_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    MSP_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    CLIENT_TLS_CERT_FIELD_NUMBER: _ClassVar[int]
    SERVER_TLS_CERT_FIELD_NUMBER: _ClassVar[int]
    id: int
    host: str
    port: int
    msp_id: str
    identity: bytes
    client_tls_cert: bytes
    server_tls_cert: bytes
    def __init__(self, id: _Optional[int] = ..., host: _Optional[str] = ..., port: _Optional[int] = ..., msp_id: _Optional[str] = ..., identity: _Optional[bytes] = ..., client_tls_cert: _Optional[bytes] = ..., server_tls_cert: _Optional[bytes] = ...) -> None: ...

class Orderers(_message.Message):
    __slots__ = ("consenter_mapping",)
    CONSENTER_MAPPING_FIELD_NUMBER: _ClassVar[int]
    consenter_mapping: _containers.RepeatedCompositeFieldContainer[Consenter]
    def __init__(self, consenter_mapping: _Optional[_Iterable[_Union[Consenter, _Mapping]]] = ...) -> None: ...

class Consortium(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class Capabilities(_message.Message):
    __slots__ = ("capabilities",)
    class CapabilitiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Capability
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Capability, _Mapping]] = ...) -> None: ...
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    capabilities: _containers.MessageMap[str, Capability]
    def __init__(self, capabilities: _Optional[_Mapping[str, Capability]] = ...) -> None: ...

class Capability(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
