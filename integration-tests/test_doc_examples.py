"""Every Python example in the READMEs and docs runs, as written, in a fresh interpreter.

A reader copies an example into a file and runs it, usually from some unrelated directory; if that
fails, the documentation is wrong however good the prose around it is. So each fenced ``python``
block of README.md, packages/*/README.md and docs/**/*.md runs in its own process, from an empty
working directory, and must exit with status 0.

A block that is not a program by nature (a signature, a line of generated code, an excerpt of a
module) says so on the line just above its fence::

    <!-- doc-example: fragment (why it cannot run) -->

It is then only compiled, so it still has to be Python, and the test reports it as skipped with
that reason. Shell and console blocks are not run.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(
    [ROOT / "README.md", *(ROOT / "packages").glob("*/README.md"), *(ROOT / "docs").rglob("*.md")]
)
# Generous for a slow CI machine: the longest example takes about a second here.
TIMEOUT_SECONDS = 120

_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[^\s`{]*)")
_MARKER = re.compile(r"<!--\s*doc-example\b")
_FRAGMENT = re.compile(r"^<!-- doc-example: fragment \((?P<why>.+)\) -->$")


@dataclass(frozen=True)
class Block:
    """One fenced block of a markdown file."""

    path: Path
    line: int  # of the opening fence, as an editor or grep -n shows it
    lang: str
    code: str = field(repr=False)
    above: str  # the line just above the opening fence, where a marker goes

    @property
    def where(self) -> str:
        """``docs/metrics.md:42``: the test's id, and where to look when it fails."""
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    i = 0
    while i < len(lines):
        opening = _OPEN.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        end = i + 1
        while end < len(lines) and not (
            lines[end].strip().startswith(fence) and lines[end].strip().strip(fence[0]) == ""
        ):
            end += 1
        # A fence inside a list item is indented; the code runs without that indent.
        code = "\n".join(line.removeprefix(indent) for line in lines[i + 1 : end]) + "\n"
        found.append(
            Block(
                path=path,
                line=i + 1,
                lang=opening["lang"].lower(),
                code=code,
                above=lines[i - 1].strip() if i > 0 else "",
            )
        )
        i = end + 1
    return found


BLOCKS = [block for path in SOURCES for block in _blocks(path)]
EXAMPLES = [block for block in BLOCKS if block.lang == "python"]


def test_examples_were_found() -> None:
    """The collector still finds the examples (a broken pattern would make every test vacuous)."""
    runnable = [b.where for b in EXAMPLES if not _FRAGMENT.match(b.above)]
    assert len(runnable) >= 5, [b.where for b in EXAMPLES]


def test_python_is_fenced_as_python() -> None:
    """Python is never fenced as ``py``, ``python3`` or ``pycon``, which this test would not run."""
    hidden = [b.where for b in BLOCKS if b.lang.startswith("py") and b.lang != "python"]
    assert not hidden, f"fence these as ```python so they run (or ```text): {hidden}"


def test_markers_sit_on_python_fences() -> None:
    """Every doc-example marker is well formed and directly above a ``python`` fence."""
    marked = {(b.path, b.line - 1) for b in EXAMPLES}
    stray = []
    for path in SOURCES:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if _MARKER.search(line) and not (
                _FRAGMENT.match(line.strip()) and (path, number) in marked
            ):
                stray.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not stray, "a marker that does nothing misleads the next reader:\n" + "\n".join(stray)


@pytest.mark.parametrize("block", EXAMPLES, ids=[b.where for b in EXAMPLES])
def test_example_runs(block: Block, tmp_path: Path) -> None:
    """The example exits with status 0 when run on its own from an empty directory."""
    # Leading blank lines make the line numbers of a traceback or a SyntaxError those of the
    # markdown file.
    source = "\n" * block.line + block.code
    fragment = _FRAGMENT.match(block.above)
    if fragment is not None:
        compile(source, block.where, "exec")
        pytest.skip(f"{block.where} is a fragment, compiled only: {fragment['why']}")
    script = tmp_path / (block.path.name + ".py")
    script.write_text(source, encoding="utf-8")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    try:
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=cwd,
            stdin=subprocess.DEVNULL,  # an example waiting for input fails instead of hanging
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as late:
        pytest.fail(
            f"{block.where} ran over {TIMEOUT_SECONDS} s\n"
            f"--- stdout\n{_text(late.stdout)}--- stderr\n{_text(late.stderr)}"
        )
    assert done.returncode == 0, (
        f"{block.where} exited with status {done.returncode}\n"
        f"--- stdout\n{done.stdout}--- stderr\n{done.stderr}"
    )


def _text(output: bytes | str | None) -> str:
    # On POSIX the partial output of a run that timed out comes back undecoded, even with text=True.
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""
