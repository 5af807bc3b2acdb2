"""Unit tests for the network-wide parts of the spec: gateways, tls, orderers.etcd, ports.

Each invalid case changes one thing in a small valid document; the ConfigError names
the file, the key path (or, for ports the spec implies, both nodes) and what was wrong.
"""

from __future__ import annotations

import pytest

from common.errors import ConfigError
from network.spec import ConsortiumSpec
from network.spec_network import (
    DEFAULT_ETCD_MEMBER,
    EtcdMemberSpec,
    EtcdSpec,
    admin_port,
    check_listeners,
    listeners,
    read_network_settings,
)
from tests.unit.network.spec_documents import (
    Change,
    Document,
    assert_config_error,
    commission,
    hospital_a,
    org,
    parse_changed,
)

BASE: Document = {
    "consortium": "test",
    "organizations": [
        hospital_a(gateways=[{"name": "gateway0", "host": "127.0.0.1", "port": 7060}]),
        commission(),
    ],
}


def load(change: Change | None = None) -> ConsortiumSpec:
    return parse_changed(BASE, change, source="net.yaml")


def test_defaults_tls_on_and_one_etcd_member() -> None:
    settings = read_network_settings(load())

    assert settings.tls
    assert settings.etcd.members == (DEFAULT_ETCD_MEMBER,)
    assert settings.etcd.prefix == "/medledger"


def test_tls_off_and_etcd_members() -> None:
    def change(document: Document) -> None:
        document["tls"] = False
        document["orderers"] = {
            "etcd": {
                "prefix": "/hospitals",
                "members": [
                    {
                        "name": "e0",
                        "host": "10.0.0.1",
                        "client_port": 2379,
                        "peer_port": 2380,
                    },
                    {
                        "name": "e1",
                        "host": "10.0.0.2",
                        "client_port": 2379,
                        "peer_port": 2380,
                    },
                ],
            }
        }

    settings = read_network_settings(load(change))

    assert not settings.tls
    assert settings.etcd.prefix == "/hospitals"
    assert [m.client_address for m in settings.etcd.members] == [
        "10.0.0.1:2379",
        "10.0.0.2:2379",
    ]


def test_gateway_defaults_to_the_first_peer() -> None:
    gateway = load().organizations[0].gateways[0]

    assert gateway.full_name == "gateway0.hospital-a.example.com"
    assert gateway.address == "127.0.0.1:7060"
    assert gateway.peer == "peer0"


def test_orderer_admin_port_defaults_to_port_plus_three() -> None:
    orderer = load().organizations[1].orderers[0]
    explicit = load(lambda d: org(d, 1)["orderers"][0].update(admin_port=9443))

    assert admin_port(orderer) == 7053
    assert admin_port(explicit.organizations[1].orderers[0]) == 9443


def test_listeners_cover_every_port() -> None:
    found = listeners(load(), etcd=read_network_settings(load()).etcd)

    assert {(listener.node, listener.what, listener.port) for listener in found} == {
        ("peer0.hospital-a.example.com", "gRPC", 7051),
        ("gateway0.hospital-a.example.com", "gRPC", 7060),
        ("orderer0.commission.example.com", "gRPC", 7050),
        ("orderer0.commission.example.com", "admin", 7053),
        ("etcd0", "etcd client", 2379),
        ("etcd0", "etcd peer", 2380),
    }


def test_implied_admin_port_clash_names_both_nodes() -> None:
    """The orderer's admin port (7050 + 3) is also a peer's port: both are named."""
    spec = load(lambda d: org(d, 0)["peers"][0].update(port=7053))

    with pytest.raises(ConfigError) as raised:
        check_listeners(listeners(spec), source="net.yaml")

    assert str(raised.value) == (
        "net.yaml: port clash on 127.0.0.1:7053: peer0.hospital-a.example.com (gRPC) "
        "and orderer0.commission.example.com (admin); an orderer's admin port is its "
        "port + 3 unless 'admin_port' sets it"
    )


def test_etcd_port_clash() -> None:
    member = EtcdMemberSpec("etcd0", "127.0.0.1", 7051, 2380)

    with pytest.raises(ConfigError, match=r"port clash on 127\.0\.0\.1:7051"):
        check_listeners(
            listeners(load(), etcd=EtcdSpec(members=(member,))),
            source="net.yaml",
        )


INVALID: list[tuple[str, Change, str]] = [
    (
        "tls not a boolean",
        lambda d: d.update(tls="yes please"),
        "tls: expected true or false",
    ),
    (
        "unknown orderers key",
        lambda d: d.update(orderers={"raft": {}}),
        "orderers.raft: unknown key 'raft'",
    ),
    (
        "etcd member without peer port",
        lambda d: d.update(
            orderers={
                "etcd": {"members": [{"name": "e0", "host": "h", "client_port": 1}]}
            }
        ),
        "orderers.etcd.members[0]: missing key 'peer_port'",
    ),
    (
        "etcd prefix without slash",
        lambda d: d.update(orderers={"etcd": {"prefix": "medledger"}}),
        "orderers.etcd.prefix: expected a key prefix starting with '/'",
    ),
    (
        "gateway of an unknown peer",
        lambda d: org(d, 0)["gateways"][0].update(peer="peer7"),
        "organizations[0].gateways[0].peer: no peer 'peer7' in this organisation",
    ),
    (
        "gateway host not in the peer's certificate",
        lambda d: org(d, 0)["gateways"][0].update(host="10.1.2.3"),
        "organizations[0].gateways[0].host: 10.1.2.3 is not covered by the TLS "
        "certificate of peer0.hospital-a.example.com",
    ),
    (
        "gateway without peers",
        lambda d: org(d, 1).update(
            gateways=[{"name": "gateway0", "host": "127.0.0.1", "port": 7070}]
        ),
        "organizations[1].gateways[0]: a gateway runs with one of its organisation's "
        "peers, and this organisation has none",
    ),
    (
        "gateway on a peer's port",
        lambda d: org(d, 0)["gateways"][0].update(port=7051),
        "organizations[0].gateways[0].port: duplicate host and port 127.0.0.1:7051",
    ),
    (
        "admin port equal to port",
        lambda d: org(d, 1)["orderers"][0].update(admin_port=7050),
        "organizations[1].orderers[0].admin_port: the admin port must differ",
    ),
    (
        "admin port on a peer",
        lambda d: org(d, 0)["peers"][0].update(admin_port=9443),
        "organizations[0].peers[0].admin_port: unknown key 'admin_port'",
    ),
]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [pytest.param(change, fragment, id=name) for name, change, fragment in INVALID],
)
def test_invalid_settings_are_rejected(change: Change, fragment: str) -> None:
    assert_config_error(
        lambda: read_network_settings(load(change)),
        source="net.yaml",
        fragment=fragment,
    )
