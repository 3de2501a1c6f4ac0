"""Shared fixtures and helpers of the integration tests.

The monorepo root, freshly built wheels, external tools as oracles (skipped when missing unless
``REQUIRE_ORACLES=1``), free loopback ports, and parsing of a Prometheus exposition.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("async-executor", "coroutine-scheduler", "perf-bench")
#: The async-executor guest programs, their cases and qemu-riscv64's recorded outputs.
GUEST = ROOT / "packages" / "async-executor" / "guest"

#: One series of an exposition: (sample name, sorted (label, value) pairs).
SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


def need_tool(name: str) -> str:
    """The path of an external tool; skip without it, unless REQUIRE_ORACLES=1 (then fail)."""
    found = shutil.which(name)
    if found is None:
        if os.environ.get("REQUIRE_ORACLES") == "1":
            pytest.fail(f"{name} is required (REQUIRE_ORACLES=1) but not installed")
        pytest.skip(f"{name} is not installed")
    return found


def build_guests(tmp_path_factory: pytest.TempPathFactory, target: str, compiler: str) -> Path:
    """``make TARGET`` of the async-executor guest programs into a fresh folder."""
    need_tool(compiler)
    out = tmp_path_factory.mktemp(target)
    subprocess.run(
        ["make", "-s", "-C", str(GUEST), f"OUT={out}", target],
        check=True,
        capture_output=True,
        timeout=900,
    )
    return out / target


def qemu_output(binary: Path) -> tuple[bytes, int]:
    """The program's stdout and exit status under qemu-riscv64 (an empty environment)."""
    proc = subprocess.run(
        [need_tool("qemu-riscv64"), str(binary)],
        capture_output=True,
        check=False,
        timeout=120,
        env={},
    )
    return proc.stdout, proc.returncode


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for a server we start ourselves)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def parse_exposition(text: str) -> tuple[dict[SeriesKey, float], dict[str, str]]:
    """Samples of a Prometheus text exposition, and each family's type, by family name."""
    from prometheus_client.parser import text_string_to_metric_families

    values: dict[SeriesKey, float] = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            values[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return values, types


def series(values: dict[SeriesKey, float], name: str, **labels: str) -> float:
    """The value of the series ``name{labels}`` (KeyError naming it when absent)."""
    key = (name, tuple(sorted(labels.items())))
    if key not in values:
        raise KeyError(f"no series {name}{labels} among {len(values)} samples")
    return values[key]


def total(values: dict[SeriesKey, float], name: str, **labels: str) -> float:
    """The sum of every series called ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, lab), v in values.items() if n == name and want <= set(lab))


@pytest.fixture(scope="session")
def dist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding one wheel per package: `nox -s build`'s dist/, or wheels built here."""
    given = os.environ.get("MONOREPO_DIST_DIR")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("dist")
    for package in PACKAGES:
        subprocess.run(
            [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
            cwd=ROOT / "packages" / package,
            check=True,
            capture_output=True,
        )
    return out


@pytest.fixture(autouse=True, scope="session")
def _private_code_cache_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Code caches are signed with a per-user key; tests (and the worker processes they start,
    which inherit the environment) use one in a temporary directory, never the user's own."""
    folder = tmp_path_factory.mktemp("vmkit-config")
    folder.chmod(0o700)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VMKIT_CODE_CACHE_KEY", str(folder / "code-cache.key"))
        yield
