"""`medledger bench grpc`: CPU per message of gRPC itself, one setting at a time.

Two processes, a server and a client, talk raw bytes (identity serialisation, generic
handlers) over one channel: `unary` calls (`--concurrency` callers in a loop) and a
`stream` ping-pong (`--concurrency` bidi streams, each sending the next message once
the echo of the previous one arrived). Each run measures the CPU time both processes
spent (all threads, from /proc), divided by the number of messages exchanged: for a
unary call one request and one response, for the stream one ping and its echo.

A configuration (`--configs`, comma-separated names of `CONFIGS`) sets environment
variables read by gRPC core, channel/server arguments, the event loop, or a Unix
domain socket instead of TCP; `env:NAME=VALUE` and `opt:grpc.arg=VALUE` (joined by
`+`) build one on the spot. Both processes run through `common.node.run` (uvloop
unless `asyncio-loop`). TLS (a throw-away self-signed P-256 certificate) is on
unless `--plaintext`.

The report (JSON on stdout) has, per configuration and pattern, `client_us` and
`server_us` (CPU µs per message), `total_us`, and `messages_per_s` (wall clock, for
orientation only), plus the load average before and after.

Findings for issue 9 (grpcio 1.85.3, TLS, 2 cores at load 5-10): uvloop saves about
15 % against the asyncio loop; `legacy-io` (gRPC core's EventEngine client and
listener turned off) saves 13 % per unary call and 22 % per stream message, but only
about 3 % of the CPU per transaction of `bench e2e --workload create` (14 runs each),
so no setting is applied by default. Poll strategy, fork support, channel arguments
and Unix sockets made no difference beyond the noise. gRPC reads `GRPC_EXPERIMENTS`
when `grpc` is imported, so such a variable must be in the environment before that.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from common.crypto.issue import (
    ExtendedKeyUsage,
    Subject,
    issue_ca,
    issue_certificate,
)
from common.crypto.signing import PrivateKey
from common.errors import MedledgerError
from common.grpc_runtime import GRPC_EXPERIMENTS_DEFAULT

__all__ = [
    "CONFIGS",
    "BenchConfig",
    "GrpcBenchOptions",
    "parse_config",
    "run_grpc_bench",
    "run_pair",
    "write_certificate",
]

UNARY_METHOD = "/medledger.bench.Echo/Unary"
STREAM_METHOD = "/medledger.bench.Echo/Stream"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_HOST = "localhost"
_CERT_VALIDITY = datetime.timedelta(days=1)


class GrpcBenchError(MedledgerError):
    """The gRPC benchmark cannot run as asked; the message says why."""


@dataclass(frozen=True, kw_only=True)
class BenchConfig:
    """One setting under test: environment, channel/server arguments, transport."""

    env: Mapping[str, str] = field(default_factory=dict)
    options: tuple[tuple[str, int | str], ...] = ()
    unix_socket: bool = False


_LEGACY_IO = GRPC_EXPERIMENTS_DEFAULT

CONFIGS: Mapping[str, BenchConfig] = {
    "current": BenchConfig(),
    "asyncio-loop": BenchConfig(env={"MEDLEDGER_EVENT_LOOP": "asyncio"}),
    "fork-on": BenchConfig(env={"GRPC_ENABLE_FORK_SUPPORT": "1"}),
    "fork-off": BenchConfig(env={"GRPC_ENABLE_FORK_SUPPORT": "0"}),
    "poll": BenchConfig(env={"GRPC_POLL_STRATEGY": "poll"}),
    "epoll1": BenchConfig(env={"GRPC_POLL_STRATEGY": "epoll1"}),
    "legacy-io": BenchConfig(env={"GRPC_EXPERIMENTS": _LEGACY_IO}),
    "poll-legacy-io": BenchConfig(
        env={"GRPC_POLL_STRATEGY": "poll", "GRPC_EXPERIMENTS": _LEGACY_IO}
    ),
    "throughput": BenchConfig(options=(("grpc.optimization_target", "throughput"),)),
    "latency": BenchConfig(options=(("grpc.optimization_target", "latency"),)),
    "no-bdp": BenchConfig(options=(("grpc.http2.bdp_probe", 0),)),
    "write-buffer-64k": BenchConfig(
        options=(("grpc.http2.write_buffer_size", 64 * 1024),)
    ),
    "no-retries": BenchConfig(options=(("grpc.enable_retries", 0),)),
    "local-pool": BenchConfig(options=(("grpc.use_local_subchannel_pool", 1),)),
    "unix": BenchConfig(unix_socket=True),
}
"""The configurations `--configs` may name."""


@dataclass(frozen=True, kw_only=True)
class GrpcBenchOptions:
    """What `medledger bench grpc` runs."""

    configs: tuple[str, ...] = ("current",)
    messages: int = 4000
    concurrency: int = 16
    size: int = 2048
    tls: bool = True
    repeat: int = 1


def run_grpc_bench(options: GrpcBenchOptions) -> dict[str, Any]:
    """Run every configuration `repeat` times (interleaved); the report.

    Raises:
        GrpcBenchError: a configuration is unknown or a child process failed.
    """
    configs = {name: parse_config(name) for name in options.configs}
    load_before = os.getloadavg()
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in options.configs}
    with tempfile.TemporaryDirectory(prefix="medledger-bench-grpc-") as folder:
        tls = write_certificate(Path(folder)) if options.tls else None
        for _ in range(options.repeat):
            for name in options.configs:
                results[name].append(
                    run_pair(configs[name], options, Path(folder), tls)
                )
    return {
        "messages": options.messages,
        "concurrency": options.concurrency,
        "size": options.size,
        "tls": options.tls,
        "grpc": grpc.__version__,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "results": {name: _summary(runs) for name, runs in results.items()},
    }


def parse_config(name: str) -> BenchConfig:
    """A named configuration of `CONFIGS`, or an ad-hoc one.

    `env:NAME=VALUE` sets an environment variable, `opt:grpc.arg=VALUE` a channel
    and server argument (an integer when VALUE is one); several, joined by `+`,
    combine.

    Raises:
        GrpcBenchError: the name is neither known nor of those forms.
    """
    if name in CONFIGS:
        return CONFIGS[name]
    env: dict[str, str] = {}
    options: list[tuple[str, int | str]] = []
    for part in name.split("+"):
        kind, _, setting = part.partition(":")
        key, equals, value = setting.partition("=")
        if kind == "env" and equals and key:
            env[key] = value
        elif kind == "opt" and equals and key:
            options.append((key, int(value) if value.lstrip("-").isdigit() else value))
        else:
            raise GrpcBenchError(
                f"unknown configuration {name!r} (known: {', '.join(CONFIGS)}, "
                "env:NAME=VALUE, opt:grpc.arg=VALUE, joined by +)"
            )
    return BenchConfig(env=env, options=tuple(options))


def _summary(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per pattern: the median of each figure over the runs, and every run's total."""
    summary: dict[str, Any] = {}
    for pattern in ("unary", "stream"):
        figures = [run[pattern] for run in runs]
        summary[pattern] = {
            key: _median([figure[key] for figure in figures])
            for key in ("client_us", "server_us", "total_us", "messages_per_s")
        } | {"total_us_runs": [figure["total_us"] for figure in figures]}
    return summary


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return round((ordered[middle - 1] + ordered[middle]) / 2, 1)


def run_pair(
    config: BenchConfig,
    options: GrpcBenchOptions,
    folder: Path,
    tls: tuple[Path, Path] | None,
) -> dict[str, Any]:
    """One server and one driver process under `config`: per pattern (`unary`,
    `stream`) `client_us`, `server_us`, `total_us` and `messages_per_s`.

    `tls` is `write_certificate`'s (cert, key), or None for plaintext.

    Raises:
        GrpcBenchError: a child process failed.
    """
    env = {**os.environ, **config.env, "PYTHONUNBUFFERED": "1"}
    if config.unix_socket:
        address = f"unix:{folder / f'echo-{time.monotonic_ns()}.sock'}"
    else:
        address = "127.0.0.1:0"
    common = [
        "--options",
        json.dumps(config.options),
        *(["--tls", str(tls[0]), str(tls[1])] if tls else []),
    ]
    with subprocess.Popen(
        [sys.executable, "-m", "network.bench_grpc", "serve", address, *common],
        env=env,
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        text=True,
    ) as server:
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            if not line.startswith("READY "):
                raise GrpcBenchError(f"the echo server did not start: {line!r}")
            argv = [line.split()[1], str(server.pid), str(options.messages)]
            argv += [str(options.concurrency), str(options.size), *common]
            return _drive_process(argv, env)
        finally:
            server.kill()


def _drive_process(argv: Sequence[str], env: Mapping[str, str]) -> dict[str, Any]:
    client = subprocess.run(
        [sys.executable, "-m", "network.bench_grpc", "drive", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if client.returncode != 0:
        raise GrpcBenchError(f"the client failed: {client.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(client.stdout)
    return result


def write_certificate(folder: Path) -> tuple[Path, Path]:
    """A P-256 server certificate for `localhost`/127.0.0.1 and its key: (cert, key).

    The cert file holds the server certificate and its one-off CA, so the server
    presents the chain and the client trusts the same file as its roots.
    """
    now = datetime.datetime.now(datetime.UTC)
    not_before, not_after = now - datetime.timedelta(minutes=5), now + _CERT_VALIDITY
    ca_key = PrivateKey.generate()
    ca = issue_ca(
        Subject("bench-grpc-ca"), key=ca_key, not_before=not_before, not_after=not_after
    )
    key = PrivateKey.generate()
    certificate = issue_certificate(
        Subject(_HOST),
        public_key=key.public_key,
        issuer_cert=ca,
        issuer_key=ca_key,
        not_before=not_before,
        not_after=not_after,
        san_dns=(_HOST,),
        san_ips=("127.0.0.1",),
        ext_key_usage={ExtendedKeyUsage.SERVER_AUTH},
    )
    cert_path, key_path = folder / "echo.crt", folder / "echo.key"
    cert_path.write_bytes(certificate.pem + ca.pem)
    key_path.write_bytes(key.to_pem())
    return cert_path, key_path


def _options(raw: str) -> list[tuple[str, Any]]:
    return [(str(key), value) for key, value in json.loads(raw)]


def _echo_handler() -> grpc.GenericRpcHandler[Any, Any]:
    async def unary(request: bytes, _context: Any) -> bytes:
        return request

    async def stream(requests: Any, context: Any) -> None:
        async for request in requests:
            await context.write(request)

    return grpc.method_handlers_generic_handler(
        "medledger.bench.Echo",
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "Stream": grpc.stream_stream_rpc_method_handler(stream),
        },
    )


async def _serve(args: argparse.Namespace) -> None:
    server = grpc.aio.server(options=_options(args.options))
    server.add_generic_rpc_handlers((_echo_handler(),))
    if args.pem:
        cert, key = args.pem
        credentials = grpc.ssl_server_credentials([(key, cert)])
        port = server.add_secure_port(args.address, credentials)
    else:
        port = server.add_insecure_port(args.address)
    await server.start()
    bound = args.address if args.address.startswith("unix:") else f"{_HOST}:{port}"
    print(f"READY {bound}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.stop(None)


async def _drive(args: argparse.Namespace) -> dict[str, Any]:
    options = _options(args.options)
    if args.pem:
        root = args.pem[0]
        options.append(("grpc.ssl_target_name_override", _HOST))
        channel = grpc.aio.secure_channel(
            args.address, grpc.ssl_channel_credentials(root), options=options
        )
    else:
        channel = grpc.aio.insecure_channel(args.address, options=options)
    payload = os.urandom(args.size)
    unary = channel.unary_unary(UNARY_METHOD)  # type: ignore[call-arg]
    stream = channel.stream_stream(STREAM_METHOD)  # type: ignore[call-arg]
    per_caller = max(args.messages // args.concurrency, 1)

    async def call_loop(count: int) -> None:
        for _ in range(count):
            await unary(payload)

    async def ping_pong(count: int) -> None:
        call = stream()  # type: ignore[call-arg]
        for _ in range(count):
            await call.write(payload)
            await call.read()
        await call.done_writing()
        await call.code()

    async def measure(job: Any, count: int) -> dict[str, float]:
        server_before = _process_cpu_s(args.server_pid)
        client_before = time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(job(count) for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - started
        client = time.process_time() - client_before
        server = _process_cpu_s(args.server_pid) - server_before
        messages = count * args.concurrency
        return {
            "client_us": round(1e6 * client / messages, 1),
            "server_us": round(1e6 * server / messages, 1),
            "total_us": round(1e6 * (client + server) / messages, 1),
            "messages_per_s": round(messages / elapsed, 1),
        }

    async with channel:
        await call_loop(50)
        await ping_pong(50)
        return {
            "unary": await measure(call_loop, per_caller),
            "stream": await measure(ping_pong, per_caller),
        }


def _process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def add_grpc_command(bench_commands: Any) -> None:
    """Register `medledger bench grpc` on the `bench` subcommands."""
    bench = bench_commands.add_parser(
        "grpc",
        help="CPU µs per gRPC message (unary, bidi ping-pong) for each setting",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    bench.add_argument(
        "--configs",
        default="current",
        help=f"comma-separated, of: {', '.join(CONFIGS)}",
    )
    bench.add_argument("--messages", type=int, default=4000, help="per pattern")
    bench.add_argument("--concurrency", type=int, default=16, help="callers/streams")
    bench.add_argument("--size", type=int, default=2048, help="payload bytes")
    bench.add_argument("--repeat", type=int, default=1, help="runs per config")
    bench.add_argument("--plaintext", action="store_true", help="no TLS")
    bench.set_defaults(handler=_run_from_args)


def _run_from_args(args: argparse.Namespace) -> int:
    options = GrpcBenchOptions(
        configs=tuple(name for name in args.configs.split(",") if name),
        messages=args.messages,
        concurrency=args.concurrency,
        size=args.size,
        tls=not args.plaintext,
        repeat=args.repeat,
    )
    print(json.dumps(run_grpc_bench(options), indent=2))
    return 0


def _child_main(argv: Sequence[str]) -> None:
    from common.node import run

    parser = argparse.ArgumentParser(prog="network.bench_grpc")
    roles = parser.add_subparsers(dest="role", required=True)
    serve = roles.add_parser("serve")
    serve.add_argument("address")
    drive = roles.add_parser("drive")
    drive.add_argument("address")
    drive.add_argument("server_pid", type=int)
    drive.add_argument("messages", type=int)
    drive.add_argument("concurrency", type=int)
    drive.add_argument("size", type=int)
    for role in (serve, drive):
        role.add_argument("--options", default="[]")
        role.add_argument("--tls", nargs=2, default=None)
    args = parser.parse_args(argv)
    args.pem = tuple(Path(path).read_bytes() for path in args.tls) if args.tls else None
    if args.role == "serve":
        run(_serve(args))
    else:
        print(json.dumps(run(_drive(args))))


if __name__ == "__main__":
    _child_main(sys.argv[1:])
