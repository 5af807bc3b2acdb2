"""The ehr chaincode on a real two-hospital network, started by the medledger pytest plugin.

Method: `@pytest.mark.medledger` deploys chaincode/contracts/ehr with an any-hospital
endorsement policy and the A–B pair collection; clients connect through each hospital's
gateway as the users of tests/e2e/ehr/consortium.yaml (clinicians and a patient with
certificate attributes). Each transaction names its endorsing hospital.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from gateway.client import GatewayError
from network.testing import MedledgerNetwork

A, B = "HospitalAMSP", "HospitalBMSP"
DIAGNOSIS = b"Type 2 diabetes; metformin 500 mg."

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.medledger(
        chaincode="../../chaincode/contracts/ehr",
        name="ehr",
        spec="ehr/consortium.yaml",
        endorsement_policy="OR('HospitalAMSP.peer', 'HospitalBMSP.peer')",
        collections=[
            {
                "name": "HospitalAMSP-HospitalBMSP",
                "policy": "OR('HospitalAMSP.member', 'HospitalBMSP.member')",
                "required_peer_count": 0,
                "max_peer_count": 1,
                "member_only_read": True,
                "member_only_write": True,
            }
        ],
    ),
]


async def test_create_read_verify_and_refusals_in_the_treating_hospital(
    medledger_network: MedledgerNetwork,
) -> None:
    """Goal: the single-hospital story works on real peers: the diagnosis goes to A's
    implicit collection, A's clinician reads it (audited), B is refused, the hash
    verifies, the patient sees the access log and erasure keeps the hash."""
    net = medledger_network
    async with net.contract(A, "dr-lee") as lee:
        created = json.loads(
            await lee.submit(
                "CreateDiagnosis",
                "R1",
                A,
                "P0017",
                transient={"diagnosis": DIAGNOSIS},
                endorsing_orgs=[A],
            )
        )
        assert created["sha256"] == hashlib.sha256(DIAGNOSIS).hexdigest()
        submitted = await lee.submit_async(
            "ReadDiagnosis", "R1", "follow-up", endorsing_orgs=[A]
        )
        status = await submitted.status()
        assert status.successful, status.code_name
        read = json.loads(submitted.result)
        assert read["diagnosis"] == DIAGNOSIS.decode()
    await net.wait_for_block(status.block_number, [B])
    async with net.contract(B, "dr-garcia") as garcia:
        with pytest.raises(GatewayError, match="HospitalBMSP does not hold it"):
            await garcia.submit("ReadDiagnosis", "R1", "curiosity", endorsing_orgs=[B])
        verified = json.loads(
            await garcia.evaluate(
                "VerifyRecord", "R1", "", transient={"document": DIAGNOSIS}
            )
        )
        assert verified["matches"] is True
    async with net.contract(A, "patient-0017") as patient:
        trail = json.loads(await patient.evaluate("AuditTrail"))
        assert [(entry["action"], entry["purpose"]) for entry in trail] == [
            ("read", "follow-up")
        ]
        erased = json.loads(
            await patient.submit("EraseRecord", "R1", endorsing_orgs=[A])
        )
        assert erased["erased"] is True
    async with net.contract(A, "dr-lee") as lee:
        with pytest.raises(GatewayError, match="only its hash remains"):
            await lee.submit("ReadDiagnosis", "R1", "care", endorsing_orgs=[A])
        still = json.loads(
            await lee.evaluate(
                "VerifyRecord", "R1", hashlib.sha256(DIAGNOSIS).hexdigest()
            )
        )
        assert still["matches"] is True


async def test_share_with_consent_then_the_other_hospital_reads(
    medledger_network: MedledgerNetwork,
) -> None:
    """Goal: consent, sharing into the pair collection and B's audited read. B's peer
    holds the copy only once private data reaches it from A's peer at commit."""
    net = medledger_network
    expiry = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    async with net.contract(A, "dr-lee") as lee:
        await lee.submit(
            "CreateDiagnosis",
            "R2",
            A,
            "P0017",
            transient={"diagnosis": DIAGNOSIS},
            endorsing_orgs=[A],
        )
    async with net.contract(A, "patient-0017") as patient:
        await patient.submit("GrantConsent", B, expiry, endorsing_orgs=[A])
    async with net.contract(A, "dr-lee") as lee:
        submitted = await lee.submit_async("ShareRecord", "R2", B, endorsing_orgs=[A])
        status = await submitted.status()
        assert status.successful, status.code_name
        shared = json.loads(submitted.result)
        assert shared["holders"] == {B: "HospitalAMSP-HospitalBMSP"}
    # B endorses the read on its own peer: wait until that peer has the shared copy.
    await net.wait_for_block(status.block_number, [B])
    async with net.contract(B, "dr-garcia") as garcia:
        read = json.loads(
            await garcia.submit("ReadDiagnosis", "R2", "emergency", endorsing_orgs=[B])
        )
        assert read["diagnosis"] == DIAGNOSIS.decode()
