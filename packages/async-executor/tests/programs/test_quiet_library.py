"""A guest's stdout holds the guest's bytes only, whatever the log level.

The library logs through the standard logging module and never configures it; the command line
renders events on stderr. Either way nothing but the guest writes to stdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from vmkit.async_executor import (
    HybridExecutor,
    InterpreterExecutor,
    JitExecutor,
    samples,
)

HELLO = samples.path("hello")


EXECUTORS = {"interp": InterpreterExecutor, "jit": JitExecutor, "hybrid": HybridExecutor}


def _guest_stdout() -> bytes:
    """What the hello sample writes, run by the command line in a child process."""
    result = subprocess.run(
        [sys.executable, "-m", "vmkit.async_executor", "run", "--engine", "interp", HELLO],
        capture_output=True,
        check=True,
    )
    return result.stdout


@pytest.mark.parametrize("engine", ["interp", "jit", "hybrid"])
def test_cli_stdout_is_the_guests_even_at_debug_level(engine: str) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    quiet = subprocess.run(
        [sys.executable, "-m", "vmkit.async_executor", "run", "--engine", engine, HELLO],
        capture_output=True,
        check=True,
        env=env,
    )
    loud = subprocess.run(
        [
            sys.executable,
            "-m",
            "vmkit.async_executor",
            "--log-level",
            "debug",
            "--log-json",
            "run",
            "--engine",
            engine,
            HELLO,
        ],
        capture_output=True,
        check=True,
        env=env,
    )
    assert loud.stdout == quiet.stdout
    assert quiet.stdout.startswith(b"Hello")
    if engine == "jit":  # the JIT logs each run at debug level: on stderr, as JSON
        assert b'"event": "jit_run_finished"' in loud.stderr


LIBRARY_RUN = """
import sys
from vmkit.async_executor import {executor}, load_program
machine = load_program({path!r}, ["hello"])
sys.exit({executor}(machine).run(machine))
"""


@pytest.mark.parametrize("engine", ["interp", "jit", "hybrid"])
def test_library_run_prints_only_the_guest(engine: str) -> None:
    """Used as a library in a fresh interpreter, logging unconfigured: stdout and stderr hold
    exactly what the guest wrote (the JIT's debug events are dropped, not printed)."""
    source = LIBRARY_RUN.format(executor=EXECUTORS[engine].__name__, path=str(HELLO))
    result = subprocess.run([sys.executable, "-c", source], capture_output=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == _guest_stdout()
    assert result.stderr == b"to stderr\n"  # the guest's own write to fd 2


def _child(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )


def test_a_disabled_event_costs_no_logging_import_and_a_configuration_waits_for_logging() -> None:
    """``logging`` (about 4 ms with traceback and tokenize) loads only for an event that may be
    shown; a configuration made before that applies when it loads, JSON and level included."""
    done = _child(
        "import sys\n"
        "from vmkit.async_executor._logging import configure_logging, get_logger\n"
        "log = get_logger('vmkit.async_executor.test')\n"
        "configure_logging(json=True, level='info')\n"
        "log.debug('hidden', n=1)\n"
        "print('after debug:', 'logging' in sys.modules)\n"
        "log.info('shown', n=2)\n"
        "print('after info:', 'logging' in sys.modules)\n"
    )
    assert done.stdout.splitlines() == ["after debug: False", "after info: True"]
    events = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(e["event"], e["level"], e["n"]) for e in events] == [("shown", "info", 2)]


def test_without_configuration_warnings_reach_stderr_and_debug_stays_unimported() -> None:
    done = _child(
        "import sys\n"
        "from vmkit.async_executor._logging import get_logger\n"
        "log = get_logger('vmkit.async_executor.test')\n"
        "log.info('quiet')\n"
        "print('after info:', 'logging' in sys.modules)\n"
        "log.warning('loud', why='a test')\n"
    )
    assert done.stdout == "after info: False\n"
    assert "loud why=a test" in done.stderr
    assert "quiet" not in done.stderr


def test_logging_imported_elsewhere_first_still_gets_the_configuration() -> None:
    done = _child(
        "import logging\n"
        "from vmkit.async_executor._logging import configure_logging, get_logger\n"
        "configure_logging(level='debug')\n"
        "logging.getLogger('another.library').debug('theirs')\n"
        "get_logger('vmkit.async_executor.test').debug('ours', k=3)\n"
    )
    assert "theirs" in done.stderr
    assert "ours" in done.stderr
    assert "k=3" in done.stderr
