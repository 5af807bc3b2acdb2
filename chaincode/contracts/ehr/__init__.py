"""The hospital records chaincode (issue 8): private diagnoses, consent, audited reads.

Serve it with `python -m chaincode serve --module chaincode.contracts.ehr ...`; its
private data collections (one per pair of hospitals of the example consortium) are in
`collections.json` next to this file, in Fabric's collection-config JSON format.
"""

from chaincode.contracts.ehr.contract import HealthRecords
from chaincode.contracts.ehr.model import (
    AccessEntry,
    Consent,
    Record,
    sha256_hex,
    shared_collection,
    treating_collection,
)
from chaincode.contracts.ehr.sealing import SealError, open_sealed, seal

contracts = [HealthRecords()]
"""What `python -m chaincode serve --module chaincode.contracts.ehr` serves."""

__all__ = [
    "AccessEntry",
    "Consent",
    "HealthRecords",
    "Record",
    "SealError",
    "contracts",
    "open_sealed",
    "seal",
    "sha256_hex",
    "shared_collection",
    "treating_collection",
]
