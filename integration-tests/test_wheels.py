"""Each package stands alone: its wheel installs alone in a fresh virtualenv and works."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PACKAGES, ROOT

# perf-bench needs its siblings, which an outside user's resolver would find on the index.
SIBLINGS = {
    "async-executor": (),
    "coroutine-scheduler": (),
    "perf-bench": ("async-executor", "coroutine-scheduler"),
}


def distribution(package: str) -> str:
    """The name a package is published under on the index."""
    return f"vmkit-{package}"


def module_of(package: str) -> str:
    """The import name of a package: a module of the shared ``vmkit`` namespace."""
    return f"vmkit.{package.replace('-', '_')}"


def source_version(package: str) -> str:
    """The version written in the package's own __about__.py."""
    about = ROOT / "packages" / package / "src" / "vmkit" / package.replace("-", "_")
    about = about / "__about__.py"
    match = re.search(r'__version__ = "([^"]+)"', about.read_text())
    assert match, f"no __version__ in {about}"
    return match.group(1)


def wheel_of(dist: Path, package: str) -> Path:
    """The one wheel of `package` in `dist`."""
    wheels = sorted(dist.glob(f"{distribution(package).replace('-', '_')}-*.whl"))
    assert len(wheels) == 1, f"expected one wheel of {package} in {dist}, found {wheels}"
    return wheels[0]


def make_venv(path: Path) -> Path:
    """Create a fresh virtualenv and return its python."""
    uv = shutil.which("uv")
    if uv:
        subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(path)], check=True)
    else:
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    return path / "bin" / "python"


def install(python: Path, *wheels: Path) -> None:
    """Install wheels (and their dependencies from the index) into the virtualenv of `python`."""
    uv = shutil.which("uv")
    if uv:
        cmd = [uv, "pip", "install", "-q", "--python", str(python)]
    else:
        cmd = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*cmd, *map(str, wheels)], check=True)


def installed_distributions(python: Path) -> set[str]:
    """Names of the distributions installed in the virtualenv of `python`."""
    out = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.metadata as m; print(*{d.name for d in m.distributions()})",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {name.lower().replace("_", "-") for name in out.split()}


@pytest.mark.slow
@pytest.mark.parametrize("package", PACKAGES)
class TestWheelAlone:
    """A package's wheel in a virtualenv of its own."""

    def test_installs_imports_and_reports_version(
        self, package: str, dist_dir: Path, tmp_path: Path
    ) -> None:
        """The wheel installs with only its declared dependencies; its CLI reports its version."""
        wheel = wheel_of(dist_dir, package)
        version = source_version(package)
        assert f"-{version}-" in wheel.name
        python = make_venv(tmp_path / "venv")
        install(python, wheel, *(wheel_of(dist_dir, s) for s in SIBLINGS[package]))

        module = module_of(package)
        imported = subprocess.run(
            [str(python), "-c", f"import {module}; print({module}.__version__)"],
            check=True,
            capture_output=True,
            text=True,
        )
        assert imported.stdout.strip() == version

        cli = subprocess.run(
            [str(python.parent / package), "--version"], check=True, capture_output=True, text=True
        )
        assert cli.stdout.strip() == f"{package} {version}"

        present = installed_distributions(python)
        others = set(PACKAGES) - {package} - set(SIBLINGS[package])
        unexpected = {distribution(p) for p in others} & present
        assert not unexpected, f"installing {package} pulled in {unexpected}"

    def test_metrics_without_the_extra_name_it(
        self, package: str, dist_dir: Path, tmp_path: Path
    ) -> None:
        """Without the prometheus extra, the API and --metrics-port say which extra to install."""
        python = make_venv(tmp_path / "venv")
        install(
            python, wheel_of(dist_dir, package), *(wheel_of(dist_dir, s) for s in SIBLINGS[package])
        )
        assert "prometheus-client" not in installed_distributions(python)
        module = module_of(package)
        hint = f"pip install '{distribution(package)}[prometheus]'"

        api = subprocess.run(
            [str(python), "-c", METRICS_API[package]], capture_output=True, text=True, check=False
        )
        assert api.returncode == 3, api.stderr
        assert api.stdout.strip() == (
            f"Prometheus metrics need the prometheus-client package: {hint}"
        )

        argv = list(METRICS_CLI[package])
        if package == "async-executor":
            sample = subprocess.run(
                [str(python), "-c", f"import {module}.samples as s; print(s.path('hello'))"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            argv.append(sample)
        cli = subprocess.run(
            [str(python.parent / package), *argv],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        status, prefix = METRICS_CLI_ERROR[package]
        assert cli.returncode == status, cli.stderr
        assert cli.stderr.strip().splitlines() == [
            f"{prefix}Prometheus metrics need the prometheus-client package: {hint}"
        ]
        assert "Traceback" not in cli.stderr


#: Python that asks each package for its collector and prints the error it gets (exit 3).
METRICS_API = {
    package: (
        f"from {module_of(package)} import prometheus as p\n"
        "try:\n"
        f"    p.{collector}\n"
        "except p.MetricsUnavailableError as exc:\n"
        "    print(exc)\n"
        "    raise SystemExit(3)\n"
    )
    for package, collector in {
        "async-executor": "ExecutorCollector(registry=None)",
        "coroutine-scheduler": "SchedulerCollector([], registry=None)",
        "perf-bench": "BenchCollector(p.SuiteMonitor('vm'), registry=None)",
    }.items()
}
#: Each CLI with --metrics-port (async-executor's also gets the hello sample's path).
METRICS_CLI = {
    "async-executor": ("run", "--metrics-port", "0"),
    "coroutine-scheduler": ("demo", "--coroutines", "2", "--slices", "1", "--metrics-port", "0"),
    "perf-bench": (
        "run",
        "--suite",
        "python",
        "--quick",
        "--bench",
        "dict_get",
        "--metrics-port",
        "0",
    ),
}
#: Exit status and message prefix of each CLI when metrics cannot be served.
METRICS_CLI_ERROR = {
    "async-executor": (69, "async-executor: "),
    "coroutine-scheduler": (69, "coroutine-scheduler demo: "),
    "perf-bench": (2, "perf-bench: error: "),
}


def build_decoy(where: Path) -> Path:
    """A wheel of a distribution called ``async-executor`` with its own ``async_executor`` module.

    It stands for the unrelated project published under that name: a resolver that confused the
    two would install it for perf-bench's dependency.
    """
    src = where / "decoy"
    (src / "async_executor").mkdir(parents=True)
    (src / "async_executor" / "__init__.py").write_text("DECOY = True\n")
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
        '[project]\nname = "async-executor"\nversion = "0.1.2"\n'
        '[tool.hatch.build.targets.wheel]\npackages = ["async_executor"]\n'
    )
    out = where / "links"
    build = [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)]
    subprocess.run(
        [*build, str(src)],
        check=True,
        capture_output=True,
    )
    return out


@pytest.mark.slow
def test_perf_bench_by_name_chooses_our_siblings_over_a_decoy(
    dist_dir: Path, tmp_path: Path
) -> None:
    """Installed by name from a folder that also offers a decoy ``async-executor``, perf-bench
    pulls in vmkit-async-executor and vmkit-coroutine-scheduler, and its VM suite imports them."""
    links = build_decoy(tmp_path)
    for package in PACKAGES:
        shutil.copy(wheel_of(dist_dir, package), links)
    python = make_venv(tmp_path / "venv")
    uv = shutil.which("uv")
    if uv:
        cmd = [uv, "pip", "install", "-q", "--python", str(python), "--find-links", str(links)]
    else:
        cmd = [str(python), "-m", "pip", "install", "-q", "--find-links", str(links)]
    subprocess.run([*cmd, "vmkit-perf-bench"], check=True)

    present = installed_distributions(python)
    assert {distribution(p) for p in PACKAGES} <= present
    assert "async-executor" not in present, "the decoy was installed"
    probe = (
        "import importlib.util as u\n"
        "import vmkit.perf_bench.suites.vm as vm\n"
        "assert u.find_spec('async_executor') is None\n"
        "print(sorted(b.name for b in vm.build_suite().benchmarks)[:1])\n"
    )
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


BUNDLED_NOTICES = {
    "async-executor": ("THIRD-PARTY-NOTICES.md", "LICENSES-LGPL-2.1.txt"),
    "perf-bench": ("THIRD-PARTY-NOTICES.md", "LICENSES-LGPL-2.1.txt"),
}


@pytest.mark.parametrize("package", PACKAGES)
def test_licence_ships_in_wheel_and_sdist(package: str, tmp_path: Path) -> None:
    """The MIT licence travels with every wheel and sdist, identical to the repository's."""
    import tarfile
    import zipfile

    licence = (ROOT / "LICENSE").read_bytes()
    assert (ROOT / "packages" / package / "LICENSE").read_bytes() == licence
    out = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out)],
        cwd=ROOT / "packages" / package,
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        shipped = [n for n in zf.namelist() if n.endswith("licenses/LICENSE")]
        assert shipped, f"no LICENSE in {wheel.name}"
        assert zf.read(shipped[0]) == licence
        assert not any(n.startswith("vmkit/__init__") for n in zf.namelist())
    (sdist,) = out.glob("*.tar.gz")
    with tarfile.open(sdist) as tf:
        member = next(m for m in tf.getmembers() if m.name.endswith("/LICENSE"))
        handle = tf.extractfile(member)
        assert handle is not None
        assert handle.read() == licence
        in_sdist = {m.name.split("/", 1)[1] for m in tf.getmembers() if "/" in m.name}
    # Bundled guest binaries link glibc statically: its licence and the notice saying where its
    # source is and how to relink travel with them, in the wheel and the sdist.
    notices = BUNDLED_NOTICES.get(package, ())
    with zipfile.ZipFile(wheel) as zf:
        licences = {n.rsplit("/", 1)[-1] for n in zf.namelist() if "/licenses/" in n}
    assert set(notices) <= licences, f"{wheel.name} lacks {set(notices) - licences}"
    assert set(notices) <= in_sdist
    # Every file of this package its README names is in the sdist.
    readme = (ROOT / "packages" / package / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(rf"packages/{package}/([\w./-]+\w)", readme))
    named |= {
        link
        for link in re.findall(r"\]\(([^)#]+)\)", readme)
        if not link.startswith(("http", "/", "../", "mailto:"))
    }
    missing = sorted(n for n in named if not any(m == n or m.startswith(n + "/") for m in in_sdist))
    assert not missing, f"README of {package} names files its sdist lacks: {missing}"
