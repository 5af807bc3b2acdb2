"""The hospital records chaincode's data: records, consents, access-log entries, keys.

Public state holds only what every hospital may see: a record's metadata and the
SHA-256 of its plaintext, patients' consents, and the access log. Plaintext lives in
private data collections (see `treating_collection` and `shared_collection`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime

RECORD = "ehr.record"
"""Composite-key object type of records: (record id)."""
CONSENT = "ehr.consent"
"""Composite-key object type of consents: (patient MSP, patient id, hospital MSP)."""
ACCESS = "ehr.access"
"""Composite-key object type of access-log entries: (patient MSP, patient id, time, tx)."""

IMPLICIT_PREFIX = "_implicit_org_"


def treating_collection(mspid: str) -> str:
    """Where the treating hospital keeps its plaintext: its implicit org collection."""
    return f"{IMPLICIT_PREFIX}{mspid}"


def shared_collection(first: str, second: str) -> str:
    """The named collection two hospitals share: their MSP ids, sorted, joined by '-'.

    For HospitalAMSP and HospitalBMSP it is "HospitalAMSP-HospitalBMSP"; collections.json
    defines one per pair of hospitals.
    """
    low, high = sorted((first, second))
    return f"{low}-{high}"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def iso(moment: datetime) -> str:
    """A UTC instant as ISO 8601 with a 'Z' suffix."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant with a timezone ("2030-01-01T00:00:00Z").

    Raises:
        ValueError: not ISO 8601, or no timezone.
    """
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no timezone")
    return moment


def _dumps(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Record:
    """A diagnosis record's public metadata; the plaintext is private data."""

    record_id: str
    patient_msp: str
    patient_id: str
    hospital: str
    clinician: str
    created_at: str
    sha256: str
    tx_id: str
    holders: dict[str, str] = field(default_factory=dict)
    """Other hospitals holding a copy: MSP id → collection."""
    erased: bool = False
    erased_at: str | None = None
    purged_from: list[str] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        return _dumps(asdict(self))

    @classmethod
    def from_bytes(cls, data: bytes) -> Record:
        return cls(**json.loads(data))

    def shared_with(self, mspid: str, collection: str) -> Record:
        return replace(self, holders={**self.holders, mspid: collection})

    def erase(self, at: str, collections: list[str]) -> Record:
        return replace(
            self, holders={}, erased=True, erased_at=at, purged_from=collections
        )


@dataclass(frozen=True, slots=True)
class Consent:
    """A patient's consent that `hospital` may receive and read their records."""

    patient_msp: str
    patient_id: str
    hospital: str
    granted_at: str
    expires_at: str
    tx_id: str

    def to_bytes(self) -> bytes:
        return _dumps(asdict(self))

    @classmethod
    def from_bytes(cls, data: bytes) -> Consent:
        return cls(**json.loads(data))

    def valid_at(self, moment: datetime) -> bool:
        return moment < parse_instant(self.expires_at)


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One line of a patient's audit trail: who did what with which record, and when."""

    action: str
    """"read", "share" or "erase"."""
    record_id: str
    actor: str
    actor_msp: str
    at: str
    purpose: str
    tx_id: str

    def to_bytes(self) -> bytes:
        return _dumps(asdict(self))

    @classmethod
    def from_bytes(cls, data: bytes) -> AccessEntry:
        return cls(**json.loads(data))
