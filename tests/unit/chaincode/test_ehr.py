"""The hospital records chaincode on the mock peer: every function, consent expiry,
refusals with their messages, the access log, erasure keeping the hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from chaincode.contracts.ehr import (
    HealthRecords,
    SealError,
    contracts,
    open_sealed,
    shared_collection,
    treating_collection,
)
from chaincode.shim import create_composite_key
from chaincode.shim.execute import execute
from chaincode.shim.transaction import transaction_info
from chaincode.testing import (
    DEFAULT_CHAINCODE,
    InvocationResult,
    MockPeer,
    MockTransaction,
    invocation_result,
    make_identity,
    transaction_message,
)
from common.policies import from_string
from common.protoutil import SerializedIdentity, Timestamp

A, B, C = "HospitalAMSP", "HospitalBMSP", "HospitalCMSP"
CC = DEFAULT_CHAINCODE
DR_LEE = make_identity(A, "dr-lee", attributes={"role": "clinician"})
DR_GARCIA = make_identity(B, "dr-garcia", attributes={"role": "clinician"})
DR_SVENSSON = make_identity(C, "dr-svensson", attributes={"role": "clinician"})
PATIENT = make_identity(
    A, "patient-0017", attributes={"role": "patient", "patient_id": "P0017"}
)
OTHER_PATIENT = make_identity(
    A, "patient-0042", attributes={"role": "patient", "patient_id": "P0042"}
)
NO_ROLE = make_identity(B, "Admin", attributes={})
DIAGNOSIS = b"Atrial fibrillation; start anticoagulation."
DAY = 86_400
T0 = int(datetime(2030, 1, 1, tzinfo=UTC).timestamp())
EXPIRY = "2030-02-01T00:00:00Z"


async def call(
    peer: MockPeer,
    function: str,
    *args: str,
    creator: SerializedIdentity,
    transient: Mapping[str, bytes] | None = None,
    at: int = T0,
    commit: bool = True,
) -> InvocationResult:
    """Invoke at transaction time `at` (seconds); commit successful submits."""
    message = transaction_message(
        channel_id=peer.channel_id,
        chaincode=CC,
        args=[function.encode(), *(arg.encode() for arg in args)],
        creator=creator,
        transient=transient,
        timestamp=Timestamp(seconds=at),
    )
    transaction = MockTransaction(
        peer.ledger, transaction_info(message), chaincodes=peer.chaincodes
    )
    reply = await execute(peer.chaincodes[CC], message, transaction.requester(CC))
    result = invocation_result(transaction.info.tx_id, reply)
    if commit and result.status < 400:
        transaction.commit()
    return result


def ok(result: InvocationResult) -> Any:
    assert result.status == 200, result.message
    return result.json() if result.payload else None


def refused(result: InvocationResult, status: int, text: str) -> None:
    assert result.status == status, (result.status, result.message)
    assert text in result.message, result.message


def record_key(record_id: str) -> str:
    return create_composite_key("ehr.record", [record_id])


def private(peer: MockPeer, collection: str, key: str) -> bytes | None:
    return peer.ledger.get(CC, key, collection)


@pytest.fixture
async def peer() -> MockPeer:
    """A ledger with record R1 of patient P0017, written by Hospital A."""
    peer = MockPeer(HealthRecords())
    ok(
        await call(
            peer,
            "CreateDiagnosis",
            "R1",
            A,
            "P0017",
            creator=DR_LEE,
            transient={"diagnosis": DIAGNOSIS},
        )
    )
    return peer


async def consent_and_share(peer: MockPeer, hospital: str = B) -> None:
    ok(await call(peer, "GrantConsent", hospital, EXPIRY, creator=PATIENT))
    ok(await call(peer, "ShareRecord", "R1", hospital, creator=DR_LEE))


async def verified_against(peer: MockPeer, document: bytes) -> Any:
    """Dr Svensson's VerifyRecord of R1 against `document`, sent as transient data."""
    return ok(
        await call(
            peer,
            "VerifyRecord",
            "R1",
            "",
            creator=DR_SVENSSON,
            transient={"document": document},
        )
    )


# ---------------------------------------------------------------- CreateDiagnosis


async def test_create_keeps_plaintext_private_and_the_hash_public(
    peer: MockPeer,
) -> None:
    public = peer.ledger.get(CC, record_key("R1"))
    assert public is not None
    assert DIAGNOSIS not in public
    record = json.loads(public)
    assert record["sha256"] == hashlib.sha256(DIAGNOSIS).hexdigest()
    assert (record["hospital"], record["patient_msp"], record["patient_id"]) == (
        A,
        A,
        "P0017",
    )
    assert record["created_at"] == "2030-01-01T00:00:00Z"
    assert "CN=dr-lee" in record["clinician"]
    assert record["holders"] == {}
    assert record["erased"] is False
    assert private(peer, treating_collection(A), "R1") == DIAGNOSIS
    assert peer.ledger.keys(CC, shared_collection(A, B)) == []


async def test_create_sets_a_key_level_policy_of_the_treating_hospital(
    peer: MockPeer,
) -> None:
    stored = peer.ledger.metadata[(CC, "", record_key("R1"))]["VALIDATION_PARAMETER"]
    expected = from_string("AND('HospitalAMSP.peer')")
    assert stored == expected.SerializeToString(deterministic=True)


async def test_create_emits_an_event_without_the_plaintext() -> None:
    peer = MockPeer(HealthRecords())
    result = await call(
        peer,
        "CreateDiagnosis",
        "R9",
        A,
        "P0017",
        creator=DR_LEE,
        transient={"diagnosis": DIAGNOSIS},
    )
    assert result.event is not None
    assert result.event.name == "DiagnosisCreated"
    assert json.loads(result.event.payload) == {
        "record_id": "R9",
        "sha256": hashlib.sha256(DIAGNOSIS).hexdigest(),
    }


async def test_create_refusals(peer: MockPeer) -> None:
    transient = {"diagnosis": DIAGNOSIS}
    refused(
        await call(
            peer,
            "CreateDiagnosis",
            "R1",
            A,
            "P0017",
            creator=DR_LEE,
            transient=transient,
        ),
        409,
        "the record R1 already exists",
    )
    refused(
        await call(peer, "CreateDiagnosis", "R2", A, "P0017", creator=DR_LEE),
        400,
        "transient data under the key 'diagnosis'",
    )
    refused(
        await call(
            peer,
            "CreateDiagnosis",
            "R2",
            A,
            "P0017",
            creator=PATIENT,
            transient=transient,
        ),
        403,
        "only clinicians (certificate attribute role=clinician) can create a diagnosis",
    )
    refused(
        await call(
            peer, "CreateDiagnosis", "R2", A, "", creator=DR_LEE, transient=transient
        ),
        400,
        "must not be empty",
    )


# ---------------------------------------------------------------- consent


async def test_grant_read_and_revoke_consent(peer: MockPeer) -> None:
    consent = ok(
        await call(
            peer, "GrantConsent", B, "2030-02-01T01:00:00+01:00", creator=PATIENT
        )
    )
    assert consent == {
        "patient_msp": A,
        "patient_id": "P0017",
        "hospital": B,
        "granted_at": "2030-01-01T00:00:00Z",
        "expires_at": EXPIRY,
        "tx_id": consent["tx_id"],
    }
    assert ok(await call(peer, "ReadConsent", A, "P0017", B, creator=DR_GARCIA)) == (
        consent
    )
    ok(await call(peer, "RevokeConsent", B, creator=PATIENT))
    refused(
        await call(peer, "ReadConsent", A, "P0017", B, creator=DR_GARCIA),
        404,
        "patient P0017 of HospitalAMSP has given HospitalBMSP no consent",
    )
    refused(
        await call(peer, "RevokeConsent", B, creator=PATIENT),
        404,
        "patient P0017 has no consent for HospitalBMSP to revoke",
    )


async def test_consent_refusals(peer: MockPeer) -> None:
    refused(
        await call(peer, "GrantConsent", B, EXPIRY, creator=DR_LEE),
        403,
        "only patients (certificate attributes role=patient and patient_id) can "
        "grant consent; the caller's role is clinician",
    )
    refused(
        await call(peer, "RevokeConsent", B, creator=NO_ROLE),
        403,
        "can revoke consent; the caller's role is not set",
    )
    refused(
        await call(peer, "GrantConsent", B, "next week", creator=PATIENT),
        400,
        "is not an ISO 8601 instant with a timezone",
    )
    refused(
        await call(peer, "GrantConsent", B, "2030-02-01T00:00:00", creator=PATIENT),
        400,
        "is not an ISO 8601 instant with a timezone",
    )
    refused(
        await call(peer, "GrantConsent", B, "2029-12-31T00:00:00Z", creator=PATIENT),
        400,
        "expires_at 2029-12-31T00:00:00Z is not after the transaction time "
        "2030-01-01T00:00:00Z",
    )


# ---------------------------------------------------------------- ShareRecord


async def test_share_copies_the_plaintext_into_the_pair_collection(
    peer: MockPeer,
) -> None:
    await consent_and_share(peer)
    assert private(peer, shared_collection(A, B), "R1") == DIAGNOSIS
    assert shared_collection(B, A) == "HospitalAMSP-HospitalBMSP"
    record = ok(await call(peer, "ReadRecord", "R1", creator=DR_SVENSSON))
    assert record["holders"] == {B: "HospitalAMSP-HospitalBMSP"}


async def test_share_refusals(peer: MockPeer) -> None:
    refused(
        await call(peer, "ShareRecord", "R1", B, creator=DR_LEE),
        403,
        "access to record R1 refused: patient P0017 has not given HospitalBMSP consent",
    )
    ok(await call(peer, "GrantConsent", B, EXPIRY, creator=PATIENT))
    refused(
        await call(peer, "ShareRecord", "R1", C, creator=DR_GARCIA),
        403,
        "only the treating hospital HospitalAMSP can share record R1; "
        "HospitalBMSP cannot",
    )
    refused(
        await call(peer, "ShareRecord", "R1", A, creator=DR_LEE),
        400,
        "HospitalAMSP is the treating hospital",
    )
    refused(
        await call(peer, "ShareRecord", "R1", B, creator=PATIENT),
        403,
        "only clinicians",
    )
    refused(
        await call(peer, "ShareRecord", "R404", B, creator=DR_LEE),
        404,
        "the record R404 does not exist",
    )
    refused(
        await call(peer, "ShareRecord", "R1", B, creator=DR_LEE, at=T0 + 31 * DAY),
        403,
        "the consent of patient P0017 for HospitalBMSP expired at 2030-02-01T00:00:00Z",
    )
    assert peer.ledger.keys(CC, shared_collection(A, B)) == []


# ---------------------------------------------------------------- ReadDiagnosis


async def test_treating_hospital_reads_without_consent(peer: MockPeer) -> None:
    answer = ok(await call(peer, "ReadDiagnosis", "R1", "follow-up", creator=DR_LEE))
    assert answer == {
        "record_id": "R1",
        "sha256": hashlib.sha256(DIAGNOSIS).hexdigest(),
        "diagnosis": DIAGNOSIS.decode(),
    }


async def test_consented_hospital_reads_and_the_read_is_logged(
    peer: MockPeer,
) -> None:
    await consent_and_share(peer)
    result = await call(
        peer,
        "ReadDiagnosis",
        "R1",
        "emergency admission",
        creator=DR_GARCIA,
        at=T0 + DAY,
    )
    assert ok(result)["diagnosis"] == DIAGNOSIS.decode()
    trail = ok(await call(peer, "AuditTrail", creator=PATIENT))
    assert isinstance(trail, list)
    assert [entry["action"] for entry in trail] == ["share", "read"]
    read = trail[1]
    assert read["record_id"] == "R1"
    assert read["actor_msp"] == B
    assert "CN=dr-garcia" in read["actor"]
    assert read["at"] == "2030-01-02T00:00:00Z"
    assert read["purpose"] == "emergency admission"
    assert read["tx_id"] == result.tx_id


async def test_reads_refused_with_clear_messages(peer: MockPeer) -> None:
    ok(await call(peer, "GrantConsent", C, EXPIRY, creator=PATIENT))
    refused(
        await call(peer, "ReadDiagnosis", "R1", "curiosity", creator=DR_SVENSSON),
        403,
        "access to record R1 refused: HospitalCMSP does not hold it (the treating "
        "hospital HospitalAMSP has not shared it with HospitalCMSP)",
    )
    refused(
        await call(peer, "ReadDiagnosis", "R1", "audit", creator=NO_ROLE),
        403,
        "only clinicians and the patient can read diagnoses",
    )
    refused(
        await call(peer, "ReadDiagnosis", "R1", "curiosity", creator=OTHER_PATIENT),
        403,
        "only clinicians and the patient can read diagnoses",
    )
    refused(
        await call(peer, "ReadDiagnosis", "R1", "  ", creator=DR_LEE),
        400,
        "a purpose of access is required",
    )
    refused(
        await call(peer, "ReadDiagnosis", "R2", "care", creator=DR_LEE),
        404,
        "the record R2 does not exist",
    )
    assert ok(await call(peer, "AuditTrail", creator=PATIENT)) == []


async def test_consent_expiry_and_revocation_stop_reads(peer: MockPeer) -> None:
    await consent_and_share(peer)
    ok(
        await call(
            peer, "ReadDiagnosis", "R1", "care", creator=DR_GARCIA, at=T0 + 30 * DAY
        )
    )
    refused(
        await call(
            peer, "ReadDiagnosis", "R1", "care", creator=DR_GARCIA, at=T0 + 31 * DAY
        ),
        403,
        "the consent of patient P0017 for HospitalBMSP expired at 2030-02-01T00:00:00Z",
    )
    ok(await call(peer, "RevokeConsent", B, creator=PATIENT))
    refused(
        await call(peer, "ReadDiagnosis", "R1", "care", creator=DR_GARCIA),
        403,
        "patient P0017 has not given HospitalBMSP consent",
    )
    trail = ok(await call(peer, "AuditTrail", creator=PATIENT))
    assert [entry["action"] for entry in trail] == ["share", "read"]


async def test_patient_reads_own_diagnosis(peer: MockPeer) -> None:
    answer = ok(await call(peer, "ReadDiagnosis", "R1", "my copy", creator=PATIENT))
    assert answer["diagnosis"] == DIAGNOSIS.decode()
    trail = ok(await call(peer, "AuditTrail", creator=PATIENT))
    assert [entry["purpose"] for entry in trail] == ["my copy"]


async def test_sealed_read_only_the_key_holder_can_open(peer: MockPeer) -> None:
    key = bytes(range(32))
    result = await call(
        peer,
        "ReadDiagnosis",
        "R1",
        "care",
        creator=DR_LEE,
        transient={"response_key": key},
    )
    answer = ok(result)
    assert isinstance(answer, dict)
    assert "diagnosis" not in answer
    assert DIAGNOSIS not in result.payload
    assert open_sealed(key, result.tx_id, answer["sealed"]) == DIAGNOSIS
    with pytest.raises(SealError):
        open_sealed(bytes(32), result.tx_id, answer["sealed"])
    with pytest.raises(SealError):
        open_sealed(key, "another-tx", answer["sealed"])
    refused(
        await call(
            peer,
            "ReadDiagnosis",
            "R1",
            "care",
            creator=DR_LEE,
            transient={"response_key": b"short"},
        ),
        400,
        "response_key must be 32 bytes, not 5",
    )


# ---------------------------------------------------------------- VerifyRecord


async def test_verify_by_hash_or_by_document(peer: MockPeer) -> None:
    digest = hashlib.sha256(DIAGNOSIS).hexdigest()
    by_hash = ok(
        await call(peer, "VerifyRecord", "R1", digest.upper(), creator=DR_SVENSSON)
    )
    assert by_hash == {
        "record_id": "R1",
        "matches": True,
        "sha256": digest,
        "erased": False,
    }
    wrong = await verified_against(peer, b"something else")
    assert wrong["matches"] is False
    right = await verified_against(peer, DIAGNOSIS)
    assert right["matches"] is True
    refused(
        await call(peer, "VerifyRecord", "R1", "", creator=DR_SVENSSON),
        400,
        "give the document's SHA-256 as document_hash",
    )


# ---------------------------------------------------------------- AuditTrail


async def test_audit_trail_is_the_callers_own(peer: MockPeer) -> None:
    await consent_and_share(peer)
    assert ok(await call(peer, "AuditTrail", creator=OTHER_PATIENT)) == []
    refused(
        await call(peer, "AuditTrail", creator=DR_LEE),
        403,
        "only patients (certificate attributes role=patient and patient_id) can "
        "read an audit trail",
    )


# ---------------------------------------------------------------- EraseRecord


async def test_erase_purges_everywhere_and_keeps_hash_and_trail(
    peer: MockPeer,
) -> None:
    await consent_and_share(peer)
    ok(await call(peer, "ReadDiagnosis", "R1", "care", creator=DR_GARCIA, at=T0 + 60))
    result = await call(peer, "EraseRecord", "R1", creator=PATIENT, at=T0 + DAY)
    erased = ok(result)
    assert isinstance(erased, dict)
    assert erased["erased"] is True
    assert erased["erased_at"] == "2030-01-02T00:00:00Z"
    assert erased["purged_from"] == [treating_collection(A), shared_collection(A, B)]
    assert result.event is not None
    assert result.event.name == "RecordErased"
    assert private(peer, treating_collection(A), "R1") is None
    assert private(peer, shared_collection(A, B), "R1") is None
    verified = await verified_against(peer, DIAGNOSIS)
    assert verified["matches"] is True
    assert verified["erased"] is True
    trail = ok(await call(peer, "AuditTrail", creator=PATIENT))
    assert [entry["action"] for entry in trail] == ["share", "read", "erase"]
    for reader in (DR_LEE, DR_GARCIA, PATIENT):
        refused(
            await call(peer, "ReadDiagnosis", "R1", "care", creator=reader),
            410,
            "record R1 was erased at 2030-01-02T00:00:00Z on the patient's request; "
            "only its hash remains",
        )
    refused(await call(peer, "ShareRecord", "R1", C, creator=DR_LEE), 410, "erased")
    refused(
        await call(peer, "EraseRecord", "R1", creator=PATIENT),
        410,
        "record R1 was already erased at 2030-01-02T00:00:00Z",
    )


async def test_only_the_patient_can_erase(peer: MockPeer) -> None:
    for caller in (DR_LEE, OTHER_PATIENT, NO_ROLE):
        refused(
            await call(peer, "EraseRecord", "R1", creator=caller),
            403,
            "only patient P0017 of HospitalAMSP can ask to erase record R1",
        )
    assert private(peer, treating_collection(A), "R1") == DIAGNOSIS


def test_module_exports_its_contracts() -> None:
    assert [type(contract) for contract in contracts] == [HealthRecords]
