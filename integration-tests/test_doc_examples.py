"""Every Python example in the READMEs and docs runs, as written, in a fresh interpreter.

An example a reader copies must work: each fenced ``python`` block is run in its own process
from an empty working directory. A block that is not a program (a signature, one line of
generated code, an outline) says so just above its fence with
``<!-- doc-example: fragment (why) -->``; it is then only compiled, so it still has to be
Python.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(
    [ROOT / "README.md", *(ROOT / "packages").glob("*/README.md"), *(ROOT / "docs").rglob("*.md")]
)
_FENCE = re.compile(
    r"(?:<!-- doc-example: fragment \((?P<why>[^)]*)\) -->\n)?```python\n(?P<code>.*?)^```",
    re.S | re.M,
)


def _examples() -> list[tuple[str, str, str | None]]:
    found = []
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            line = text.count("\n", 0, match.start("code")) + 1
            where = f"{path.relative_to(ROOT)}:{line}"
            found.append((where, match.group("code"), match.group("why")))
    return found


EXAMPLES = _examples()


def test_examples_were_found() -> None:
    runnable = [e for e in EXAMPLES if e[2] is None]
    assert len(runnable) >= 5, [e[0] for e in EXAMPLES]


@pytest.mark.parametrize(("where", "code", "fragment"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_example_runs(where: str, code: str, fragment: str | None, tmp_path: Path) -> None:
    if fragment is not None:
        compile(code, where, "exec")  # a fragment is still valid Python
        return
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{where} failed:\n{done.stdout}\n{done.stderr}"
