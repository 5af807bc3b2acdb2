"""`medledger orderer channel ...` without an orderer: osnadmin's output format, the
one-line refusal, the request each command makes, and options refused before dialling.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from network.channel_common import ChannelCommandError
from network.cli import build_parser
from network.osnadmin_cli import (
    ParticipationReply,
    ParticipationRequest,
    block_channel_id,
    is_refused,
    orderer_admin_of,
    refusal_message,
    response_output,
)
from protos.common import common_pb2

LISTING = '{"systemChannel":null,"channels":[{"name":"records","url":"/x"}]}\n'


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["orderer", "channel", *argv])


def request_of(*argv: str) -> ParticipationRequest:
    args = build_parser().parse_args(["orderer", "channel", *argv])
    request: ParticipationRequest = args.build_request(args)
    return request


def config_block_of(channel: str) -> bytes:
    header = common_pb2.ChannelHeader(type=common_pb2.CONFIG, channel_id=channel)
    payload = common_pb2.Payload(
        header=common_pb2.Header(
            channel_header=header.SerializeToString(),
            signature_header=common_pb2.SignatureHeader(nonce=b"n").SerializeToString(),
        )
    )
    envelope = common_pb2.Envelope(payload=payload.SerializeToString())
    return block_with(envelope.SerializeToString())


def block_with(*envelopes: bytes) -> bytes:
    block = common_pb2.Block()
    block.header.SetInParent()
    block.data.data.extend(envelopes)
    return block.SerializeToString()


def test_output_is_the_status_then_the_body_indented_with_tabs() -> None:
    reply = ParticipationReply(200, LISTING)
    assert response_output(reply, show_status=True) == (
        "Status: 200\n"
        "{\n"
        '\t"systemChannel": null,\n'
        '\t"channels": [\n'
        "\t\t{\n"
        '\t\t\t"name": "records",\n'
        '\t\t\t"url": "/x"\n'
        "\t\t}\n"
        "\t]\n"
        "}"
    )
    assert response_output(reply, show_status=False).startswith("{\n\t")


def test_output_without_body_is_the_status_alone() -> None:
    assert response_output(ParticipationReply(204, ""), show_status=True) == (
        "Status: 204"
    )
    assert response_output(ParticipationReply(204, ""), show_status=False) == ""


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        (
            '{"error": "channel x does not exist"}\n',
            '{"error": "channel x does not exist"}',
        ),
        ('{\n  "error":\n "a"\n}', '{"error": "a"}'),
        ("Bad Gateway\n<html>\n</html>", "Bad Gateway <html> </html>"),
        ("", "(no body)"),
    ],
)
def test_refusal_is_one_line_with_the_error_json(body: str, shown: str) -> None:
    message = refusal_message("o:7053", ParticipationReply(404, body))
    assert message == f"orderer o:7053 refused: Status: 404 {shown}"


@pytest.mark.parametrize(
    ("status", "refused"),
    [(200, False), (204, False), (399, False), (400, True), (503, True)],
)
def test_refused_means_4xx_or_5xx(status: int, refused: bool) -> None:
    assert is_refused(status) is refused


def test_each_command_makes_its_request() -> None:
    target = ("-o", "o:7053")
    assert request_of("list", *target) == ParticipationRequest("GET")
    assert request_of("list", *target, "-c", "records") == ParticipationRequest(
        "GET", "/records"
    )
    assert request_of("info", *target, "--channelID", "records") == (
        ParticipationRequest("GET", "/records")
    )
    assert request_of("remove", *target, "--channel", "records") == (
        ParticipationRequest("DELETE", "/records")
    )
    assert request_of("info", *target, "-c", "a/b?") == ParticipationRequest(
        "GET", "/a%2Fb%3F"
    )


def test_join_posts_the_block_of_the_named_channel(tmp_path: Path) -> None:
    block = config_block_of("records")
    path = tmp_path / "records.block"
    path.write_bytes(block)
    request = request_of("join", "-o", "o:1", "-c", "records", "-b", str(path))
    assert request == ParticipationRequest("POST", config_block=block)
    with pytest.raises(ChannelCommandError, match="--channelID other does not match"):
        request_of("join", "-o", "o:1", "-c", "other", "-b", str(path))


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"\xff\xff", "not a config block"), (block_with(), "holds no envelope")],
)
def test_block_channel_id_refuses_what_is_no_block(data: bytes, reason: str) -> None:
    with pytest.raises(ChannelCommandError, match=reason):
        block_channel_id(data, source=Path("b.block"))


def test_tls_only_with_ca_file_and_whole_pairs(tmp_path: Path) -> None:
    ca, cert, key = (tmp_path / name for name in ("ca.pem", "c.pem", "k.pem"))
    for path in (ca, cert, key):
        path.write_text("x")
    plain = orderer_admin_of(parse("list", "-o", "o:7053"))
    assert plain.url == "http://o:7053/participation/v1/channels"
    assert plain.tls is None
    mutual = orderer_admin_of(
        parse(
            "list",
            "-o",
            "o:1",
            "--ca-file",
            str(ca),
            "--client-cert",
            str(cert),
            "--client-key",
            str(key),
        )
    )
    assert mutual.url.startswith("https://o:1/")
    assert mutual.tls is not None
    assert (mutual.tls.cert, mutual.tls.key, mutual.tls.root_cas) == (cert, key, (ca,))
    refusals = [
        (("--client-cert", str(cert), "--client-key", str(key)), "need --ca-file"),
        (("--ca-file", str(ca), "--client-cert", str(cert)), "go together"),
        (("--ca-file", str(tmp_path / "missing.pem")), "missing.pem: no such file"),
    ]
    for options, reason in refusals:
        with pytest.raises(ChannelCommandError, match=reason):
            orderer_admin_of(parse("list", "-o", "o:1", *options))


@pytest.mark.parametrize(
    "argv",
    [
        ("list",),
        ("join", "-o", "o:1", "-c", "records"),
        ("join", "-o", "o:1", "-b", "x.block"),
        ("info", "-o", "o:1"),
        ("remove", "-o", "o:1"),
    ],
)
def test_missing_required_options_are_usage_errors(argv: tuple[str, ...]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse(*argv)
    assert exit_info.value.code == 2
