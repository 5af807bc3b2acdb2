"""Who plays which part in `medledger demo`, found from the network's own material.

The hospitals are the member organisations of the chaincode's channel that run a
gateway, each with its users' MSP folders and certificate attributes (`role=clinician`,
`role=patient` with `patient_id`). `choose_cast` picks hospital A (the first, by MSP id,
with a clinician and a patient) and B and C (the next two with a clinician).

Two sources: a `network up` work directory (`hospitals_from_workdir`: state.json names
the spec, the crypto material is in WORKDIR/crypto, the gateways' addresses are their
READY addresses) and an output folder of `network generate`
(`hospitals_from_generated`: each <gateway>/gateway.yaml gives the organisation, the
address it listens on, as the spec's host and port, and whether TLS is on; users and
TLS CAs come from organizations/<domain>/, attributes from the users' certificates).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from common.crypto.certs import load_certificate
from network.launcher import LaunchError, NetworkState

__all__ = [
    "CLINICIAN",
    "DEMO_CHAINCODE",
    "PATIENT",
    "Cast",
    "Hospital",
    "Member",
    "choose_cast",
    "hospitals_from_generated",
    "hospitals_from_workdir",
]

DEMO_CHAINCODE = "ehr"
CLINICIAN = "clinician"
PATIENT = "patient"


@dataclass(frozen=True, kw_only=True)
class Member:
    """A user of a hospital: where its MSP folder is, and its certificate attributes."""

    name: str
    mspid: str
    msp_dir: Path
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def role(self) -> str | None:
        return self.attributes.get("role")


@dataclass(frozen=True, kw_only=True)
class Hospital:
    """A member organisation with a gateway: where to connect, whom to trust, its users."""

    mspid: str
    gateway: str
    tls_ca: Path | None
    users: tuple[Member, ...]

    def first(self, role: str) -> Member | None:
        """The first user (by name) whose certificate says `role`."""
        found = [user for user in self.users if user.role == role]
        if role == PATIENT:
            found = [user for user in found if user.attributes.get("patient_id")]
        return min(found, key=lambda user: user.name) if found else None


@dataclass(frozen=True, kw_only=True)
class Cast:
    """Who plays which part in the story."""

    channel: str
    chaincode: str
    a: Hospital
    b: Hospital
    c: Hospital
    clinician_a: Member
    patient: Member
    clinician_b: Member
    clinician_c: Member

    @property
    def patient_id(self) -> str:
        return self.patient.attributes["patient_id"]


def choose_cast(
    hospitals: Sequence[Hospital], *, channel: str, chaincode: str = DEMO_CHAINCODE
) -> Cast:
    """A: the first hospital (by MSP id) with a clinician and a patient; B, C: the
    next two with a clinician.

    Raises:
        LaunchError: the consortium has no such three hospitals.
    """
    ordered = sorted(hospitals, key=lambda hospital: hospital.mspid)
    a = next(
        (h for h in ordered if h.first(CLINICIAN) and h.first(PATIENT)),
        None,
    )
    others = [h for h in ordered if h is not a and h.first(CLINICIAN)]
    if a is None or len(others) < 2:
        raise LaunchError(
            "the demo needs three hospitals with a gateway and a user with the "
            "certificate attribute role=clinician each, one of them also with a "
            "patient (role=patient, patient_id=…); found: "
            + (", ".join(_describe(h) for h in ordered) or "no hospital with a gateway")
        )
    b, c = others[:2]
    return Cast(
        channel=channel,
        chaincode=chaincode,
        a=a,
        b=b,
        c=c,
        clinician_a=_some(a.first(CLINICIAN)),
        patient=_some(a.first(PATIENT)),
        clinician_b=_some(b.first(CLINICIAN)),
        clinician_c=_some(c.first(CLINICIAN)),
    )


def hospitals_from_workdir(
    workdir: Path, *, chaincode: str = DEMO_CHAINCODE
) -> tuple[str, list[Hospital]]:
    """The channel `chaincode` runs on and its hospitals, from a `network up` workdir.

    Raises:
        LaunchError: no network there, or its spec does not deploy `chaincode`.
        ConfigError: the spec it was started from no longer reads.
    """
    from network.cryptogen import crypto_layout
    from network.spec import load_spec
    from network.spec_chaincodes import read_chaincodes

    state = NetworkState.load(workdir.absolute())
    if not state.spec:
        raise LaunchError(f"no network in {workdir} (no state.json naming its spec)")
    spec = load_spec(Path(state.spec))
    found = [cc for cc in read_chaincodes(spec) if cc.name == chaincode]
    if not found:
        raise LaunchError(
            f"the network in {workdir} ({state.spec}) does not deploy the chaincode "
            f"{chaincode!r}, which the demo uses; start the hospital example instead"
        )
    channel = found[0].channels[0]
    members = next(c.members for c in spec.channels if c.name == channel)
    layout = crypto_layout(spec, state.workdir / "crypto")
    hospitals = []
    for mspid in members:
        organization = spec.organization(mspid)
        if not organization.gateways:
            continue
        gateway = organization.gateways[0]
        record = state.nodes.get(gateway.full_name)
        address = (
            record.addresses.get("grpc", gateway.address) if record else gateway.address
        )
        material = layout.organization(mspid)
        hospitals.append(
            Hospital(
                mspid=mspid,
                gateway=address,
                tls_ca=material.tlsca_cert if state.tls else None,
                users=tuple(
                    Member(
                        name=user.name,
                        mspid=mspid,
                        msp_dir=material.user(user.name).msp_dir,
                        attributes=dict(user.attributes),
                    )
                    for user in organization.users
                ),
            )
        )
    return channel, hospitals


def hospitals_from_generated(generated: Path) -> tuple[str, list[Hospital]]:
    """The channel all gateways serve and their hospitals, from `network generate`'s
    output folder (addresses as the spec's hosts and ports).

    Raises:
        LaunchError: no gateway.yaml in the folder, or no channel they share.
    """
    documents = [
        yaml.safe_load(path.read_text())
        for path in sorted(generated.glob("*/gateway.yaml"))
    ]
    if not documents:
        raise LaunchError(
            f"{generated} holds no <gateway>/gateway.yaml; give the output folder of "
            "`medledger network generate`"
        )
    hospitals = {}
    channel_lists = []
    for document in documents:
        mspid = str(document["msp"]["id"])
        if mspid in hospitals:
            continue
        domain = str(document["name"]).split(".", 1)[1]
        organization = generated / "organizations" / domain
        tls = bool(document.get("tls", {}).get("enabled", False))
        hospitals[mspid] = Hospital(
            mspid=mspid,
            gateway=str(document["listen"]),
            tls_ca=organization / "tlsca" / f"tlsca.{domain}-cert.pem" if tls else None,
            users=tuple(_generated_users(organization / "users", domain, mspid)),
        )
        channel_lists.append([str(name) for name in document.get("channels") or []])
    shared = [c for c in channel_lists[0] if all(c in cs for cs in channel_lists)]
    if not shared:
        raise LaunchError(f"the gateways in {generated} share no channel")
    return shared[0], list(hospitals.values())


def _generated_users(users: Path, domain: str, mspid: str) -> list[Member]:
    members = []
    for folder in sorted(users.glob(f"*@{domain}")):
        certificates = sorted((folder / "msp" / "signcerts").glob("*.pem"))
        if not certificates:
            continue
        certificate = load_certificate(certificates[0].read_bytes())
        members.append(
            Member(
                name=folder.name.split("@", 1)[0],
                mspid=mspid,
                msp_dir=folder / "msp",
                attributes=dict(certificate.attributes),
            )
        )
    return members


def _describe(hospital: Hospital) -> str:
    roles = sorted({user.role for user in hospital.users if user.role})
    return f"{hospital.mspid} ({', '.join(roles) or 'no roles'})"


def _some(member: Member | None) -> Member:
    assert member is not None, "choose_cast checked every part"
    return member
