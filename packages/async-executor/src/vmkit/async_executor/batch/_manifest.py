"""Batch manifests: the jobs of a batch, read from JSON Lines or TOML.

A job names a program and how to run it; everything but ``program`` is optional:

``program`` (path, relative to the manifest's directory), ``args`` (list), ``argv0`` (default:
the program's file name), ``stdin`` (text), ``env`` (mapping; default empty), ``root`` (the
guest root, relative to the manifest; default: a fresh empty directory per job), ``engine``
(``interp``, ``jit``, ``hybrid``, ``native``; default the batch's), ``max_instructions``,
``wall_seconds``, ``expected_stdout``, ``expected_status`` and ``id`` (default: its position).

JSON Lines: one object per line (blank lines and lines starting with ``#`` are skipped). TOML:
an array of tables, ``[[job]]``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ENGINE_NAMES", "Job", "ManifestError", "load_manifest", "parse_job"]

ENGINE_NAMES = ("interp", "jit", "hybrid", "native")
_FIELDS = {
    "id",
    "program",
    "args",
    "argv0",
    "stdin",
    "env",
    "root",
    "engine",
    "max_instructions",
    "wall_seconds",
    "expected_stdout",
    "expected_status",
}


class ManifestError(ValueError):
    """A manifest that cannot be read, naming the file, the line or job, and the problem."""


@dataclass(frozen=True, slots=True)
class Job:
    """One guest program to run, and what it should give."""

    id: str
    program: str
    args: tuple[str, ...] = ()
    argv0: str | None = None
    stdin: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    root: str | None = None
    engine: str | None = None
    max_instructions: int | None = None
    wall_seconds: float | None = None
    expected_stdout: str | None = None
    expected_status: int | None = None

    @property
    def key(self) -> str:
        """What identifies this job in a results file (resume skips jobs whose key is there):
        its id and a digest of everything that defines it."""
        spec = json.dumps(self.to_json(), sort_keys=True).encode()
        return f"{self.id}:{hashlib.sha256(spec).hexdigest()[:16]}"

    def to_json(self) -> dict[str, Any]:
        """The job as JSON-ready data (what workers receive)."""
        return {
            "id": self.id,
            "program": self.program,
            "args": list(self.args),
            "argv0": self.argv0,
            "stdin": self.stdin,
            "env": dict(self.env),
            "root": self.root,
            "engine": self.engine,
            "max_instructions": self.max_instructions,
            "wall_seconds": self.wall_seconds,
            "expected_stdout": self.expected_stdout,
            "expected_status": self.expected_status,
        }


def _typed(where: str, data: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = data.get(name)
    if value is not None and not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ManifestError(f"{where}: {name!r} must be {names}, got {value!r}")
    return value


def parse_job(data: Any, where: str, base: Path, position: int) -> Job:
    """A :class:`Job` from one manifest entry (``where`` names it in errors)."""
    if not isinstance(data, Mapping):
        raise ManifestError(f"{where}: a job must be an object, got {data!r:.60}")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ManifestError(f"{where}: unknown field(s) {', '.join(unknown)}")
    program = _typed(where, data, "program", str)
    if not program:
        raise ManifestError(f"{where}: 'program' is required")
    args = _typed(where, data, "args", list) or []
    if not all(isinstance(a, str) for a in args):
        raise ManifestError(f"{where}: 'args' must be a list of strings")
    env = _typed(where, data, "env", dict) or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise ManifestError(f"{where}: 'env' must map strings to strings")
    engine = _typed(where, data, "engine", str)
    if engine is not None and engine not in ENGINE_NAMES:
        raise ManifestError(f"{where}: engine must be one of {', '.join(ENGINE_NAMES)}")
    budget = _typed(where, data, "max_instructions", int)
    wall = _typed(where, data, "wall_seconds", (int, float))
    status = _typed(where, data, "expected_status", int)
    for name, value in (("max_instructions", budget), ("wall_seconds", wall)):
        if value is not None and (isinstance(value, bool) or value <= 0):
            raise ManifestError(f"{where}: {name!r} must be positive, got {value!r}")
    root = _typed(where, data, "root", str)
    job_id = data.get("id", str(position))
    if not isinstance(job_id, (str, int)) or isinstance(job_id, bool):
        raise ManifestError(f"{where}: 'id' must be a string or a number")
    return Job(
        id=str(job_id),
        program=os.fspath(base / program),
        args=tuple(args),
        argv0=_typed(where, data, "argv0", str),
        stdin=_typed(where, data, "stdin", str) or "",
        env=dict(env),
        root=None if root is None else os.fspath(base / root),
        engine=engine,
        max_instructions=budget,
        wall_seconds=None if wall is None else float(wall),
        expected_stdout=_typed(where, data, "expected_stdout", str),
        expected_status=status,
    )


def load_manifest(path: str | os.PathLike[str]) -> list[Job]:
    """Every job of the manifest at ``path`` (``.toml``: TOML; anything else: JSON Lines).

    Raises:
        ManifestError: unreadable file, bad syntax, a bad job, or two jobs with the same id.
    """
    manifest = Path(path)
    base = manifest.resolve().parent
    try:
        text = manifest.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read manifest {manifest}: {exc}") from exc
    entries: Sequence[tuple[str, Any]]
    if manifest.suffix == ".toml":
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ManifestError(f"{manifest}: {exc}") from exc
        jobs = data.get("job", [])
        if not isinstance(jobs, list):
            raise ManifestError(f"{manifest}: jobs are an array of tables, [[job]]")
        entries = [(f"{manifest} job {i + 1}", job) for i, job in enumerate(jobs)]
    else:
        found = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                found.append((f"{manifest}:{number}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise ManifestError(f"{manifest}:{number}: not JSON: {exc.msg}") from exc
        entries = found
    result = [parse_job(data, where, base, i) for i, (where, data) in enumerate(entries)]
    seen: dict[str, str] = {}
    for (where, _), job in zip(entries, result, strict=True):
        if job.id in seen:
            raise ManifestError(f"{where}: id {job.id!r} is also used at {seen[job.id]}")
        seen[job.id] = where
    return result
