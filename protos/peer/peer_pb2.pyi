from protos.peer import proposal_pb2 as _proposal_pb2
from protos.peer import proposal_response_pb2 as _proposal_response_pb2
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor
