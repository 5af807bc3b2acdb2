"""The demo's story on the ehr chaincode, told through each hospital's own gateway.

A's clinician records a diagnosis; the patient grants B consent; A shares the record
into the A–B collection; B's clinician reads it (audited); C's clinician is refused;
the patient reads the audit trail and asks for erasure; the record's hash still
verifies, at C. Every client dials its hospital's gateway at the gateway's IP with the
identities `network generate` wrote, trusting that hospital's TLS CA. `tell_story`
returns one `Step` per transaction or query: what happened, with the tx id and the
block number of submitted ones, so the test can assert on the outcomes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.client import (
    Contract,
    Gateway,
    GatewayError,
    identity_from_msp,
    signer_from_msp,
)
from tests.e2e.multihost.deployment import Deployment

__all__ = ["DIAGNOSIS", "RECORD", "A", "B", "C", "Step", "tell_story"]

A, B, C = "HospitalAMSP", "HospitalBMSP", "HospitalCMSP"
CHANNEL = "medical-records"
CHAINCODE = "ehr"
RECORD = "R-multihost-1"
PATIENT = ("patient-0017", "P0017")
DIAGNOSIS = b"Type 2 diabetes; metformin 500 mg."
VALID = 0


@dataclass(frozen=True)
class Step:
    """One step: who did what, its result (or refusal) and, if submitted, where it is."""

    actor: str
    action: str
    result: Any
    tx_id: str = ""
    block: int | None = None
    refused: str = ""


@contextlib.asynccontextmanager
async def _contract(
    deployment: Deployment, mspid: str, user: str
) -> AsyncIterator[Contract]:
    msp = deployment.msp_dir(mspid, user)
    async with Gateway.connect(
        deployment.gateway_address(mspid),
        identity_from_msp(msp, mspid),
        signer_from_msp(msp, mspid),
        tls=deployment.tls_ca(mspid),
    ) as gateway:
        yield gateway.network(CHANNEL).contract(CHAINCODE)


async def _submit(
    deployment: Deployment,
    mspid: str,
    user: str,
    function: str,
    *args: str,
    transient: dict[str, bytes] | None = None,
) -> Step:
    async with _contract(deployment, mspid, user) as contract:
        submitted = await contract.submit_async(
            function, *args, transient=transient, endorsing_orgs=[mspid]
        )
        status = await submitted.status()
    assert status.code == VALID, f"{function} by {user}: {status.code_name}"
    return Step(
        actor=f"{user}@{mspid}",
        action=function,
        result=json.loads(submitted.result or b"null"),
        tx_id=submitted.transaction_id,
        block=status.block_number,
    )


async def _refused(
    deployment: Deployment, mspid: str, user: str, function: str, *args: str
) -> Step:
    async with _contract(deployment, mspid, user) as contract:
        try:
            result = await contract.submit(function, *args, endorsing_orgs=[mspid])
        except GatewayError as error:
            return Step(f"{user}@{mspid}", function, None, refused=str(error))
    return Step(f"{user}@{mspid}", function, json.loads(result or b"null"))


async def _evaluate(
    deployment: Deployment,
    mspid: str,
    user: str,
    function: str,
    *args: str,
    transient: dict[str, bytes] | None = None,
) -> Step:
    async with _contract(deployment, mspid, user) as contract:
        result = await contract.evaluate(function, *args, transient=transient)
    return Step(f"{user}@{mspid}", function, json.loads(result or b"null"))


async def tell_story(
    deployment: Deployment, out: Callable[[str], None] = print
) -> list[Step]:
    """Run the story (see the module docstring); prints and returns every step."""
    patient, patient_id = PATIENT
    expiry = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    digest = hashlib.sha256(DIAGNOSIS).hexdigest()
    steps: list[Step] = []

    async def record(step: Step) -> None:
        steps.append(step)
        where = f" tx {step.tx_id[:16]}… block {step.block}" if step.tx_id else ""
        outcome = f"refused: {step.refused}" if step.refused else "ok"
        out(f"{step.actor} {step.action}: {outcome}{where}")

    await record(
        await _submit(
            deployment,
            A,
            "dr-lee",
            "CreateDiagnosis",
            RECORD,
            A,
            patient_id,
            transient={"diagnosis": DIAGNOSIS},
        )
    )
    await record(await _submit(deployment, A, patient, "GrantConsent", B, expiry))
    await record(await _submit(deployment, A, "dr-lee", "ShareRecord", RECORD, B))
    await record(
        await _submit(deployment, B, "dr-garcia", "ReadDiagnosis", RECORD, "emergency")
    )
    await record(
        await _refused(
            deployment, C, "dr-svensson", "ReadDiagnosis", RECORD, "curiosity"
        )
    )
    await record(await _evaluate(deployment, A, patient, "AuditTrail"))
    await record(await _submit(deployment, A, patient, "EraseRecord", RECORD))
    await record(
        await _evaluate(deployment, C, "dr-svensson", "VerifyRecord", RECORD, digest)
    )
    return steps
