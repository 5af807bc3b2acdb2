"""The etcd backend's cutter election and etcd client against a real etcd.

One single-member etcd serves the module (a TLS one the TLS test); every test works
under its own channel id, so no test sees another's keys. Waits are watches, or polls
with deadlines.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orderer.consensus.etcd_client import EtcdClient
from orderer.consensus.etcd_election import Election, Follower, Term, Vacant
from orderer.consensus.etcd_log import ChannelKeys
from orderer.consensus.etcd_types import (
    EtcdRequestRejected,
    EtcdTlsConfig,
    EtcdUnavailable,
)
from tests.support import etcd_fixtures
from tests.support.etcd import EtcdCluster, EtcdTls, free_ports, running_cluster
from tests.support.etcd_fixtures import election, win

etcd = etcd_fixtures.etcd
client = etcd_fixtures.client
keys = etcd_fixtures.keys


# --- the cutter election ----------------------------------------------------------


async def test_the_second_candidate_follows_the_first(
    client: EtcdClient, keys: ChannelKeys
) -> None:
    await win(client, keys, "orderer0")

    outcome = await election(client, keys, "orderer1").campaign()

    assert isinstance(outcome, Follower)
    assert outcome.cutter.orderer_name == "orderer0"
    assert outcome.cutter.forward_address == "orderer0:7050"


async def test_an_orderer_that_may_not_cut_waits_for_one_that_may(
    client: EtcdClient, keys: ChannelKeys
) -> None:
    """Not a consenter: it never takes the vacant key, it follows whoever does."""
    outsider = election(client, keys, "outsider")

    vacant = await outsider.campaign(may_win=False)
    await win(client, keys, "orderer0")
    following = await outsider.campaign(may_win=False)

    assert isinstance(vacant, Vacant)
    assert isinstance(following, Follower)
    assert following.cutter.orderer_name == "orderer0"


async def cutter_and_follower(
    client: EtcdClient, keys: ChannelKeys
) -> tuple[Election, Term, Election, Follower]:
    """orderer0's election and the term it wins; then orderer1's, following it."""
    cutter = election(client, keys, "orderer0")
    term = await cutter.campaign()
    assert isinstance(term, Term)
    follower = election(client, keys, "orderer1")
    following = await follower.campaign()
    assert isinstance(following, Follower)
    return cutter, term, follower, following


async def test_followers_see_a_resignation_and_one_of_them_takes_over(
    client: EtcdClient, keys: ChannelKeys
) -> None:
    cutter, term, follower, following = await cutter_and_follower(client, keys)

    async with asyncio.timeout(5):
        watching = asyncio.create_task(follower.wait_for_change(following.revision))
        await cutter.resign(term, timeout_s=2)
        await watching
    takeover = await follower.campaign()

    assert isinstance(takeover, Term)
    assert takeover.revision > term.revision
    assert not term.is_valid()


async def test_a_restarted_orderer_replaces_its_previous_lease_at_once(
    client: EtcdClient, keys: ChannelKeys
) -> None:
    before = await election(client, keys, "orderer0", incarnation=b"first").campaign()
    assert isinstance(before, Term)

    after = await election(client, keys, "orderer0", incarnation=b"second").campaign()

    assert isinstance(after, Term)
    assert after.revision > before.revision
    assert after.lease_id != before.lease_id


async def test_the_same_process_resumes_its_term(
    client: EtcdClient, keys: ChannelKeys
) -> None:
    """etcd unreachable for a while but the lease survived: same term, same fence."""
    candidate = election(client, keys, "orderer0")
    term = await candidate.campaign()

    again = await candidate.campaign()

    assert isinstance(term, Term)
    assert isinstance(again, Term)
    assert (again.lease_id, again.revision) == (term.lease_id, term.revision)


async def test_keep_alive_holds_the_term_and_the_lease_expires_without_it(
    client: EtcdClient, keys: ChannelKeys
) -> None:
    """Kept alive past the TTL the term stays valid; stopped, the key goes with the lease."""
    cutter, term, follower, following = await cutter_and_follower(client, keys)

    keeping = asyncio.create_task(cutter.keep_alive(term))
    changed = asyncio.create_task(follower.wait_for_change(following.revision))
    await asyncio.wait({changed}, timeout=cutter.ttl_s + 0.5)
    held = term.is_valid() and not changed.done()
    keeping.cancel()
    stopped_at = time.monotonic()
    async with asyncio.timeout(cutter.ttl_s + 3):
        await changed
    expired_after = time.monotonic() - stopped_at

    assert held
    assert not term.is_valid()
    assert await client.get(keys.cutter) is None
    assert expired_after < cutter.ttl_s + 2


# --- the client -------------------------------------------------------------------


async def test_the_client_fails_over_to_a_live_member(etcd: EtcdCluster) -> None:
    dead = f"127.0.0.1:{free_ports(1)[0]}"
    client = EtcdClient((dead, *etcd.endpoints), request_timeout_s=3)
    try:
        key = f"/test/{uuid.uuid4().hex}".encode()
        await client.put(key, b"value")
        found = await client.get(key)
    finally:
        await client.close()

    assert found is not None
    assert found.value == b"value"


async def test_the_client_gives_up_at_its_deadline() -> None:
    client = EtcdClient([f"127.0.0.1:{free_ports(1)[0]}"], request_timeout_s=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(EtcdUnavailable):
            await client.get(b"/anything")
    finally:
        await client.close()

    assert time.monotonic() - started < 2


async def test_a_value_above_etcds_request_limit_is_rejected(
    client: EtcdClient,
) -> None:
    with pytest.raises(EtcdRequestRejected):
        await client.put(b"/test/huge", bytes(11 * 1024 * 1024))


@pytest.fixture(scope="module")
def tls_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    folder = tmp_path_factory.mktemp("etcd-tls")
    with running_cluster(folder, tls=EtcdTls.issue(folder / "tls")) as cluster:
        yield cluster


def tls_config(tls: EtcdTls, *, with_client_cert: bool) -> EtcdTlsConfig:
    return EtcdTlsConfig(
        ca_pem=Path(tls.ca_file).read_bytes(),
        cert_pem=tls.client_cert_file.read_bytes() if with_client_cert else None,
        key_pem=tls.client_key_file.read_bytes() if with_client_cert else None,
    )


async def test_tls_with_a_client_certificate_works_and_without_one_fails(
    tls_etcd: EtcdCluster,
) -> None:
    assert tls_etcd.tls is not None
    good = EtcdClient(
        tls_etcd.endpoints, tls=tls_config(tls_etcd.tls, with_client_cert=True)
    )
    anonymous = EtcdClient(
        tls_etcd.endpoints,
        tls=tls_config(tls_etcd.tls, with_client_cert=False),
        request_timeout_s=1,
    )
    try:
        await good.put(b"/test/tls", b"ok")
        found = await good.get(b"/test/tls")
        with pytest.raises(EtcdUnavailable):
            await anonymous.get(b"/test/tls")
    finally:
        await good.close()
        await anonymous.close()

    assert found is not None
    assert found.value == b"ok"


async def test_a_paused_member_times_requests_out_and_serves_again_when_resumed(
    etcd: EtcdCluster, client: EtcdClient
) -> None:
    """SIGSTOP through the harness: requests hit their deadline; SIGCONT: they work."""
    impatient = EtcdClient(etcd.endpoints, request_timeout_s=0.5, attempt_timeout_s=0.2)
    member = etcd.members[0]
    etcd.pause(member)
    try:
        started = time.monotonic()
        with pytest.raises(EtcdUnavailable):
            await impatient.get(b"/test/paused")
        waited = time.monotonic() - started
    finally:
        etcd.resume(member)
        await impatient.close()
    await client.put(b"/test/paused", b"back")

    assert waited < 1.5
    assert (await client.get(b"/test/paused")) is not None
