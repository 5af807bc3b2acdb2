from protos.common import common_pb2 as _common_pb2
from protos.ledger.rwset import rwset_pb2 as _rwset_pb2
from protos.peer import chaincode_event_pb2 as _chaincode_event_pb2
from protos.peer import transaction_pb2 as _transaction_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FilteredBlock(_message.Message):
    __slots__ = ("channel_id", "number", "filtered_transactions")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    FILTERED_TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    number: int
    filtered_transactions: _containers.RepeatedCompositeFieldContainer[FilteredTransaction]
    def __init__(self, channel_id: _Optional[str] = ..., number: _Optional[int] = ..., filtered_transactions: _Optional[_Iterable[_Union[FilteredTransaction, _Mapping]]] = ...) -> None: ...

class FilteredTransaction(_message.Message):
    __slots__ = ("txid", "type", "tx_validation_code", "transaction_actions")
    TXID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TX_VALIDATION_CODE_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_ACTIONS_FIELD_NUMBER: _ClassVar[int]
    txid: str
    type: _common_pb2.HeaderType
    tx_validation_code: _transaction_pb2.TxValidationCode
    transaction_actions: FilteredTransactionActions
    def __init__(self, txid: _Optional[str] = ..., type: _Optional[_Union[_common_pb2.HeaderType, str]] = ..., tx_validation_code: _Optional[_Union[_transaction_pb2.TxValidationCode, str]] = ..., transaction_actions: _Optional[_Union[FilteredTransactionActions, _Mapping]] = ...) -> None: ...

class FilteredTransactionActions(_message.Message):
    __slots__ = ("chaincode_actions",)
    CHAINCODE_ACTIONS_FIELD_NUMBER: _ClassVar[int]
    chaincode_actions: _containers.RepeatedCompositeFieldContainer[FilteredChaincodeAction]
    def __init__(self, chaincode_actions: _Optional[_Iterable[_Union[FilteredChaincodeAction, _Mapping]]] = ...) -> None: ...

class FilteredChaincodeAction(_message.Message):
    __slots__ = ("chaincode_event",)
    CHAINCODE_EVENT_FIELD_NUMBER: _ClassVar[int]
    chaincode_event: _chaincode_event_pb2.ChaincodeEvent
    def __init__(self, chaincode_event: _Optional[_Union[_chaincode_event_pb2.ChaincodeEvent, _Mapping]] = ...) -> None: ...

class BlockAndPrivateData(_message.Message):
    __slots__ = ("block", "private_data_map")
    class PrivateDataMapEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: _rwset_pb2.TxPvtReadWriteSet
        def __init__(self, key: _Optional[int] = ..., value: _Optional[_Union[_rwset_pb2.TxPvtReadWriteSet, _Mapping]] = ...) -> None: ...
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_DATA_MAP_FIELD_NUMBER: _ClassVar[int]
    block: _common_pb2.Block
    private_data_map: _containers.MessageMap[int, _rwset_pb2.TxPvtReadWriteSet]
    def __init__(self, block: _Optional[_Union[_common_pb2.Block, _Mapping]] = ..., private_data_map: _Optional[_Mapping[int, _rwset_pb2.TxPvtReadWriteSet]] = ...) -> None: ...

class DeliverResponse(_message.Message):
    __slots__ = ("status", "block", "filtered_block", "block_and_private_data")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    FILTERED_BLOCK_FIELD_NUMBER: _ClassVar[int]
    BLOCK_AND_PRIVATE_DATA_FIELD_NUMBER: _ClassVar[int]
    status: _common_pb2.Status
    block: _common_pb2.Block
    filtered_block: FilteredBlock
    block_and_private_data: BlockAndPrivateData
    def __init__(self, status: _Optional[_Union[_common_pb2.Status, str]] = ..., block: _Optional[_Union[_common_pb2.Block, _Mapping]] = ..., filtered_block: _Optional[_Union[FilteredBlock, _Mapping]] = ..., block_and_private_data: _Optional[_Union[BlockAndPrivateData, _Mapping]] = ...) -> None: ...
