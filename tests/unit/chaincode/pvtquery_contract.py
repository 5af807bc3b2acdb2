"""A contract and a scenario for rich queries on private data (GetPrivateDataQueryResult).

`AdmitPatient(key)` writes the transient entry "record" (a JSON object) into the
"wards" collection; `FindPatients(collection, query)` returns the keys and values
that `get_private_data_query_result` yields. `private_rich_query` runs them on
any harness with `submit`/`evaluate`: the mock peer and a real peer.
"""

from __future__ import annotations

import json

from chaincode import ChaincodeError, Context, Contract, query, transaction
from tests.unit.chaincode.scenarios import Harness, ok

WARDS = "wards"
"""The collection the patients are admitted to."""


class PatientQueries(Contract):
    """Private patient records of a ward, found by rich query."""

    def __init__(self) -> None:
        super().__init__("PatientQueries")

    @transaction
    async def AdmitPatient(self, ctx: Context, key: str) -> None:
        record = ctx.stub.get_transient().get("record")
        if record is None:
            raise ChaincodeError("transient 'record' is required", status=400)
        await ctx.stub.put_private_data(WARDS, key, record)

    @query
    async def FindPatients(
        self, ctx: Context, collection: str, selector: str
    ) -> list[list[str]]:
        found = await ctx.stub.get_private_data_query_result(collection, selector)
        async with found as results:
            return [[kv.key, kv.value.decode()] async for kv in results]


contracts = [PatientQueries()]

PATIENTS = {
    "patient1": {"docType": "patient", "ward": "cardio", "age": 71},
    "patient2": {"docType": "patient", "ward": "neuro", "age": 45},
    "patient3": {"docType": "patient", "ward": "cardio", "age": 52},
}


async def admit_patients(h: Harness) -> None:
    for key, record in PATIENTS.items():
        transient = {"record": json.dumps(record).encode()}
        ok(await h.submit("AdmitPatient", key, transient=transient))


async def private_rich_query(h: Harness) -> None:
    """Selectors over the collection's committed values; nothing public matches."""
    await admit_patients(h)
    cardio = json.dumps({"selector": {"ward": "cardio"}})
    found = ok(await h.evaluate("FindPatients", WARDS, cardio)).json()
    assert found == [
        ["patient1", json.dumps(PATIENTS["patient1"])],
        ["patient3", json.dumps(PATIENTS["patient3"])],
    ]
    older = json.dumps({"selector": {"age": {"$gt": 50}, "ward": {"$ne": "neuro"}}})
    found = ok(await h.evaluate("FindPatients", WARDS, older)).json()
    assert isinstance(found, list)
    assert [key for key, _ in found] == ["patient1", "patient3"]
    nobody = json.dumps({"selector": {"ward": "oncology"}})
    assert ok(await h.evaluate("FindPatients", WARDS, nobody)).json() == []
    bad = await h.evaluate("FindPatients", WARDS, "not json")
    assert bad.status == 500
