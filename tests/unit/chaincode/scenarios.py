"""SDK scenarios, written once and run against every peer stand-in.

Each scenario takes a `Harness` (anything with `submit`/`evaluate` like
`chaincode.testing.MockPeer` or `fakepeer.FakePeer`) serving `ScenarioContract` as
"scenario" (and as "partner" for invoke_chaincode), and asserts only on what a client
sees: statuses, payloads, events. The real peer can run them through the same surface.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from chaincode.testing import InvocationResult, make_identity
from common.protoutil import SerializedIdentity


class Harness(Protocol):
    """A peer the scenarios can invoke chaincode through."""

    async def submit(
        self,
        function: str,
        *args: str | bytes,
        chaincode: str | None = None,
        creator: SerializedIdentity | None = None,
        transient: Mapping[str, bytes] | None = None,
        is_init: bool = False,
    ) -> InvocationResult: ...

    async def evaluate(
        self,
        function: str,
        *args: str | bytes,
        chaincode: str | None = None,
        creator: SerializedIdentity | None = None,
        transient: Mapping[str, bytes] | None = None,
    ) -> InvocationResult: ...


Scenario = Callable[[Harness], Awaitable[None]]


def ok(result: InvocationResult) -> InvocationResult:
    assert result.status == 200, (result.status, result.message)
    return result


async def put_get_delete(h: Harness) -> None:
    ok(await h.submit("Put", "color", "blue"))
    assert ok(await h.evaluate("Get", "color")).payload == b"blue"
    ok(await h.submit("Delete", "color"))
    assert ok(await h.evaluate("Get", "color")).payload == b""


async def evaluate_does_not_commit(h: Harness) -> None:
    ok(await h.evaluate("Put", "draft", "x"))
    assert ok(await h.evaluate("Get", "draft")).payload == b""


async def range_in_batches_and_pages(h: Harness) -> None:
    values = {f"k{n}": str(n) for n in range(5)}
    assert ok(await h.submit("PutMany", json.dumps(values))).json() == 5
    ok(await h.submit("PutComposite", "color~name", json.dumps(["blue", "a"])))
    assert ok(await h.evaluate("Range", "", "")).json() == list(values)
    assert ok(await h.evaluate("Range", "k1", "k3")).json() == ["k1", "k2"]
    pages, bookmark = [], ""
    while True:
        page = ok(await h.evaluate("RangePage", "", "", "2", bookmark)).json()
        assert isinstance(page, dict)
        pages.append((page["keys"], page["count"]))
        bookmark = page["next"]
        if not bookmark:
            break
    assert pages == [(["k0", "k1"], 2), (["k2", "k3"], 2), (["k4"], 1)]
    assert ok(await h.evaluate("FirstInRange")).payload == b"k0"


async def composite_keys(h: Harness) -> None:
    for attributes in (["blue", "a"], ["blue", "b"], ["red", "c"]):
        ok(await h.submit("PutComposite", "color~name", json.dumps(attributes)))
    ok(await h.submit("PutComposite", "other", json.dumps(["blue"])))
    found = ok(await h.evaluate("ByPartialKey", "color~name", '["blue"]')).json()
    assert found == [["blue", "a"], ["blue", "b"]]
    everything = ok(await h.evaluate("ByPartialKey", "color~name", "[]")).json()
    assert everything == [["blue", "a"], ["blue", "b"], ["red", "c"]]
    first = ok(await h.evaluate("ByPartialKeyPage", "color~name", "2", "")).json()
    assert isinstance(first, dict)
    assert first["found"] == [["blue", "a"], ["blue", "b"]]
    rest = ok(
        await h.evaluate("ByPartialKeyPage", "color~name", "2", first["next"])
    ).json()
    assert rest == {"found": [["red", "c"]], "next": ""}
    bad = await h.submit("PutComposite", "color~name", json.dumps(["bad\x00part"]))
    assert bad.status == 500
    assert "U+0000" in bad.message


async def rich_query(h: Harness) -> None:
    for key, color in (("a1", "blue"), ("a2", "red"), ("a3", "blue")):
        ok(await h.submit("Put", key, json.dumps({"color": color})))
    selector = json.dumps({"selector": {"color": "blue"}})
    assert ok(await h.evaluate("Query", selector)).json() == ["a1", "a3"]
    page = ok(await h.evaluate("QueryPage", selector, "1", "")).json()
    assert isinstance(page, dict)
    assert page["keys"] == ["a1"]
    assert page["next"]
    rest = ok(await h.evaluate("QueryPage", selector, "1", page["next"])).json()
    assert rest == {"keys": ["a3"], "next": ""}


async def history(h: Harness) -> None:
    first = ok(await h.submit("Put", "record", "v1"))
    second = ok(await h.submit("Put", "record", "v2"))
    third = ok(await h.submit("Delete", "record"))
    entries = ok(await h.evaluate("History", "record")).json()
    assert entries == [
        {"tx_id": third.tx_id, "value": "", "is_delete": True, "has_timestamp": True},
        {
            "tx_id": second.tx_id,
            "value": "v2",
            "is_delete": False,
            "has_timestamp": True,
        },
        {
            "tx_id": first.tx_id,
            "value": "v1",
            "is_delete": False,
            "has_timestamp": True,
        },
    ]


async def chaincode_event(h: Harness) -> None:
    result = ok(await h.submit("Emit", "AssetMoved", '{"id":"a1"}'))
    assert result.event is not None
    assert (result.event.name, result.event.payload) == ("AssetMoved", b'{"id":"a1"}')
    assert result.payload.decode() == result.tx_id
    assert ok(await h.submit("Put", "quiet", "1")).event is None


async def client_identity(h: Harness) -> None:
    doctor = make_identity("Org2MSP", "Dr Lee", attributes={"role": "doctor"})
    who = ok(await h.evaluate("WhoAmI", creator=doctor)).json()
    assert who == {
        "id": "x509::CN=Dr Lee,OU=client,O=Org2MSP,C=US::CN=ca.org2msp,O=Org2MSP,C=US",
        "mspid": "Org2MSP",
        "role": "doctor",
        "missing": None,
        "cn": "Dr Lee",
    }
    assert (
        ok(await h.evaluate("RequireRole", "doctor", creator=doctor)).payload
        == b"allowed"
    )
    refused = await h.evaluate("RequireRole", "nurse", creator=doctor)
    assert refused.status == 403
    assert "'doctor'" in refused.message
    plain = await h.evaluate(
        "RequireRole", "doctor", creator=make_identity("Org1MSP", "Bob")
    )
    assert plain.status == 403
    assert "not found" in plain.message


async def transaction_facts(h: Harness) -> None:
    creator = make_identity("Org1MSP", "Facts")
    result = ok(await h.evaluate("TxFacts", creator=creator))
    facts = result.json()
    assert isinstance(facts, dict)
    assert facts["tx_id"] == result.tx_id
    assert facts["creator_msp"] == "Org1MSP"
    assert facts["function"] == "TxFacts"
    assert facts["has_proposal"] is True
    assert facts["timestamp"] > 1_600_000_000
    assert len(str(facts["binding"])) == 64


async def errors_become_responses(h: Harness) -> None:
    failed = await h.submit("FailAfterWrite", "ghost")
    assert (failed.status, failed.message) == (500, "boom on ghost")
    assert ok(await h.evaluate("Get", "ghost")).payload == b""
    refused = await h.submit("Refuse", "409")
    assert (refused.status, refused.message) == (409, "refused on purpose")
    unknown = await h.evaluate("NoSuchFunction")
    assert unknown.status == 500
    assert "NoSuchFunction" in unknown.message
    wrong_count = await h.evaluate("Get")
    assert wrong_count.status == 400
    bad_json = await h.evaluate("RangePage", "", "", "two", "")
    assert bad_json.status == 400
    assert "page_size" in bad_json.message
    peer_error = ok(await h.evaluate("PeerError")).payload.decode()
    assert peer_error.startswith("PeerRequestError: ")


async def metadata(h: Harness) -> None:
    document = ok(await h.evaluate("org.hyperledger.fabric:GetMetadata")).json()
    assert isinstance(document, dict)
    contract = document["contracts"]["ScenarioContract"]
    assert contract["contractInstance"] == {"name": "ScenarioContract", "default": True}
    transactions = {entry["name"]: entry for entry in contract["transactions"]}
    assert transactions["Put"]["tag"] == ["SUBMIT", "submitTx"]
    assert transactions["Get"]["tag"] == ["EVALUATE"]
    assert [p["name"] for p in transactions["RangePage"]["parameters"]] == [
        "start",
        "end",
        "page_size",
        "bookmark",
    ]
    assert "org.hyperledger.fabric" in document["contracts"]
    explicit = ok(await h.evaluate("ScenarioContract:Get", "nothing"))
    assert explicit.payload == b""


async def transient_and_private_data(h: Harness) -> None:
    transient = {"value": b"diagnosis: flu", "other": b"x"}
    assert (
        ok(await h.evaluate("Transient", "other", transient=transient)).payload == b"x"
    )
    ok(await h.submit("PutPrivate", "patient1", transient=transient))
    private = ok(await h.evaluate("GetPrivate", "patient1")).json()
    assert private == {
        "value": "diagnosis: flu",
        "hash": hashlib.sha256(b"diagnosis: flu").hexdigest(),
    }
    assert ok(await h.evaluate("Get", "patient1")).payload == b""
    ok(await h.submit("PutPrivate", "patient2", transient={"value": b"ok"}))
    assert ok(await h.evaluate("PrivateRange")).json() == ["patient1", "patient2"]
    ok(await h.submit("DeletePrivate", "patient1", "false"))
    ok(await h.submit("DeletePrivate", "patient2", "true"))
    assert ok(await h.evaluate("PrivateRange")).json() == []
    in_init = await h.submit("PutPrivate", "p3", transient=transient, is_init=True)
    assert in_init.status == 500
    assert "Init" in in_init.message


async def key_level_policy(h: Harness) -> None:
    ok(await h.submit("Put", "shared", "1"))
    ok(await h.submit("SetKeyPolicy", "shared", '["Org2MSP", "Org1MSP"]'))
    assert ok(await h.evaluate("GetKeyPolicy", "shared")).json() == [
        "Org1MSP",
        "Org2MSP",
    ]
    assert ok(await h.evaluate("GetKeyPolicy", "unset")).json() == []


async def invoke_other_chaincode(h: Harness) -> None:
    called = ok(await h.submit("CallPartner", "Put", '["handoff", "done"]')).json()
    assert called == {"status": 200, "message": "", "payload": ""}
    assert (
        ok(await h.evaluate("Get", "handoff", chaincode="partner")).payload == b"done"
    )
    assert ok(await h.evaluate("Get", "handoff")).payload == b""
    failed = ok(await h.submit("CallPartner", "Refuse", '["403"]')).json()
    assert failed == {"status": 403, "message": "refused on purpose", "payload": ""}


SCENARIOS: list[Scenario] = [
    put_get_delete,
    evaluate_does_not_commit,
    range_in_batches_and_pages,
    composite_keys,
    rich_query,
    history,
    chaincode_event,
    client_identity,
    transaction_facts,
    errors_become_responses,
    metadata,
    transient_and_private_data,
    key_level_policy,
    invoke_other_chaincode,
]
