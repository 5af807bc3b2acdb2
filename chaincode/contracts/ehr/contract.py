"""The hospital records contract: diagnoses in private data, consent, audited reads.

Who is who comes from the caller's certificate: clinicians carry the attribute
`role=clinician`, patients `role=patient` and `patient_id=…`; a patient is identified by
(MSP id of their home hospital, patient_id).

- `CreateDiagnosis` (clinician): the plaintext arrives as transient data `diagnosis` and
  goes to the treating hospital's implicit collection `_implicit_org_<MSP>`; public
  state holds the metadata and SHA-256; the record key gets a key-level endorsement
  policy of the treating hospital's peers, so only that hospital can change it.
- `GrantConsent` / `RevokeConsent` (patient): consent for another hospital, with an
  expiry instant (ISO 8601 with a timezone).
- `ShareRecord` (clinician of the treating hospital, with valid consent): copies the
  plaintext into the collection the two hospitals share (`shared_collection`). A
  named pair collection rather than the target's implicit collection: writing
  `_implicit_org_<target>` needs the target's endorsement, and the target's peer cannot
  read the plaintext it would have to copy.
- `ReadDiagnosis` (submitted, so audited): the plaintext to a clinician of a hospital
  holding it (the treating one, or one it was shared with under valid consent) or to the
  patient; writes an access-log entry. Pass a 32-byte `response_key` as transient data to
  get it sealed (see `sealing`): the response of a submitted transaction is in the block.
- `VerifyRecord`, `AuditTrail` (the patient's own), `EraseRecord` (the patient: purges
  the plaintext from every collection holding it; metadata, hash and log stay).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from chaincode.contract import Context, Contract, query, transaction
from chaincode.contracts.ehr.model import (
    ACCESS,
    CONSENT,
    RECORD,
    AccessEntry,
    Consent,
    Record,
    iso,
    parse_instant,
    sha256_hex,
    shared_collection,
    treating_collection,
)
from chaincode.contracts.ehr.sealing import seal
from chaincode.errors import ChaincodeError
from chaincode.shim import KeyEndorsementPolicy
from common.policies import Role

BAD_REQUEST = 400
FORBIDDEN = 403
NOT_FOUND = 404
CONFLICT = 409
GONE = 410

CLINICIAN = "clinician"
PATIENT = "patient"


@dataclass(frozen=True, slots=True)
class Caller:
    """The invoking identity as the contract sees it."""

    mspid: str
    identity: str
    role: str | None
    patient_id: str | None

    def is_patient(self, patient_msp: str, patient_id: str) -> bool:
        return (
            self.role == PATIENT
            and self.mspid == patient_msp
            and self.patient_id == patient_id
        )


def caller_of(ctx: Context) -> Caller:
    identity = ctx.client_identity
    return Caller(
        mspid=identity.get_mspid(),
        identity=identity.get_id(),
        role=identity.get_attribute_value("role"),
        patient_id=identity.get_attribute_value("patient_id"),
    )


class HealthRecords(Contract):
    """Diagnoses, consents, sharing, audited reads and erasure (see the module)."""

    def __init__(self) -> None:
        super().__init__("HealthRecords", title="Hospital records", version="1.0.0")

    @transaction
    async def CreateDiagnosis(
        self, ctx: Context, record_id: str, patient_msp: str, patient_id: str
    ) -> Record:
        """Record a diagnosis (transient `diagnosis`) for a patient; the metadata."""
        caller = _clinician(ctx, "create a diagnosis")
        plaintext = ctx.stub.get_transient().get("diagnosis", b"")
        if not plaintext:
            raise ChaincodeError(
                "the diagnosis must be passed as transient data under the key "
                "'diagnosis' (never as an argument, which would be public)",
                status=BAD_REQUEST,
            )
        if not (record_id and patient_msp and patient_id):
            raise ChaincodeError(
                "record_id, patient_msp and patient_id must not be empty",
                status=BAD_REQUEST,
            )
        key = _record_key(ctx, record_id)
        if await ctx.stub.get_state(key):
            raise ChaincodeError(
                f"the record {record_id} already exists", status=CONFLICT
            )
        await ctx.stub.put_private_data(
            treating_collection(caller.mspid), record_id, plaintext
        )
        record = Record(
            record_id=record_id,
            patient_msp=patient_msp,
            patient_id=patient_id,
            hospital=caller.mspid,
            clinician=caller.identity,
            created_at=iso(ctx.stub.get_datetime()),
            sha256=sha256_hex(plaintext),
            tx_id=ctx.stub.get_tx_id(),
        )
        await ctx.stub.put_state(key, record.to_bytes())
        policy = KeyEndorsementPolicy()
        policy.add_orgs(Role.PEER, caller.mspid)
        await ctx.stub.set_state_validation_parameter(key, policy.get_policy())
        _event(ctx, "DiagnosisCreated", record)
        return record

    @transaction
    async def GrantConsent(
        self, ctx: Context, hospital: str, expires_at: str
    ) -> Consent:
        """The calling patient lets `hospital` (an MSP id) receive and read their records."""
        caller = _patient(ctx, "grant consent")
        now = ctx.stub.get_datetime()
        try:
            expiry = parse_instant(expires_at)
        except ValueError:
            raise ChaincodeError(
                f"expires_at {expires_at!r} is not an ISO 8601 instant with a timezone, "
                "such as 2030-01-31T00:00:00Z",
                status=BAD_REQUEST,
            ) from None
        if expiry <= now:
            raise ChaincodeError(
                f"expires_at {iso(expiry)} is not after the transaction time {iso(now)}",
                status=BAD_REQUEST,
            )
        if not hospital:
            raise ChaincodeError("hospital must be an MSP id", status=BAD_REQUEST)
        assert caller.patient_id is not None
        consent = Consent(
            patient_msp=caller.mspid,
            patient_id=caller.patient_id,
            hospital=hospital,
            granted_at=iso(now),
            expires_at=iso(expiry),
            tx_id=ctx.stub.get_tx_id(),
        )
        key = _consent_key(ctx, caller.mspid, caller.patient_id, hospital)
        await ctx.stub.put_state(key, consent.to_bytes())
        return consent

    @transaction
    async def RevokeConsent(self, ctx: Context, hospital: str) -> None:
        """The calling patient withdraws the consent given to `hospital`."""
        caller = _patient(ctx, "revoke consent")
        assert caller.patient_id is not None
        key = _consent_key(ctx, caller.mspid, caller.patient_id, hospital)
        if not await ctx.stub.get_state(key):
            raise ChaincodeError(
                f"patient {caller.patient_id} has no consent for {hospital} to revoke",
                status=NOT_FOUND,
            )
        await ctx.stub.del_state(key)

    @query
    async def ReadConsent(
        self, ctx: Context, patient_msp: str, patient_id: str, hospital: str
    ) -> Consent:
        """The consent a patient gave a hospital (consents are public)."""
        consent = await _consent(ctx, patient_msp, patient_id, hospital)
        if consent is None:
            raise ChaincodeError(
                f"patient {patient_id} of {patient_msp} has given {hospital} no consent",
                status=NOT_FOUND,
            )
        return consent

    @transaction
    async def ShareRecord(self, ctx: Context, record_id: str, hospital: str) -> Record:
        """Copy the plaintext into the collection shared with `hospital` (consent needed)."""
        caller = _clinician(ctx, "share a record")
        record = await _live_record(ctx, record_id)
        if caller.mspid != record.hospital:
            raise ChaincodeError(
                f"only the treating hospital {record.hospital} can share record "
                f"{record_id}; {caller.mspid} cannot",
                status=FORBIDDEN,
            )
        if hospital == record.hospital:
            raise ChaincodeError(
                f"{hospital} is the treating hospital; it already holds record "
                f"{record_id}",
                status=BAD_REQUEST,
            )
        await _require_consent(ctx, record, hospital)
        plaintext = await ctx.stub.get_private_data(
            treating_collection(record.hospital), record_id
        )
        if not plaintext:
            raise ChaincodeError(
                f"the plaintext of record {record_id} is not on this peer; endorse "
                f"ShareRecord on a peer of {record.hospital}",
            )
        collection = shared_collection(record.hospital, hospital)
        await ctx.stub.put_private_data(collection, record_id, plaintext)
        shared = record.shared_with(hospital, collection)
        await ctx.stub.put_state(_record_key(ctx, record_id), shared.to_bytes())
        await _log(ctx, shared, caller, "share", f"shared with {hospital}")
        return shared

    @transaction
    async def ReadDiagnosis(
        self, ctx: Context, record_id: str, purpose: str
    ) -> dict[str, object]:
        """The plaintext, to a hospital holding it with consent; the read is logged."""
        caller = caller_of(ctx)
        if not purpose.strip():
            raise ChaincodeError(
                "a purpose of access is required (it is written to the audit trail)",
                status=BAD_REQUEST,
            )
        record = await _live_record(ctx, record_id)
        collection = await _readable_collection(ctx, record, caller)
        plaintext = await ctx.stub.get_private_data(collection, record_id)
        if not plaintext:
            raise ChaincodeError(
                f"the plaintext of record {record_id} is not on this peer; endorse "
                f"ReadDiagnosis on a peer of {caller.mspid}",
            )
        await _log(ctx, record, caller, "read", purpose)
        answer: dict[str, object] = {"record_id": record_id, "sha256": record.sha256}
        key = ctx.stub.get_transient().get("response_key")
        if key is None:
            answer["diagnosis"] = plaintext.decode(errors="replace")
            return answer
        try:
            answer["sealed"] = seal(key, ctx.stub.get_tx_id(), plaintext)
        except ValueError as error:
            raise ChaincodeError(str(error), status=BAD_REQUEST) from None
        return answer

    @query
    async def ReadRecord(self, ctx: Context, record_id: str) -> Record:
        """A record's public metadata (no plaintext)."""
        return await _record(ctx, record_id)

    @query
    async def VerifyRecord(
        self, ctx: Context, record_id: str, document_hash: str
    ) -> dict[str, object]:
        """Does a document match the chain? Give its SHA-256 (hex), or "" and the
        document itself as transient data `document`."""
        record = await _record(ctx, record_id)
        if document_hash:
            digest = document_hash.strip().lower()
        else:
            document = ctx.stub.get_transient().get("document")
            if document is None:
                raise ChaincodeError(
                    "give the document's SHA-256 as document_hash, or the document as "
                    "transient data 'document'",
                    status=BAD_REQUEST,
                )
            digest = sha256_hex(document)
        return {
            "record_id": record_id,
            "matches": digest == record.sha256,
            "sha256": record.sha256,
            "erased": record.erased,
        }

    @query
    async def AuditTrail(self, ctx: Context) -> list[AccessEntry]:
        """The calling patient's access log, oldest first."""
        caller = _patient(ctx, "read an audit trail")
        assert caller.patient_id is not None
        entries = []
        async with await ctx.stub.get_state_by_partial_composite_key(
            ACCESS, [caller.mspid, caller.patient_id]
        ) as results:
            async for kv in results:
                entries.append(AccessEntry.from_bytes(kv.value))
        return entries

    @transaction
    async def EraseRecord(self, ctx: Context, record_id: str) -> Record:
        """On the patient's request: purge the plaintext everywhere; hash and log stay."""
        caller = caller_of(ctx)
        record = await _record(ctx, record_id)
        if not caller.is_patient(record.patient_msp, record.patient_id):
            raise ChaincodeError(
                f"only patient {record.patient_id} of {record.patient_msp} can ask to "
                f"erase record {record_id}",
                status=FORBIDDEN,
            )
        if record.erased:
            raise ChaincodeError(
                f"record {record_id} was already erased at {record.erased_at}",
                status=GONE,
            )
        collections = [
            treating_collection(record.hospital),
            *sorted(set(record.holders.values())),
        ]
        for collection in collections:
            await ctx.stub.purge_private_data(collection, record_id)
        erased = record.erase(iso(ctx.stub.get_datetime()), collections)
        await ctx.stub.put_state(_record_key(ctx, record_id), erased.to_bytes())
        await _log(ctx, erased, caller, "erase", "erasure requested by the patient")
        _event(ctx, "RecordErased", erased)
        return erased


# ---------------------------------------------------------------- who may do what


def _clinician(ctx: Context, action: str) -> Caller:
    caller = caller_of(ctx)
    if caller.role != CLINICIAN:
        raise ChaincodeError(
            f"only clinicians (certificate attribute role=clinician) can {action}; "
            f"the caller's role is {caller.role or 'not set'}",
            status=FORBIDDEN,
        )
    return caller


def _patient(ctx: Context, action: str) -> Caller:
    caller = caller_of(ctx)
    if caller.role != PATIENT or not caller.patient_id:
        raise ChaincodeError(
            f"only patients (certificate attributes role=patient and patient_id) can "
            f"{action}; the caller's role is {caller.role or 'not set'}",
            status=FORBIDDEN,
        )
    return caller


async def _readable_collection(ctx: Context, record: Record, caller: Caller) -> str:
    """Where `caller` may read the plaintext of `record`, or a refusal saying why not."""
    own = caller.is_patient(record.patient_msp, record.patient_id)
    if caller.role != CLINICIAN and not own:
        raise ChaincodeError(
            f"access to record {record.record_id} refused: only clinicians and the "
            "patient can read diagnoses",
            status=FORBIDDEN,
        )
    if caller.mspid == record.hospital:
        return treating_collection(record.hospital)
    collection = record.holders.get(caller.mspid)
    if collection is None:
        raise ChaincodeError(
            f"access to record {record.record_id} refused: {caller.mspid} does not "
            f"hold it (the treating hospital {record.hospital} has not shared it with "
            f"{caller.mspid})",
            status=FORBIDDEN,
        )
    if not own:
        await _require_consent(ctx, record, caller.mspid)
    return collection


async def _require_consent(ctx: Context, record: Record, hospital: str) -> None:
    consent = await _consent(ctx, record.patient_msp, record.patient_id, hospital)
    if consent is None:
        raise ChaincodeError(
            f"access to record {record.record_id} refused: patient {record.patient_id} "
            f"has not given {hospital} consent",
            status=FORBIDDEN,
        )
    now = ctx.stub.get_datetime()
    if not consent.valid_at(now):
        raise ChaincodeError(
            f"access to record {record.record_id} refused: the consent of patient "
            f"{record.patient_id} for {hospital} expired at {consent.expires_at}",
            status=FORBIDDEN,
        )


# ---------------------------------------------------------------- state


def _record_key(ctx: Context, record_id: str) -> str:
    return ctx.stub.create_composite_key(RECORD, [record_id])


def _consent_key(ctx: Context, patient_msp: str, patient_id: str, hospital: str) -> str:
    return ctx.stub.create_composite_key(CONSENT, [patient_msp, patient_id, hospital])


async def _record(ctx: Context, record_id: str) -> Record:
    data = await ctx.stub.get_state(_record_key(ctx, record_id))
    if not data:
        raise ChaincodeError(f"the record {record_id} does not exist", status=NOT_FOUND)
    return Record.from_bytes(data)


async def _live_record(ctx: Context, record_id: str) -> Record:
    record = await _record(ctx, record_id)
    if record.erased:
        raise ChaincodeError(
            f"record {record_id} was erased at {record.erased_at} on the patient's "
            "request; only its hash remains",
            status=GONE,
        )
    return record


async def _consent(
    ctx: Context, patient_msp: str, patient_id: str, hospital: str
) -> Consent | None:
    data = await ctx.stub.get_state(
        _consent_key(ctx, patient_msp, patient_id, hospital)
    )
    return Consent.from_bytes(data) if data else None


async def _log(
    ctx: Context, record: Record, caller: Caller, action: str, purpose: str
) -> None:
    moment = ctx.stub.get_tx_timestamp()
    entry = AccessEntry(
        action=action,
        record_id=record.record_id,
        actor=caller.identity,
        actor_msp=caller.mspid,
        at=iso(ctx.stub.get_datetime()),
        purpose=purpose,
        tx_id=ctx.stub.get_tx_id(),
    )
    key = ctx.stub.create_composite_key(
        ACCESS,
        [
            record.patient_msp,
            record.patient_id,
            f"{moment.seconds:012d}.{moment.nanos:09d}",
            entry.tx_id,
        ],
    )
    await ctx.stub.put_state(key, entry.to_bytes())


def _event(ctx: Context, name: str, record: Record) -> None:
    payload = {"record_id": record.record_id, "sha256": record.sha256}
    ctx.stub.set_event(name, json.dumps(payload, sort_keys=True).encode())
