"""The suite registry: suites by name, loaded lazily from ``module:function`` specs.

Design note: the framework never imports a suite until it is asked for, so a suite whose
dependencies are missing (or that does not exist yet) cannot break ``perf-bench`` itself. A suite
is found, in order, in suites registered in this process (``register_suite``), in the built-in
table below, and in the ``vmkit.perf_bench.suites`` entry-point group of installed
distributions. The built-in table names ``vm`` ahead of its module: the VM suite plugs in by
providing ``vmkit.perf_bench.suites.vm:build_suite`` (a function returning a ``BenchmarkSuite``),
without any change here; until that module exists, asking for it says the suite is not available.

The spec, not the suite object, is what a worker process receives, so every registered suite can
run in fresh processes.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass

from vmkit.perf_bench._suite import BenchmarkSuite

__all__ = [
    "BUILTIN_SUITES",
    "SuiteInfo",
    "SuiteUnavailableError",
    "available_suites",
    "load_suite",
    "load_suite_spec",
    "register_suite",
]

ENTRY_POINT_GROUP = "vmkit.perf_bench.suites"

BUILTIN_SUITES: dict[str, tuple[str, str]] = {
    "python": (
        "vmkit.perf_bench.suites.python:build_suite",
        "CPython costs behind the VM design: dict, struct, memoryview, calls, generators",
    ),
    "vm": (
        "vmkit.perf_bench.suites.vm:build_suite",
        "async-executor and coroutine-scheduler on real guest programs",
    ),
}
"""Name -> (import spec, description) of the suites that ship with perf-bench."""

_registered: dict[str, tuple[str, str]] = {}


class SuiteUnavailableError(LookupError):
    """A suite that is unknown, or known but cannot be loaded here."""


@dataclass(frozen=True, slots=True)
class SuiteInfo:
    """A suite's name, description, and whether it can be loaded here (and if not, why)."""

    name: str
    spec: str
    description: str
    available: bool
    reason: str = ""


def register_suite(name: str, spec: str, description: str = "") -> None:
    """Register a suite under ``name``; ``spec`` is ``module:function`` returning the suite.

    Raises:
        ValueError: if the spec is not of the form ``module:function``.
    """
    _check_spec(spec)
    _registered[name] = (spec, description)


def _check_spec(spec: str) -> tuple[str, str]:
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"suite spec {spec!r} must look like 'package.module:function'")
    return module, attr


def _entry_points() -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = (ep.value, "")
    return found


def _table() -> dict[str, tuple[str, str]]:
    table = _entry_points()
    table.update(BUILTIN_SUITES)
    table.update(_registered)
    return table


def load_suite_spec(spec: str) -> BenchmarkSuite:
    """Import ``module:function``, call it and return the suite, remembering the spec.

    Raises:
        SuiteUnavailableError: if the module is missing or fails to import, or the function
            raises or does not return a ``BenchmarkSuite``.
    """
    module_name, attr = _check_spec(spec)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise SuiteUnavailableError(f"module {module_name!r} does not exist yet") from exc
        raise SuiteUnavailableError(f"it needs {exc.name!r}, which is not installed") from exc
    except ImportError as exc:
        raise SuiteUnavailableError(f"importing {module_name!r} failed: {exc}") from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise SuiteUnavailableError(f"{module_name!r} has no function {attr!r}")
    try:
        suite = factory()
    except Exception as exc:
        raise SuiteUnavailableError(
            f"building the suite with {spec} failed: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(suite, BenchmarkSuite):
        raise SuiteUnavailableError(f"{spec} returned {type(suite).__name__}, not a BenchmarkSuite")
    suite.import_spec = spec
    return suite


def load_suite(name: str) -> BenchmarkSuite:
    """The suite registered as ``name``.

    Raises:
        SuiteUnavailableError: if no suite has that name or it cannot be loaded here; the message
            says which, and why.
    """
    table = _table()
    if name not in table:
        raise SuiteUnavailableError(
            f"unknown suite {name!r}; known suites: {', '.join(sorted(table))}"
        )
    spec, _ = table[name]
    try:
        return load_suite_spec(spec)
    except SuiteUnavailableError as exc:
        raise SuiteUnavailableError(f"suite {name!r} is not available: {exc}") from exc


def available_suites() -> list[SuiteInfo]:
    """Every known suite, with whether it loads here (each one is imported to find out)."""
    infos: list[SuiteInfo] = []
    for name, (spec, description) in sorted(_table().items()):
        try:
            suite = load_suite_spec(spec)
        except SuiteUnavailableError as exc:
            infos.append(SuiteInfo(name, spec, description, False, str(exc)))
        else:
            infos.append(SuiteInfo(name, spec, description or suite.description, True))
    return infos
