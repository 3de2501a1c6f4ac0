"""Modules every package carries its own copy of stay identical, byte for byte.

Each wheel installs and works alone, so the logging set-up and the metrics server cannot live in
one package the others import; they are copied instead, and this test keeps the copies from
drifting apart (as three hand-kept versions once did: only one of them survived a replaced
stderr). To change one, change all three the same way.
"""

from __future__ import annotations

import pathlib

import pytest

PACKAGES = pathlib.Path(__file__).resolve().parents[1] / "packages"
COPIES = {
    "async-executor": "async_executor",
    "coroutine-scheduler": "coroutine_scheduler",
    "perf-bench": "perf_bench",
}


@pytest.mark.parametrize("module", ["_logging.py", "_metrics_server.py"])
def test_copies_are_identical(module: str) -> None:
    texts = {
        package: (PACKAGES / package / "src" / "vmkit" / name / module).read_bytes()
        for package, name in COPIES.items()
    }
    reference = texts["async-executor"]
    differing = [package for package, text in texts.items() if text != reference]
    assert not differing, f"{module} differs from async-executor's copy in: {differing}"
