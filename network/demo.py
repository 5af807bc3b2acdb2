"""`medledger demo`: the hospital records story, told step by step on a running consortium.

The cast (`network.demo_cast`): hospitals A, B and C, A's clinician and patient, a
clinician each in B and C. Every call goes through the acting user's own hospital's
gateway with our Python client (`gateway.client`), endorsed by that hospital's peer:

    1  A's clinician records a diagnosis (the plaintext travels as transient data)
    2  the patient grants B consent            5  C is refused (the expected outcome)
    3  A shares the record with B              6  the patient reads the audit trail
    4  B reads it, sealed for B, and audited   7  the patient asks for erasure
                                               8  the record's hash still verifies

Each step prints who acted, what happened and, for transactions, the tx id and the
block it committed in. A transaction counts as done once every hospital's gateway
reports it committed VALID (so the next step, wherever it runs, sees it). A step
whose outcome is not the expected one ends the story.

Where the network is: `workdir`, a `network up` work directory (brought up first, as
`network up` does, when its nodes are not all running or the chaincode is not
deployed), or `generated`, an output folder of `network generate` whose nodes run
(nothing is started).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import json
import secrets
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from chaincode.contracts.ehr.model import shared_collection, treating_collection
from chaincode.contracts.ehr.sealing import KEY_BYTES, SealError, open_sealed
from common.errors import MedledgerError
from gateway.client import (
    ClientError,
    CommitError,
    Contract,
    Gateway,
    GatewayError,
    Signer,
    SubmittedTransaction,
    identity_from_msp,
    signer_from_msp,
)
from network.demo_cast import (
    DEMO_CHAINCODE,
    Cast,
    Hospital,
    Member,
    choose_cast,
    hospitals_from_generated,
    hospitals_from_workdir,
)
from network.launcher import NetworkState, is_alive

__all__ = ["DIAGNOSIS", "DemoStep", "demo", "run_demo"]

DIAGNOSIS = (
    "Hypertension, stage 1. Start lisinopril 10 mg once daily; review in 4 weeks."
)
CONSENT_DAYS = 30

Out = Callable[[str], None]
_T = TypeVar("_T")


@dataclass(frozen=True, kw_only=True)
class DemoStep:
    """One step of the story as it went.

    `passed`: the outcome was the expected one (for step 5, a refusal). `tx_id` is set
    for transactions, and `block` for those that committed; queries have neither.
    """

    number: int
    title: str
    actor: str
    passed: bool
    outcome: str
    tx_id: str = ""
    block: int | None = None
    details: tuple[str, ...] = ()


def run_demo(
    *,
    workdir: Path | None = None,
    generated: Path | None = None,
    out: Out = print,
) -> list[DemoStep]:
    """Tell the story on the network of `generated` (a `network generate` folder whose
    nodes run) or of `workdir` (default ./.medledger; brought up first when it does not
    run); the steps, up to the first that went wrong. Callable inside an event loop
    too (it then runs in a thread of its own).

    Raises:
        LaunchError: no usable network or cast (see `network.demo_cast.choose_cast`).
        ConfigError: the network's spec does not read.
    """
    return _in_own_loop(_run(workdir=workdir, generated=generated, out=out))


async def demo(cast: Cast, *, out: Out = print) -> list[DemoStep]:
    """Tell the story with `cast`; the steps, up to the first that went wrong."""
    out(
        f"medledger demo: chaincode {cast.chaincode} on channel {cast.channel}; "
        f"A = {cast.a.mspid} ({cast.a.gateway}), B = {cast.b.mspid} "
        f"({cast.b.gateway}), C = {cast.c.mspid} ({cast.c.gateway}); patient "
        f"{cast.patient_id}"
    )
    record_id = f"DX-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    plan = _plan(cast)
    steps: list[DemoStep] = []
    async with contextlib.AsyncExitStack() as stack:
        story = _Story(cast=cast, connections=stack, record_id=record_id)
        for number, (title, member, action) in enumerate(plan, start=1):
            step = await _run_step(story, number, title, member, action)
            steps.append(step)
            _print_step(step, len(plan), out)
            if not step.passed:
                break
    passed = sum(step.passed for step in steps)
    verdict = "as expected" if passed == len(plan) else "NOT as expected"
    out(f"\ndemo {verdict}: {passed} of {len(plan)} steps passed")
    return steps


# ---------------------------------------------------------------- the story's state


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What a step's body reports (it raises `_Unexpected` otherwise)."""

    summary: str
    tx_id: str = ""
    block: int | None = None
    details: tuple[str, ...] = ()


class _Unexpected(MedledgerError):
    """A step's outcome is not the one the story expects."""


@dataclass
class _Story:
    """What the steps share: the cast, the gateway connections, the record."""

    cast: Cast
    connections: contextlib.AsyncExitStack
    record_id: str
    _gateways: dict[tuple[str, str, str], Gateway] = field(default_factory=dict)
    _signers: dict[tuple[str, str], Signer] = field(default_factory=dict)

    async def submit(
        self,
        member: Member,
        function: str,
        *args: str,
        transient: Mapping[str, bytes] | None = None,
    ) -> tuple[Any, _Outcome]:
        """Endorse on the member's hospital's peer, order, and wait until every
        hospital committed it; (the decoded result, tx id and block)."""
        home = self._home(member)
        contract = self._contract(await self._gateway(home, member))
        submitted = await contract.submit_async(
            function, *args, transient=transient, endorsing_orgs=[member.mspid]
        )
        status = await submitted.status()
        if not status.successful:
            raise CommitError(status.transaction_id, status.code)
        for hospital in self._hospitals():
            if hospital is not home:
                await self._confirm(hospital, member, submitted, status.block_number)
        result = json.loads(submitted.result) if submitted.result else None
        return result, _Outcome("", status.transaction_id, status.block_number)

    async def evaluate(
        self,
        member: Member,
        function: str,
        *args: str,
        transient: Mapping[str, bytes] | None = None,
    ) -> Any:
        """Run a query on the member's hospital's peer; its decoded result."""
        gateway = await self._gateway(self._home(member), member)
        data = await self._contract(gateway).evaluate(
            function, *args, transient=transient, endorsing_orgs=[member.mspid]
        )
        return json.loads(data) if data else None

    async def _confirm(
        self,
        hospital: Hospital,
        member: Member,
        submitted: SubmittedTransaction,
        block: int,
    ) -> None:
        """Wait for `hospital`'s gateway to report the transaction committed."""
        gateway = await self._gateway(hospital, member)
        commit = gateway.new_signed_commit(
            submitted.to_bytes(), self._signer(member)(submitted.message)
        )
        status = await commit.status()
        if not status.successful or status.block_number != block:
            raise _Unexpected(
                f"{hospital.mspid} reports tx {status.transaction_id} as "
                f"{status.code_name} in block {status.block_number}, not VALID in "
                f"block {block}"
            )

    async def _gateway(self, hospital: Hospital, member: Member) -> Gateway:
        key = (hospital.mspid, member.mspid, member.name)
        if key not in self._gateways:
            gateway = Gateway.connect(
                hospital.gateway,
                identity_from_msp(member.msp_dir, member.mspid),
                self._signer(member),
                tls=hospital.tls_ca,
            )
            self._gateways[key] = await self.connections.enter_async_context(gateway)
        return self._gateways[key]

    def _signer(self, member: Member) -> Signer:
        key = (member.mspid, member.name)
        if key not in self._signers:
            self._signers[key] = signer_from_msp(member.msp_dir, member.mspid)
        return self._signers[key]

    def _contract(self, gateway: Gateway) -> Contract:
        return gateway.network(self.cast.channel).contract(self.cast.chaincode)

    def _hospitals(self) -> tuple[Hospital, Hospital, Hospital]:
        return (self.cast.a, self.cast.b, self.cast.c)

    def _home(self, member: Member) -> Hospital:
        return next(h for h in self._hospitals() if h.mspid == member.mspid)


# ---------------------------------------------------------------- the steps


Action = Callable[[_Story], Awaitable[_Outcome]]


async def _record_diagnosis(story: _Story) -> _Outcome:
    cast = story.cast
    plaintext = DIAGNOSIS.encode()
    result, done = await story.submit(
        cast.clinician_a,
        "CreateDiagnosis",
        story.record_id,
        cast.a.mspid,
        cast.patient_id,
        transient={"diagnosis": plaintext},
    )
    digest = hashlib.sha256(plaintext).hexdigest()
    _expect(
        result.get("sha256") == digest,
        f"the chain holds the hash {result.get('sha256')}, not {digest}",
    )
    return _done(
        done,
        f"record {story.record_id} created for patient {cast.patient_id}",
        "the plaintext travelled as transient data into "
        f"{treating_collection(cast.a.mspid)}; it is in no block",
        f"on chain: the metadata and SHA-256 {digest[:16]}…; only {cast.a.mspid}'s "
        "peers may endorse changes to the record (key-level policy)",
    )


async def _grant_consent(story: _Story) -> _Outcome:
    cast = story.cast
    expiry = datetime.now(UTC) + timedelta(days=CONSENT_DAYS)
    result, done = await story.submit(
        cast.patient,
        "GrantConsent",
        cast.b.mspid,
        expiry.isoformat(timespec="seconds"),
    )
    _expect(
        result.get("hospital") == cast.b.mspid,
        f"the consent names {result.get('hospital')}, not {cast.b.mspid}",
    )
    return _done(
        done,
        f"{cast.b.mspid} may receive and read patient {cast.patient_id}'s records",
        f"until {result.get('expires_at')}",
    )


async def _share(story: _Story) -> _Outcome:
    cast = story.cast
    result, done = await story.submit(
        cast.clinician_a, "ShareRecord", story.record_id, cast.b.mspid
    )
    collection = shared_collection(cast.a.mspid, cast.b.mspid)
    holders = result.get("holders") or {}
    _expect(
        holders.get(cast.b.mspid) == collection,
        f"the record's holders are {holders}, not {cast.b.mspid} in {collection}",
    )
    return _done(
        done,
        f"record {story.record_id} copied into the collection {collection}",
        f"the chaincode checked patient {cast.patient_id}'s consent for {cast.b.mspid}",
    )


async def _read_in_b(story: _Story) -> _Outcome:
    cast = story.cast
    key = secrets.token_bytes(KEY_BYTES)
    result, done = await story.submit(
        cast.clinician_b,
        "ReadDiagnosis",
        story.record_id,
        "emergency admission",
        transient={"response_key": key},
    )
    sealed = result.get("sealed")
    _expect(isinstance(sealed, dict), f"the response is not sealed: {result}")
    try:
        plaintext = open_sealed(key, done.tx_id, sealed).decode()
    except SealError as error:
        raise _Unexpected(f"the sealed diagnosis does not open: {error}") from None
    _expect(plaintext == DIAGNOSIS, f"{cast.b.mspid} read {plaintext!r}")
    return _done(
        done,
        f"{cast.b.mspid} read the diagnosis: {plaintext!r}",
        "the response in the block is sealed (AES-256-GCM) with a key only the "
        "reader had, passed as transient data",
        "the same transaction wrote an access-log entry (who, when, record, purpose)",
    )


async def _refuse_c(story: _Story) -> _Outcome:
    cast = story.cast
    try:
        await story.submit(
            cast.clinician_c, "ReadDiagnosis", story.record_id, "curiosity"
        )
    except GatewayError as error:
        reason = _reason(error)
        _expect(
            "refused" in reason, f"failed, but not refused by the chaincode: {error}"
        )
        return _Outcome(
            f"refused, as expected: {reason}",
            error.transaction_id,
            None,
            ("refused at endorsement: nothing was ordered",),
        )
    raise _Unexpected(f"{cast.c.mspid} read the diagnosis; it should have been refused")


async def _audit_trail(story: _Story) -> _Outcome:
    cast = story.cast
    entries = await story.evaluate(cast.patient, "AuditTrail")
    mine = [entry for entry in entries if entry.get("record_id") == story.record_id]
    _expect(
        any(
            entry.get("action") == "read" and entry.get("actor_msp") == cast.b.mspid
            for entry in mine
        ),
        f"no read by {cast.b.mspid} in the audit trail: {mine}",
    )
    return _Outcome(
        f"{len(mine)} entries for record {story.record_id} (a query: nothing ordered)",
        details=tuple(
            f"{entry.get('at')}  {entry.get('action'):<5} by "
            f"{_common_name(str(entry.get('actor')))} ({entry.get('actor_msp')}): "
            f"{entry.get('purpose')}  tx {str(entry.get('tx_id'))[:16]}…"
            for entry in mine
        ),
    )


async def _erase(story: _Story) -> _Outcome:
    cast = story.cast
    result, done = await story.submit(cast.patient, "EraseRecord", story.record_id)
    _expect(result.get("erased") is True, f"not erased: {result}")
    try:
        await story.evaluate(
            cast.clinician_a, "ReadDiagnosis", story.record_id, "follow-up"
        )
    except GatewayError as error:
        after = f"a read in {cast.a.mspid} is now refused: {_reason(error)}"
    else:
        raise _Unexpected("the diagnosis can still be read after the erasure")
    return _done(
        done,
        "the plaintext was purged from " + ", ".join(result.get("purged_from") or ()),
        after,
        "the metadata, the hash and the access log stay on chain",
    )


async def _verify(story: _Story) -> _Outcome:
    cast = story.cast
    answer = await story.evaluate(
        cast.clinician_b,
        "VerifyRecord",
        story.record_id,
        "",
        transient={"document": DIAGNOSIS.encode()},
    )
    _expect(answer.get("matches") is True, f"the document does not match: {answer}")
    _expect(answer.get("erased") is True, f"the record is not marked erased: {answer}")
    return _Outcome(
        "the copy of the document B kept still matches the hash on chain",
        details=(f"SHA-256 {answer.get('sha256')}; the record is marked erased",),
    )


def _plan(cast: Cast) -> list[tuple[str, Member, Action]]:
    a, b, c = cast.a.mspid, cast.b.mspid, cast.c.mspid
    return [
        (f"{a}'s clinician records a diagnosis", cast.clinician_a, _record_diagnosis),
        (f"the patient grants {b} consent", cast.patient, _grant_consent),
        (f"{a} shares the record with {b}", cast.clinician_a, _share),
        (f"{b} reads the diagnosis (audited)", cast.clinician_b, _read_in_b),
        (f"{c} tries to read it and is refused", cast.clinician_c, _refuse_c),
        ("the patient reads the audit trail", cast.patient, _audit_trail),
        ("the patient asks for erasure", cast.patient, _erase),
        ("the record's hash still verifies", cast.clinician_b, _verify),
    ]


# ---------------------------------------------------------------- running it


async def _run_step(
    story: _Story, number: int, title: str, member: Member, action: Action
) -> DemoStep:
    actor = f"{member.name} ({member.role}) of {member.mspid}"
    try:
        outcome = await action(story)
    except _Unexpected as error:
        return DemoStep(
            number=number, title=title, actor=actor, passed=False, outcome=str(error)
        )
    except (ClientError, AttributeError, KeyError, TypeError, ValueError) as error:
        return DemoStep(
            number=number,
            title=title,
            actor=actor,
            passed=False,
            outcome=f"{type(error).__name__}: {error}",
            tx_id=str(getattr(error, "transaction_id", "")),
        )
    return DemoStep(
        number=number,
        title=title,
        actor=actor,
        passed=True,
        outcome=outcome.summary,
        tx_id=outcome.tx_id,
        block=outcome.block,
        details=outcome.details,
    )


def _print_step(step: DemoStep, total: int, out: Out) -> None:
    out(f"\n[{step.number}/{total}] {step.title}")
    out(f"    by      {step.actor}")
    if step.block is not None:
        out(f"    tx      {step.tx_id}")
        out(f"    block   {step.block} (committed VALID on every hospital's peer)")
    elif step.tx_id:
        out(f"    tx      {step.tx_id} (not ordered)")
    out(f"    result  {step.outcome}")
    for line in step.details:
        out(f"            {line}")
    out("    ok, as expected" if step.passed else "    FAILED: not as expected")


async def _run(
    *, workdir: Path | None, generated: Path | None, out: Out
) -> list[DemoStep]:
    if generated is not None:
        channel, hospitals = await asyncio.to_thread(
            hospitals_from_generated, generated
        )
    else:
        from network.up import DEFAULT_WORKDIR

        folder = workdir if workdir is not None else DEFAULT_WORKDIR
        await _ensure_running(folder, out)
        channel, hospitals = await asyncio.to_thread(hospitals_from_workdir, folder)
    return await demo(choose_cast(hospitals, channel=channel), out=out)


async def _ensure_running(workdir: Path, out: Out) -> None:
    """Bring the workdir's network up unless every node runs and the chaincode is
    deployed (`network up` with its spec, or the hospital example for a new one)."""
    from network.up import UpOptions, bring_up

    spec = await asyncio.to_thread(_spec_to_start, workdir)
    if spec is None:
        return
    out(f"bringing up the network of {spec} in {workdir} first")
    await bring_up(UpOptions(spec_path=spec, workdir=workdir), out)


def _spec_to_start(workdir: Path) -> Path | None:
    """None when the network runs with the chaincode, else the spec to bring up."""
    from network.up import DEFAULT_SPEC

    state = NetworkState.load(workdir.absolute())
    running = bool(state.nodes) and all(
        is_alive(record) for record in state.nodes.values()
    )
    deployed = any(key.endswith(f"/{DEMO_CHAINCODE}") for key in state.chaincodes)
    if running and deployed:
        return None
    return Path(state.spec) if state.spec else DEFAULT_SPEC


# ---------------------------------------------------------------- helpers


def _done(done: _Outcome, summary: str, *details: str) -> _Outcome:
    return _Outcome(summary, done.tx_id, done.block, details)


def _expect(condition: bool, otherwise: str) -> None:
    if not condition:
        raise _Unexpected(otherwise)


def _reason(error: GatewayError) -> str:
    """The chaincode's message, from the part that names the record on."""
    messages = [detail.message for detail in error.details if detail.message]
    message = messages[0] if messages else str(error.args[0] if error.args else error)
    for marker in ("access to record", "record "):
        found = message.find(marker)
        if found >= 0:
            return message[found:]
    return message


def _common_name(identity: str) -> str:
    """The CN of an x509::<subject>::<issuer> identity, else the identity."""
    for part in identity.replace("::", ",").replace("/", ",").split(","):
        if part.strip().startswith("CN="):
            return part.strip()[3:]
    return identity


def _in_own_loop(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run to completion: in this thread, or in a thread of its own if a loop runs."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
