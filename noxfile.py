"""Developer tasks for the monorepo: `nox -l` lists them, `nox -s NAME` runs one.

Every session installs what it needs into its own virtualenv, so a fresh machine with Python 3.11+
and nox is enough. The packages are installed from the working tree; perf-bench finds its siblings
there because they are named on the same pip command line, just as an outside user's resolver would
find them on an index.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PACKAGES = ("async-executor", "coroutine-scheduler", "perf-bench")
IMPORT_NAMES = {name: name.replace("-", "_") for name in PACKAGES}

# perf-bench depends on both others by version range; the others depend on no sibling.
SIBLINGS = {
    "async-executor": (),
    "coroutine-scheduler": (),
    "perf-bench": ("async-executor", "coroutine-scheduler"),
}
TEST_REQUIREMENTS = {
    "async-executor": (
        "pytest>=8",
        "pytest-timeout",
        "hypothesis>=6",
        "unicorn>=2.0.1",
        "llvmlite>=0.44",  # the native tier's tests must run in CI, not skip
        "pytest-xdist>=3",
    ),
    "coroutine-scheduler": ("pytest>=8", "pytest-timeout", "hypothesis>=6"),
    # scipy, matplotlib and pyperf are test-only: the statistics are cross-checked against scipy,
    # the plots rendered, the pyperf export read by pyperf; PERF_BENCH_CROSS_CHECKS makes their
    # absence an error, not a skip.
    "perf-bench": (
        "pytest>=8",
        "pytest-timeout",
        "hypothesis>=6",
        "jsonschema>=4",
        "scipy>=1.11",
        "matplotlib>=3.8",
        "pyperf>=2.6",
    ),
}
INTEGRATION_REQUIREMENTS = (
    "pytest>=8",
    "pytest-timeout",
    "build>=1",
    "hatchling>=1.27",
    "jsonschema>=4",
)
LINT_REQUIREMENTS = ("ruff>=0.6", "import-linter>=2")
TYPECHECK_REQUIREMENTS = ("mypy>=1.10",)

#: Every Python the classifiers promise. `tests` runs under each one present on the machine and
#: skips the others (CI makes the oldest and the newest present, see .ci/run).
PYTHONS = ("3.11", "3.12", "3.13")

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_missing_interpreters = False
# A missing Python is skipped at once: uv would otherwise try to download one for every session
# (seconds each, and no use on a machine without internet).
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")
nox.options.sessions = ["lint", "typecheck", "tests", "integration"]
nox.options.reuse_existing_virtualenvs = True


def install_packages(session: nox.Session, *names: str, extras: str = "prometheus") -> None:
    """Install the named packages (editable) and the siblings they depend on."""
    wanted: list[str] = []
    for name in names:
        for package in (*SIBLINGS[name], name):
            if package not in wanted:
                wanted.append(package)
    args: list[str] = []
    for package in wanted:
        args += ["-e", f"packages/{package}[{extras}]" if extras else f"packages/{package}"]
    session.install(*args)


def pytest_args(session: nox.Session, *paths: str) -> list[str]:
    """pytest arguments: the given paths, then whatever followed `--` on the nox command line."""
    return ["-p", "no:cacheprovider", *paths, *session.posargs]


@nox.session(python=PYTHONS)
@nox.parametrize("package", PACKAGES)
def tests(session: nox.Session, package: str) -> None:
    """Run one package's unit tests against that package alone (plus its declared siblings)."""
    install_packages(session, package)
    session.install(*TEST_REQUIREMENTS[package])
    env = {"PERF_BENCH_CROSS_CHECKS": "required"} if package == "perf-bench" else {}
    # async-executor's tests are minutes of guest programs, independent of each other: one
    # pytest worker per core halves them. The others are quick or time things, so stay serial.
    parallel = ["-n", "auto"] if package == "async-executor" else []
    # Tests marked matrix_once re-check whole programs other tests check already (the Csmith
    # corpus, the native tiers' program runs: minutes of LLVM and guest time). They run under
    # the first Python of the matrix, which CI always has; the others run everything else.
    once = [] if session.python == PYTHONS[0] else ["-m", "not matrix_once"]
    session.run(
        "pytest", *parallel, *once, *pytest_args(session, f"packages/{package}/tests"), env=env
    )


@nox.session
def integration(session: nox.Session) -> None:
    """Run integration-tests/: the three packages together, wheels, metrics and Prometheus,
    batches on a Ray cluster started by the tests."""
    install_packages(session, *PACKAGES)
    session.install("-e", "packages/async-executor[prometheus,ray]")
    session.install(*INTEGRATION_REQUIREMENTS)
    session.run("pytest", *pytest_args(session, "integration-tests"))


@nox.session
def lint(session: nox.Session) -> None:
    """Check style (ruff), formatting (ruff format), the dependency direction and layers, and
    that no sibling modules import each other in a cycle at run time (import-linter)."""
    install_packages(session, *PACKAGES, extras="")
    session.install(*LINT_REQUIREMENTS)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports", "--config", "pyproject.toml")
    session.run("lint-imports", "--config", ".importlinter-cycles")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Type-check every package's src/ with mypy in strict mode."""
    install_packages(session, *PACKAGES)
    session.install(*TYPECHECK_REQUIREMENTS, "structlog", "rich")
    for package in PACKAGES:
        session.run("mypy", "-p", f"vmkit.{IMPORT_NAMES[package]}")


@nox.session
def build(session: nox.Session) -> None:
    """Build an sdist and a wheel per package into dist/, then install each alone and run it."""
    dist = ROOT / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    # structlog: integration-tests/conftest.py quiets the packages' logging for every test.
    session.install("build>=1", "pytest>=8", "pytest-timeout", "structlog")
    for package in PACKAGES:
        session.run("python", "-m", "build", "--outdir", str(dist), f"packages/{package}")
    session.run(
        "pytest",
        *pytest_args(session, "integration-tests/test_wheels.py"),
        env={"MONOREPO_DIST_DIR": str(dist)},
    )


@nox.session
def demo(session: nox.Session) -> None:
    """The toolkit in one screen: a guest on every engine, then the VM suite's targets.

    Exits non-zero only when something is broken (a wrong guest output, a suite that cannot run);
    missed performance targets are reported in the verdict line, not failures (see
    `perf-bench demo --help`).
    """
    install_packages(session, *PACKAGES)
    session.install("llvmlite>=0.44")  # the native engine is one of the executors shown
    session.run("perf-bench", "demo")


#: Benchmark-only tools: tinyrv, the fastest pure-Python RISC-V emulator on PyPI, is the baseline
#: the interpreter and the JIT are compared with, side by side on the same kernels.
BENCH_REQUIREMENTS = ("tinyrv", "llvmlite>=0.44")
BENCH_SCRIPTS = (
    "packages/async-executor/benchmarks/compare_tinyrv.py",
    "packages/async-executor/benchmarks/bench_jit.py",
    "packages/async-executor/benchmarks/bench_native.py",
    "packages/async-executor/benchmarks/bench_programs.py",
    "packages/async-executor/benchmarks/bench_startup.py",
    "packages/async-executor/benchmarks/bench_batch.py",
    "packages/coroutine-scheduler/benchmarks/bench_switch.py",
)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Run every benchmark: package scripts, then the VM suite into bench-results.json (slow)."""
    install_packages(session, *PACKAGES)
    session.install(*BENCH_REQUIREMENTS)
    for script in BENCH_SCRIPTS:
        session.run("python", script)
    output = os.environ.get("BENCH_OUTPUT", "bench-results.json")
    session.run("perf-bench", "run", "--suite", "vm", "--format", "json", "-o", output)
    session.log(f"VM suite results (every raw value and the environment): {output}")
