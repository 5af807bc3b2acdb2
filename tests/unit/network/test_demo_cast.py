"""Unit tests for network.demo_cast: who plays which part in `medledger demo`.

Method: `choose_cast` on hand-made hospitals; `hospitals_from_generated` on the output
of `network generate` for three hospitals on their own hosts (TLS on), and
`hospitals_from_workdir` on a work directory whose crypto folder is that output (same
layout) and a state.json with the gateways' READY addresses.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from network.demo_cast import (
    Hospital,
    Member,
    choose_cast,
    hospitals_from_generated,
    hospitals_from_workdir,
)
from network.generate import generate
from network.launcher import LaunchError, NetworkState, NodeKind, NodeRecord

SPEC = """
consortium: cast
organizations:
  - name: Hospital C
    mspid: HospitalCMSP
    domain: hospital-c.example.com
    peers: [{name: peer0, host: 10.0.0.13, port: 7051}]
    gateways: [{name: gateway0, host: 10.0.0.13, port: 7060}]
    users:
      - {name: Admin, admin: true}
      - {name: dr-c, attributes: {role: clinician}}
  - name: Hospital A
    mspid: HospitalAMSP
    domain: hospital-a.example.com
    peers: [{name: peer0, host: 10.0.0.11, port: 7051}]
    gateways: [{name: gateway0, host: 10.0.0.11, port: 7060}]
    users:
      - {name: Admin, admin: true}
      - {name: dr-a, attributes: {role: clinician}}
      - {name: patient-9, attributes: {role: patient, patient_id: P9}}
  - name: Hospital B
    mspid: HospitalBMSP
    domain: hospital-b.example.com
    peers: [{name: peer0, host: 10.0.0.12, port: 7051}]
    gateways: [{name: gateway0, host: 10.0.0.12, port: 7060}]
    users:
      - {name: Admin, admin: true}
      - {name: dr-b, attributes: {role: clinician}}
  - name: Health Commission
    mspid: HealthCommissionMSP
    domain: commission.example.com
    orderers: [{name: orderer0, host: 10.0.0.10, port: 7050}]
    users: [{name: Admin, admin: true}]
channels:
  - name: records
    members: [HospitalAMSP, HospitalBMSP, HospitalCMSP]
    orderer: {organizations: [HealthCommissionMSP]}
chaincodes:
  - name: ehr
    path: CHAINCODE
"""
EHR = Path(__file__).parents[3] / "chaincode" / "contracts" / "ehr"


def hospital(mspid: str, **users: dict[str, str]) -> Hospital:
    return Hospital(
        mspid=mspid,
        gateway="127.0.0.1:7060",
        tls_ca=None,
        users=tuple(
            Member(name=name, mspid=mspid, msp_dir=Path(name), attributes=attributes)
            for name, attributes in users.items()
        ),
    )


CLINICIAN = {"role": "clinician"}
PATIENT = {"role": "patient", "patient_id": "P1"}


def test_a_has_clinician_and_patient_b_and_c_follow_by_msp_id() -> None:
    hospitals = [
        hospital("Zeta", doc=CLINICIAN),
        hospital("Beta", doc=CLINICIAN),
        hospital("Gamma", doc=CLINICIAN, pat=PATIENT),
        hospital("Alpha", pat=PATIENT),
    ]

    cast = choose_cast(hospitals, channel="records")

    assert (cast.a.mspid, cast.b.mspid, cast.c.mspid) == ("Gamma", "Beta", "Zeta")
    assert (cast.clinician_a.name, cast.patient.name, cast.patient_id) == (
        "doc",
        "pat",
        "P1",
    )
    assert (cast.channel, cast.chaincode) == ("records", "ehr")


def test_a_patient_needs_a_patient_id() -> None:
    hospitals = [
        hospital("A", doc=CLINICIAN, pat={"role": "patient"}),
        hospital("B", doc=CLINICIAN),
        hospital("C", doc=CLINICIAN),
    ]

    with pytest.raises(LaunchError, match=r"found: A \(clinician, patient\)"):
        choose_cast(hospitals, channel="records")


def test_two_hospitals_are_not_enough() -> None:
    with pytest.raises(LaunchError, match="three hospitals"):
        choose_cast(
            [hospital("A", doc=CLINICIAN, pat=PATIENT), hospital("B", doc=CLINICIAN)],
            channel="records",
        )


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the spec, the output folder of `network generate` for it)."""
    path = tmp_path_factory.mktemp("cast") / "consortium.yaml"
    path.write_text(SPEC.replace("CHAINCODE", str(EHR)))
    generate(path, path.parent / "generated", progress=lambda _line: None)
    return path, path.parent / "generated"


def test_hospitals_from_generated_use_the_spec_hosts_and_certificates(
    generated: tuple[Path, Path],
) -> None:
    _, out = generated

    channel, hospitals = hospitals_from_generated(out)
    cast = choose_cast(hospitals, channel=channel)

    assert channel == "records"
    assert cast.a.gateway == "10.0.0.11:7060"
    assert cast.c.gateway == "10.0.0.13:7060"
    assert cast.a.tls_ca is not None
    assert cast.a.tls_ca.is_file()
    assert cast.patient.attributes["patient_id"] == "P9"
    assert (cast.patient.msp_dir / "keystore").is_dir()
    assert cast.clinician_b.name == "dr-b"


def test_hospitals_from_workdir_use_ready_addresses(
    generated: tuple[Path, Path], tmp_path: Path
) -> None:
    spec_path, out = generated
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    (workdir / "crypto").symlink_to(out)  # the same layout: organizations/<domain>
    state = NetworkState(workdir=workdir, consortium="cast", spec=str(spec_path))
    state.nodes["gateway0.hospital-b.example.com"] = NodeRecord(
        name="gateway0.hospital-b.example.com",
        kind=NodeKind.GATEWAY,
        pid=1,
        start_ticks=None,
        argv=(),
        log="gateway.log",
        config=None,
        addresses={"grpc": "127.0.0.1:49152"},
        started_at=0.0,
    )
    state.save()

    channel, hospitals = hospitals_from_workdir(workdir)
    cast = choose_cast(hospitals, channel=channel)

    assert cast.b.gateway == "127.0.0.1:49152"
    assert cast.a.gateway == "10.0.0.11:7060"
    assert cast.a.tls_ca == workdir.absolute() / (
        "crypto/organizations/hospital-a.example.com/tlsca/"
        "tlsca.hospital-a.example.com-cert.pem"
    )
    assert cast.patient.msp_dir.is_dir()


def test_a_workdir_without_the_chaincode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match="no network in"):
        hospitals_from_workdir(tmp_path)
