"""What a result records about the machine and software it was measured on.

Every lookup degrades to ``None`` rather than failing: a result from a machine without git, or
without ``/proc/cpuinfo``, is still a result; it just says less about where it came from.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

__all__ = ["PACKAGES", "collect_environment", "cpu_model", "git_commit"]

PACKAGES = ("async-executor", "coroutine-scheduler", "perf-bench")
"""Packages whose versions every result records (published as distributions ``vmkit-<name>``)."""


def cpu_model() -> str | None:
    """The CPU model name from ``/proc/cpuinfo`` (Linux), else ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "uarch", "cpu model"):
                return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def git_commit(cwd: Path | None = None) -> dict[str, Any]:
    """The commit checked out at ``cwd`` (or the package's source tree) and whether it is dirty."""
    where = cwd or Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        if head.returncode != 0:
            return {"commit": None, "dirty": None}
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return {"commit": head.stdout.strip(), "dirty": dirty}


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def collect_environment() -> dict[str, Any]:
    """Python build, OS, CPU, load, package versions and git commit, as JSON-ready data.

    The load average (1, 5, 15 minutes) is taken when the run starts: on a shared machine it
    explains figures far above their minimum better than anything else in the file.
    """
    try:
        available_cores: int | None = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        available_cores = None
    try:
        load: list[float] | None = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        load = None
    build_no, build_date = platform.python_build()
    return {
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "build": f"{build_no} ({build_date})",
            "compiler": platform.python_compiler(),
            "executable": sys.executable,
            "gil_disabled": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
        },
        "os": {
            "system": platform.system(),
            "release": platform.release(),
            "platform": platform.platform(),
        },
        "cpu": {
            "model": cpu_model(),
            "architecture": platform.machine(),
            "logical_cores": os.cpu_count(),
            "available_cores": available_cores,
        },
        "load_average": load,
        "packages": {name: _version(f"vmkit-{name}") for name in PACKAGES},
        "git": git_commit(),
    }
