from protos.peer import collection_pb2 as _collection_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InstallChaincodeArgs(_message.Message):
    __slots__ = ("chaincode_install_package",)
    CHAINCODE_INSTALL_PACKAGE_FIELD_NUMBER: _ClassVar[int]
    chaincode_install_package: bytes
    def __init__(self, chaincode_install_package: _Optional[bytes] = ...) -> None: ...

class InstallChaincodeResult(_message.Message):
    __slots__ = ("package_id", "label")
    PACKAGE_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    package_id: str
    label: str
    def __init__(self, package_id: _Optional[str] = ..., label: _Optional[str] = ...) -> None: ...

class QueryInstalledChaincodeArgs(_message.Message):
    __slots__ = ("package_id",)
    PACKAGE_ID_FIELD_NUMBER: _ClassVar[int]
    package_id: str
    def __init__(self, package_id: _Optional[str] = ...) -> None: ...

class QueryInstalledChaincodeResult(_message.Message):
    __slots__ = ("package_id", "label", "references")
    class ReferencesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: QueryInstalledChaincodeResult.References
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[QueryInstalledChaincodeResult.References, _Mapping]] = ...) -> None: ...
    class References(_message.Message):
        __slots__ = ("chaincodes",)
        CHAINCODES_FIELD_NUMBER: _ClassVar[int]
        chaincodes: _containers.RepeatedCompositeFieldContainer[QueryInstalledChaincodeResult.Chaincode]
        def __init__(self, chaincodes: _Optional[_Iterable[_Union[QueryInstalledChaincodeResult.Chaincode, _Mapping]]] = ...) -> None: ...
    class Chaincode(_message.Message):
        __slots__ = ("name", "version")
        NAME_FIELD_NUMBER: _ClassVar[int]
        VERSION_FIELD_NUMBER: _ClassVar[int]
        name: str
        version: str
        def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...
    PACKAGE_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    REFERENCES_FIELD_NUMBER: _ClassVar[int]
    package_id: str
    label: str
    references: _containers.MessageMap[str, QueryInstalledChaincodeResult.References]
    def __init__(self, package_id: _Optional[str] = ..., label: _Optional[str] = ..., references: _Optional[_Mapping[str, QueryInstalledChaincodeResult.References]] = ...) -> None: ...

class GetInstalledChaincodePackageArgs(_message.Message):
    __slots__ = ("package_id",)
    PACKAGE_ID_FIELD_NUMBER: _ClassVar[int]
    package_id: str
    def __init__(self, package_id: _Optional[str] = ...) -> None: ...

class GetInstalledChaincodePackageResult(_message.Message):
    __slots__ = ("chaincode_install_package",)
    CHAINCODE_INSTALL_PACKAGE_FIELD_NUMBER: _ClassVar[int]
    chaincode_install_package: bytes
    def __init__(self, chaincode_install_package: _Optional[bytes] = ...) -> None: ...

class QueryInstalledChaincodesArgs(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class QueryInstalledChaincodesResult(_message.Message):
    __slots__ = ("installed_chaincodes",)
    class InstalledChaincode(_message.Message):
        __slots__ = ("package_id", "label", "references")
        class ReferencesEntry(_message.Message):
            __slots__ = ("key", "value")
            KEY_FIELD_NUMBER: _ClassVar[int]
            VALUE_FIELD_NUMBER: _ClassVar[int]
            key: str
            value: QueryInstalledChaincodesResult.References
            def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[QueryInstalledChaincodesResult.References, _Mapping]] = ...) -> None: ...
        PACKAGE_ID_FIELD_NUMBER: _ClassVar[int]
        LABEL_FIELD_NUMBER: _ClassVar[int]
        REFERENCES_FIELD_NUMBER: _ClassVar[int]
        package_id: str
        label: str
        references: _containers.MessageMap[str, QueryInstalledChaincodesResult.References]
        def __init__(self, package_id: _Optional[str] = ..., label: _Optional[str] = ..., references: _Optional[_Mapping[str, QueryInstalledChaincodesResult.References]] = ...) -> None: ...
    class References(_message.Message):
        __slots__ = ("chaincodes",)
        CHAINCODES_FIELD_NUMBER: _ClassVar[int]
        chaincodes: _containers.RepeatedCompositeFieldContainer[QueryInstalledChaincodesResult.Chaincode]
        def __init__(self, chaincodes: _Optional[_Iterable[_Union[QueryInstalledChaincodesResult.Chaincode, _Mapping]]] = ...) -> None: ...
    class Chaincode(_message.Message):
        __slots__ = ("name", "version")
        NAME_FIELD_NUMBER: _ClassVar[int]
        VERSION_FIELD_NUMBER: _ClassVar[int]
        name: str
        version: str
        def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...
    INSTALLED_CHAINCODES_FIELD_NUMBER: _ClassVar[int]
    installed_chaincodes: _containers.RepeatedCompositeFieldContainer[QueryInstalledChaincodesResult.InstalledChaincode]
    def __init__(self, installed_chaincodes: _Optional[_Iterable[_Union[QueryInstalledChaincodesResult.InstalledChaincode, _Mapping]]] = ...) -> None: ...

class ApproveChaincodeDefinitionForMyOrgArgs(_message.Message):
    __slots__ = ("sequence", "name", "version", "endorsement_plugin", "validation_plugin", "validation_parameter", "collections", "init_required", "source")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENDORSEMENT_PLUGIN_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_PLUGIN_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_PARAMETER_FIELD_NUMBER: _ClassVar[int]
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    INIT_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    name: str
    version: str
    endorsement_plugin: str
    validation_plugin: str
    validation_parameter: bytes
    collections: _collection_pb2.CollectionConfigPackage
    init_required: bool
    source: ChaincodeSource
    def __init__(self, sequence: _Optional[int] = ..., name: _Optional[str] = ..., version: _Optional[str] = ..., endorsement_plugin: _Optional[str] = ..., validation_plugin: _Optional[str] = ..., validation_parameter: _Optional[bytes] = ..., collections: _Optional[_Union[_collection_pb2.CollectionConfigPackage, _Mapping]] = ..., init_required: bool = ..., source: _Optional[_Union[ChaincodeSource, _Mapping]] = ...) -> None: ...

class ChaincodeSource(_message.Message):
    __slots__ = ("unavailable", "local_package")
    class Unavailable(_message.Message):
        __slots__ = ()
        def __init__(self) -> None: ...
    class Local(_message.Message):
        __slots__ = ("package_id",)
        PACKAGE_ID_FIELD_NUMBER: _ClassVar[int]
        package_id: str
        def __init__(self, package_id: _Optional[str] = ...) -> None: ...
    UNAVAILABLE_FIELD_NUMBER: _ClassVar[int]
    LOCAL_PACKAGE_FIELD_NUMBER: _ClassVar[int]
    unavailable: ChaincodeSource.Unavailable
    local_package: ChaincodeSource.Local
    def __init__(self, unavailable: _Optional[_Union[ChaincodeSource.Unavailable, _Mapping]] = ..., local_package: _Optional[_Union[ChaincodeSource.Local, _Mapping]] = ...) -> None: ...

class ApproveChaincodeDefinitionForMyOrgResult(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CommitChaincodeDefinitionArgs(_message.Message):
    __slots__ = ("sequence", "name", "version", "endorsement_plugin", "validation_plugin", "validation_parameter", "collections", "init_required")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENDORSEMENT_PLUGIN_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_PLUGIN_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_PARAMETER_FIELD_NUMBER: _ClassVar[int]
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    INIT_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    name: str
    version: str
    endorsement_plugin: str
    validation_plugin: str
    validation_parameter: bytes
    collections: _collection_pb2.CollectionConfigPackage
    init_required: bool
    def __init__(self, sequence: _Optional[int] = ..., name: _Optional[str] = ..., version: _Optional[str] = ..., endorsement_plugin: _Optional[str] = ..., validation_plugin: _Optional[str] = ..., validation_parameter: _Optional[bytes] = ..., collections: _Optional[_Union[_collection_pb2.CollectionConfigPackage, _Mapping]] = ..., init_required: bool = ...) -> None: ...

class CommitChaincodeDefinitionResult(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CheckCommitReadinessArgs(_message.Message):
    __slots__ = ("sequence", "name", "version", "endorsement_plugin", "validation_plugin", "validation_parameter", "collections", "init_required")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENDORSEMENT_PLUGIN_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_PLUGIN_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_PARAMETER_FIELD_NUMBER: _ClassVar[int]
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    INIT_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    name: str
    version: str
    endorsement_plugin: str
    validation_plugin: str
    validation_parameter: bytes
    collections: _collection_pb2.CollectionConfigPackage
    init_required: bool
    def __init__(self, sequence: _Optional[int] = ..., name: _Optional[str] = ..., version: _Optional[str] = ..., endorsement_plugin: _Optional[str] = ..., validation_plugin: _Optional[str] = ..., validation_parameter: _Optional[bytes] = ..., collections: _Optional[_Union[_collection_pb2.CollectionConfigPackage, _Mapping]] = ..., init_required: bool = ...) -> None: ...

class CheckCommitReadinessResult(_message.Message):
    __slots__ = ("approvals", "mismatches")
    class ApprovalsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bool
        def __init__(self, key: _Optional[str] = ..., value: bool = ...) -> None: ...
    class Mismatches(_message.Message):
        __slots__ = ("items",)
        ITEMS_FIELD_NUMBER: _ClassVar[int]
        items: _containers.RepeatedScalarFieldContainer[str]
        def __init__(self, items: _Optional[_Iterable[str]] = ...) -> None: ...
    class MismatchesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: CheckCommitReadinessResult.Mismatches
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[CheckCommitReadinessResult.Mismatches, _Mapping]] = ...) -> None: ...
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    MISMATCHES_FIELD_NUMBER: _ClassVar[int]
    approvals: _containers.ScalarMap[str, bool]
    mismatches: _containers.MessageMap[str, CheckCommitReadinessResult.Mismatches]
    def __init__(self, approvals: _Optional[_Mapping[str, bool]] = ..., mismatches: _Optional[_Mapping[str, CheckCommitReadinessResult.Mismatches]] = ...) -> None: ...

class QueryApprovedChaincodeDefinitionArgs(_message.Message):
    __slots__ = ("name", "sequence")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    sequence: int
    def __init__(self, name: _Optional[str] = ..., sequence: _Optional[int] = ...) -> None: ...

class QueryApprovedChaincodeDefinitionResult(_message.Message):
    __slots__ = ("sequence", "version", "endorsement_plugin", "validation_plugin", "validation_parameter", "collections", "init_required", "source")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENDORSEMENT_PLUGIN_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_PLUGIN_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_PARAMETER_FIELD_NUMBER: _ClassVar[int]
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    INIT_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    version: str
    endorsement_plugin: str
    validation_plugin: str
    validation_parameter: bytes
    collections: _collection_pb2.CollectionConfigPackage
    init_required: bool
    source: ChaincodeSource
    def __init__(self, sequence: _Optional[int] = ..., version: _Optional[str] = ..., endorsement_plugin: _Optional[str] = ..., validation_plugin: _Optional[str] = ..., validation_parameter: _Optional[bytes] = ..., collections: _Optional[_Union[_collection_pb2.CollectionConfigPackage, _Mapping]] = ..., init_required: bool = ..., source: _Optional[_Union[ChaincodeSource, _Mapping]] = ...) -> None: ...

class QueryApprovedChaincodeDefinitionsArgs(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class QueryApprovedChaincodeDefinitionsResult(_message.Message):
    __slots__ = ("approved_chaincode_definitions",)
    class ApprovedChaincodeDefinition(_message.Message):
        __slots__ = ("name", "sequence", "version", "endorsement_plugin", "validation_plugin", "validation_parameter", "collections", "init_required", "source")
        NAME_FIELD_NUMBER: _ClassVar[int]
        SEQUENCE_FIELD_NUMBER: _ClassVar[int]
        VERSION_FIELD_NUMBER: _ClassVar[int]
        ENDORSEMENT_PLUGIN_FIELD_NUMBER: _ClassVar[int]
        VALIDATION_PLUGIN_FIELD_NUMBER: _ClassVar[int]
        VALIDATION_PARAMETER_FIELD_NUMBER: _ClassVar[int]
        COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
        INIT_REQUIRED_FIELD_NUMBER: _ClassVar[int]
        SOURCE_FIELD_NUMBER: _ClassVar[int]
        name: str
        sequence: int
        version: str
        endorsement_plugin: str
        validation_plugin: str
        validation_parameter: bytes
        collections: _collection_pb2.CollectionConfigPackage
        init_required: bool
        source: ChaincodeSource
        def __init__(self, name: _Optional[str] = ..., sequence: _Optional[int] = ..., version: _Optional[str] = ..., endorsement_plugin: _Optional[str] = ..., validation_plugin: _Optional[str] = ..., validation_parameter: _Optional[bytes] = ..., collections: _Optional[_Union[_collection_pb2.CollectionConfigPackage, _Mapping]] = ..., init_required: bool = ..., source: _Optional[_Union[ChaincodeSource, _Mapping]] = ...) -> None: ...
    APPROVED_CHAINCODE_DEFINITIONS_FIELD_NUMBER: _ClassVar[int]
    approved_chaincode_definitions: _containers.RepeatedCompositeFieldContainer[QueryApprovedChaincodeDefinitionsResult.ApprovedChaincodeDefinition]
    def __init__(self, approved_chaincode_definitions: _Optional[_Iterable[_Union[QueryApprovedChaincodeDefinitionsResult.ApprovedChaincodeDefinition, _Mapping]]] = ...) -> None: ...

class QueryChaincodeDefinitionArgs(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class QueryChaincodeDefinitionResult(_message.Message):
    __slots__ = ("sequence", "version", "endorsement_plugin", "validation_plugin", "validation_parameter", "collections", "init_required", "approvals")
    class ApprovalsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bool
        def __init__(self, key: _Optional[str] = ..., value: bool = ...) -> None: ...
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENDORSEMENT_PLUGIN_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_PLUGIN_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_PARAMETER_FIELD_NUMBER: _ClassVar[int]
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    INIT_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    version: str
    endorsement_plugin: str
    validation_plugin: str
    validation_parameter: bytes
    collections: _collection_pb2.CollectionConfigPackage
    init_required: bool
    approvals: _containers.ScalarMap[str, bool]
    def __init__(self, sequence: _Optional[int] = ..., version: _Optional[str] = ..., endorsement_plugin: _Optional[str] = ..., validation_plugin: _Optional[str] = ..., validation_parameter: _Optional[bytes] = ..., collections: _Optional[_Union[_collection_pb2.CollectionConfigPackage, _Mapping]] = ..., init_required: bool = ..., approvals: _Optional[_Mapping[str, bool]] = ...) -> None: ...

class QueryChaincodeDefinitionsArgs(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class QueryChaincodeDefinitionsResult(_message.Message):
    __slots__ = ("chaincode_definitions",)
    class ChaincodeDefinition(_message.Message):
        __slots__ = ("name", "sequence", "version", "endorsement_plugin", "validation_plugin", "validation_parameter", "collections", "init_required")
        NAME_FIELD_NUMBER: _ClassVar[int]
        SEQUENCE_FIELD_NUMBER: _ClassVar[int]
        VERSION_FIELD_NUMBER: _ClassVar[int]
        ENDORSEMENT_PLUGIN_FIELD_NUMBER: _ClassVar[int]
        VALIDATION_PLUGIN_FIELD_NUMBER: _ClassVar[int]
        VALIDATION_PARAMETER_FIELD_NUMBER: _ClassVar[int]
        COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
        INIT_REQUIRED_FIELD_NUMBER: _ClassVar[int]
        name: str
        sequence: int
        version: str
        endorsement_plugin: str
        validation_plugin: str
        validation_parameter: bytes
        collections: _collection_pb2.CollectionConfigPackage
        init_required: bool
        def __init__(self, name: _Optional[str] = ..., sequence: _Optional[int] = ..., version: _Optional[str] = ..., endorsement_plugin: _Optional[str] = ..., validation_plugin: _Optional[str] = ..., validation_parameter: _Optional[bytes] = ..., collections: _Optional[_Union[_collection_pb2.CollectionConfigPackage, _Mapping]] = ..., init_required: bool = ...) -> None: ...
    CHAINCODE_DEFINITIONS_FIELD_NUMBER: _ClassVar[int]
    chaincode_definitions: _containers.RepeatedCompositeFieldContainer[QueryChaincodeDefinitionsResult.ChaincodeDefinition]
    def __init__(self, chaincode_definitions: _Optional[_Iterable[_Union[QueryChaincodeDefinitionsResult.ChaincodeDefinition, _Mapping]]] = ...) -> None: ...
