"""Chaincode ids and responses as plain values, shared by proposals and responses.

They mirror protos.ChaincodeID and protos.Response; converting here keeps generated
message classes out of the frozen views the rest of medledger passes around.
"""

from __future__ import annotations

from dataclasses import dataclass

from protos.peer import chaincode_pb2, proposal_response_pb2

STATUS_OK = 200
STATUS_ERROR_THRESHOLD = 400
"""Responses at or above this status are failures; below it, endorsable."""


@dataclass(frozen=True, slots=True)
class ChaincodeId:
    """A protos.ChaincodeID: name, and the version of the committed definition."""

    name: str
    version: str = ""
    path: str = ""


@dataclass(frozen=True, slots=True)
class ChaincodeResponse:
    """A protos.Response: the status, message and payload a chaincode returned."""

    status: int
    message: str = ""
    payload: bytes = b""

    @property
    def is_success(self) -> bool:
        """True for statuses Fabric accepts into a transaction (200 ≤ status < 400)."""
        return STATUS_OK <= self.status < STATUS_ERROR_THRESHOLD


def chaincode_id_message(chaincode_id: ChaincodeId) -> chaincode_pb2.ChaincodeID:
    """The protobuf form of a ChaincodeId."""
    return chaincode_pb2.ChaincodeID(
        name=chaincode_id.name, version=chaincode_id.version, path=chaincode_id.path
    )


def chaincode_id_of(message: chaincode_pb2.ChaincodeID) -> ChaincodeId:
    """The plain form of a protobuf ChaincodeID."""
    return ChaincodeId(name=message.name, version=message.version, path=message.path)


def response_message(response: ChaincodeResponse) -> proposal_response_pb2.Response:
    """The protobuf form of a ChaincodeResponse."""
    return proposal_response_pb2.Response(
        status=response.status, message=response.message, payload=response.payload
    )


def response_of(message: proposal_response_pb2.Response) -> ChaincodeResponse:
    """The plain form of a protobuf Response."""
    return ChaincodeResponse(
        status=message.status, message=message.message, payload=message.payload
    )
