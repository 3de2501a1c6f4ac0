"""Shared fixtures of the integration tests: the monorepo root and freshly built wheels."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("async-executor", "coroutine-scheduler", "perf-bench")


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
