"""Regenerate the Python code for every `.proto` file under protos/.

Run from anywhere with `make protos` or `python scripts/gen_protos.py`. The output
(`*_pb2.py`, `*_pb2.pyi`, `*_pb2_grpc.py`, `*_pb2_grpc.pyi`) is committed; CI runs
this script and fails if `git diff` shows any change (see `.ci/run`).

The `.proto` files import each other as `protos/<path>.proto` and protoc runs with
the repository root as its only include path, so generated modules import
`protos.common.common_pb2` and never collide with our own `common` package.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def main() -> int:
    sources = sorted(PROTOS.rglob("*.proto"))
    if not sources:
        print("gen_protos: no .proto files under protos/", file=sys.stderr)
        return 1
    remove_generated()
    relative = [str(path.relative_to(ROOT)) for path in sources]
    run_protoc(["--python_out=.", "--pyi_out=."], relative)
    with_services = [
        str(path.relative_to(ROOT))
        for path in sources
        if any(line.startswith("service ") for line in path.read_text().splitlines())
    ]
    if with_services:
        run_protoc(["--grpc_python_out=.", *mypy_grpc_args()], with_services)
    write_package_markers(sources)
    print(f"gen_protos: {len(sources)} files, {len(with_services)} with services")
    return 0


def remove_generated() -> None:
    """Delete old output so that a removed .proto leaves no stale module behind."""
    for path in PROTOS.rglob("*_pb2*"):
        if path.name.endswith(GENERATED_SUFFIXES):
            path.unlink()


def run_protoc(outputs: list[str], files: list[str]) -> None:
    command = [sys.executable, "-m", "grpc_tools.protoc", "-I", ".", *outputs, *files]
    subprocess.run(command, cwd=ROOT, check=True)


def mypy_grpc_args() -> list[str]:
    """Typed stubs for the service modules, from mypy-protobuf's plugin if installed."""
    plugin = shutil.which("protoc-gen-mypy_grpc", path=str(Path(sys.executable).parent))
    if plugin is None:
        plugin = shutil.which("protoc-gen-mypy_grpc")
    if plugin is None:
        raise SystemExit(
            "gen_protos: protoc-gen-mypy_grpc not found; pip install -e '.[test]'"
        )
    return [f"--plugin=protoc-gen-mypy_grpc={plugin}", "--mypy_grpc_out=."]


def write_package_markers(sources: list[Path]) -> None:
    """Every folder holding generated modules must be a regular package."""
    folders = {path.parent for path in sources}
    for folder in sorted(folders):
        while folder != PROTOS.parent:
            marker = folder / "__init__.py"
            if not marker.exists():
                marker.write_text("")
            folder = folder.parent


if __name__ == "__main__":
    raise SystemExit(main())
