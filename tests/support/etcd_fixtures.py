"""Fixtures and helpers of the test modules that work against one real etcd.

`etcd` runs a single-member cluster for a whole test module; `client` is an
`EtcdClient` on it for one test and `keys` a fresh channel's key space, so that no test
sees another's keys. A module takes the fixtures it needs by naming them at module
level (`etcd = etcd_fixtures.etcd`), which keeps them per module: each module still
starts its own etcd. `election`/`win` campaign for a channel's cutter term.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from orderer.consensus.etcd_client import EtcdClient
from orderer.consensus.etcd_election import CutterInfo, Election, Term
from orderer.consensus.etcd_log import ChannelKeys
from tests.support.etcd import EtcdCluster, running_cluster


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    with running_cluster(tmp_path_factory.mktemp("etcd")) as cluster:
        yield cluster


@pytest.fixture
async def client(etcd: EtcdCluster) -> AsyncIterator[EtcdClient]:
    client = EtcdClient(etcd.endpoints, request_timeout_s=3)
    yield client
    await client.close()


@pytest.fixture
def keys() -> ChannelKeys:
    return ChannelKeys(f"ch-{uuid.uuid4().hex[:12]}")


def election(
    client: EtcdClient, keys: ChannelKeys, name: str, **kwargs: bytes
) -> Election:
    me = CutterInfo(orderer_name=name, forward_address=f"{name}:7050", **kwargs)
    return Election(client, keys, me, ttl_s=2)


async def win(client: EtcdClient, keys: ChannelKeys, name: str = "orderer0") -> Term:
    outcome = await election(client, keys, name).campaign()
    assert isinstance(outcome, Term)
    return outcome
