"""Each package is stands alone: its wheel installs alone in a fresh virtualenv and works."""

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


def source_version(package: str) -> str:
    """The version written in the package's own __about__.py."""
    about = ROOT / "packages" / package / "src" / package.replace("-", "_") / "__about__.py"
    match = re.search(r'__version__ = "([^"]+)"', about.read_text())
    assert match, f"no __version__ in {about}"
    return match.group(1)


def wheel_of(dist: Path, package: str) -> Path:
    """The one wheel of `package` in `dist`."""
    wheels = sorted(dist.glob(f"{package.replace('-', '_')}-*.whl"))
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

        module = package.replace("-", "_")
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
        unexpected = (set(PACKAGES) - {package} - set(SIBLINGS[package])) & present
        assert not unexpected, f"installing {package} pulled in {unexpected}"
