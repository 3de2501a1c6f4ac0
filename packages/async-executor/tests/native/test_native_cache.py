"""The native tier's on-disk code cache (engine/native/_cache.py).

A warm start links every region from the cache and compiles none, with results identical to a
cold run and to the interpreter; every kind of bad entry or directory is ignored with one warning
while the guest still runs correctly; nothing is written outside the cache directory.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("llvmlite", reason="the native tier needs the [native] extra")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "jit"))
from jit_support import (
    BASE,
    COUNTER,
    DATA_BASE,
    EXIT,
    _outcome,
    _prepare,
    alu_instruction,
    enc,
    mem_instruction,
    register_value,
    words,
)

from vmkit.async_executor import samples
from vmkit.async_executor._logging import capture_events
from vmkit.async_executor.engine import InterpreterExecutor
from vmkit.async_executor.engine._signing import mac, user_key
from vmkit.async_executor.engine.native import NativeCodeCache, NativeExecutor, _cache
from vmkit.async_executor.engine.native._executor import NativeStats
from vmkit.async_executor.isa._decode import FULL_DECODER, decoder_for
from vmkit.async_executor.isa._isa import Isa
from vmkit.async_executor.loader import load_program

PROGRAM = ("crc32", "3000")
THRESHOLD = 20


@dataclass
class Run:
    status: int
    out: bytes
    instret: int
    stats: NativeStats


def _run(cache: Any, program: tuple[str, ...] = PROGRAM) -> Run:
    """Run a bundled sample under the native engine with ``cache``."""
    name, *args = program
    with tempfile.TemporaryFile() as out:
        stdio = (0, out.fileno(), 2)
        machine = load_program(samples.path(name), [name, *args], env={}, stdio=stdio)
        try:
            ex = NativeExecutor(machine, threshold=THRESHOLD, cache=cache)
            status = ex.run(machine)
        finally:
            machine.linux.close()
        out.seek(0)
        return Run(status, out.read(), machine.hart.instret, ex.native_stats)


@pytest.fixture(scope="module")
def reference() -> Run:
    """The same program with no cache at all."""
    return _run(False)


def _entries(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.region"))


def _events(logs: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == event]


def _warnings(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["log_level"] == "warning"]


def _same(run: Run, reference: Run) -> None:
    assert run.status == reference.status
    assert run.out == reference.out
    assert run.instret == reference.instret


@pytest.fixture
def fresh_fingerprint() -> Iterator[None]:
    """Tests that fake another translator recompute the fingerprint before and after."""
    _cache.code_fingerprint.cache_clear()
    yield
    _cache.code_fingerprint.cache_clear()


# ---------------------------------------------------------------------- warm starts


def test_warm_start_compiles_nothing(tmp_path: Path, reference: Run) -> None:
    cold = _run(NativeCodeCache(tmp_path))
    assert cold.stats.regions > 1
    assert cold.stats.cached == 0
    assert len(_entries(tmp_path)) == cold.stats.regions
    _same(cold, reference)
    # A new cache object: nothing but the directory carries over, as in a new process.
    with capture_events() as logs:
        warm = _run(NativeCodeCache(tmp_path))
    assert _warnings(logs) == []
    assert warm.stats.regions == 0
    assert warm.stats.cached == cold.stats.regions
    assert warm.stats.compile_seconds == 0
    assert warm.stats.compile_seconds_saved == pytest.approx(cold.stats.compile_seconds)
    assert warm.stats.instructions == cold.stats.instructions
    _same(warm, reference)


def test_warm_start_in_a_new_process(tmp_path: Path, reference: Run) -> None:
    """Through the command line, twice: the second process compiles nothing."""
    cache = tmp_path / "cache"

    def run() -> dict[str, Any]:
        name, *args = PROGRAM
        proc = subprocess.run(
            [
                *(sys.executable, "-m", "vmkit.async_executor", "run", "--engine", "native"),
                *("--jit-threshold", str(THRESHOLD), "--native-cache", str(cache)),
                *("--stats", "--stats-format", "json", str(samples.path(name)), *args),
            ],
            capture_output=True,
            env={**os.environ, "VMKIT_NATIVE_CACHE": "off"},  # the option decides
            check=False,
        )
        assert proc.returncode == reference.status
        assert proc.stdout == reference.out
        stats: dict[str, Any] = json.loads(proc.stderr.splitlines()[-1])
        return stats

    cold_run, warm_run = run(), run()
    # (The guest's environment is the host's here, so its count differs from the reference's.)
    assert cold_run["instructions"] == warm_run["instructions"]
    cold, warm = cold_run["native"], warm_run["native"]
    assert cold["regions"] > 1
    assert cold["cached"] == 0
    assert warm["regions"] == 0
    assert warm["cached"] == cold["regions"]
    assert warm["compile_seconds_saved"] > 0


def test_no_native_cache_reads_and_writes_nothing(tmp_path: Path) -> None:
    assert _run(NativeCodeCache(tmp_path)).stats.regions > 0
    name, *args = PROGRAM
    from vmkit.async_executor.cli import main

    before = sorted(tmp_path.iterdir())
    status = main(
        ["run", "--engine", "native", "--no-native-cache", str(samples.path(name)), *args]
    )
    assert status == 0
    assert sorted(tmp_path.iterdir()) == before


def test_default_directory_and_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """By default the cache lives under $XDG_CACHE_HOME; VMKIT_NATIVE_CACHE=off disables it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("VMKIT_NATIVE_CACHE")
    default = tmp_path / "xdg" / "vmkit" / "native"
    assert _cache.default_cache_dir() == default
    # A cache object of its own (the process-wide one for this path may be shared).
    monkeypatch.setattr(_cache, "_shared", {})
    run = _run(None)
    assert run.stats.regions > 0
    assert len(_entries(default)) == run.stats.regions
    assert stat.S_IMODE(default.stat().st_mode) == 0o700
    monkeypatch.setenv("VMKIT_NATIVE_CACHE", "off")
    assert _cache.resolve_cache(None) is None
    monkeypatch.setenv("VMKIT_NATIVE_CACHE", str(tmp_path / "elsewhere"))
    cache = _cache.resolve_cache(None)
    assert cache is not None
    assert cache.directory == tmp_path / "elsewhere"
    assert _cache.resolve_cache(False) is None


def test_nothing_is_written_outside_the_cache_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference: Run
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    cache = tmp_path / "cache"
    key_dir = Path(os.environ["VMKIT_CODE_CACHE_KEY"]).parent
    keys_before = sorted(key_dir.iterdir())
    monkeypatch.chdir(tmp_path)  # the guest's root and cwd: a stray relative path lands here
    here = _run(False)
    _same(here, Run(reference.status, reference.out, here.instret, here.stats))
    for _ in range(2):
        _same(_run(NativeCodeCache(cache)), here)
    written = set(tmp_path.rglob("*"))
    assert written == {cache, home, *_entries(cache)}
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in _entries(cache))
    # The key is the only thing that may appear beside it (made on first use).
    assert set(key_dir.iterdir()) - set(keys_before) <= {Path(os.environ["VMKIT_CODE_CACHE_KEY"])}


# ---------------------------------------------------------------------- bad entries


def _flip_object_byte(entry: Path) -> None:
    data = bytearray(entry.read_bytes())
    data[-100] ^= 0x01  # inside the object code
    entry.write_bytes(bytes(data))


def _truncate(entry: Path) -> None:
    data = entry.read_bytes()
    entry.write_bytes(data[: len(data) // 2])


def _empty(entry: Path) -> None:
    entry.write_bytes(b"")


def _forge(entry: Path) -> None:
    """A well-formed entry signed with some other key: the MAC gives it away."""
    data = entry.read_bytes()
    payload = data[len(_cache._TAG) + 32 :]
    entry.write_bytes(_cache._TAG + mac(b"k" * 32, _cache._TAG, payload) + payload)


def _signed_garbage(entry: Path) -> None:
    """Authenticated (as if this user's cache wrote it) but not a valid record."""
    payload = (5).to_bytes(4, "little") + b"{oops" + b"\x90" * 64
    entry.write_bytes(_cache._TAG + mac(user_key(), _cache._TAG, payload) + payload)


def _group_writable(entry: Path) -> None:
    entry.chmod(0o662)


def _symlink(entry: Path) -> None:
    """A link to a genuine entry kept outside: links in the directory are never followed."""
    outside = entry.parent.parent / "outside.region"
    entry.rename(outside)
    entry.symlink_to(outside)


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "corrupt": (_flip_object_byte, "not written with this user's key"),
    "truncated": (_truncate, "not written with this user's key"),
    "empty": (_empty, "not a native cache entry"),
    "forged": (_forge, "not written with this user's key"),
    "signed-garbage": (_signed_garbage, "corrupt"),
    "group-writable": (_group_writable, "writable by group or others"),
    "symlink": (_symlink, "unreadable"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_bad_entry_is_ignored_with_one_warning(damage: str, tmp_path: Path, reference: Run) -> None:
    cache = tmp_path / "cache"
    cold = _run(NativeCodeCache(cache))
    entries = _entries(cache)
    hurt, reason = DAMAGE[damage]
    hurt(entries[0])
    with capture_events() as logs:
        run = _run(NativeCodeCache(cache))
    _same(run, reference)
    warnings = _warnings(logs)
    assert [w["event"] for w in warnings] == ["native_code_cache_ignored"]
    assert reason in warnings[0]["reason"]
    assert warnings[0]["entry"] == entries[0].name
    # That region was compiled afresh and its entry replaced; the others came from the cache.
    assert (run.stats.regions, run.stats.cached) == (1, cold.stats.regions - 1)
    assert not entries[0].is_symlink()
    again = _run(NativeCodeCache(cache))
    assert (again.stats.regions, again.stats.cached) == (0, cold.stats.regions)
    _same(again, reference)


def test_every_bad_entry_warns_once_per_reason(tmp_path: Path, reference: Run) -> None:
    cold = _run(NativeCodeCache(tmp_path))
    for entry in _entries(tmp_path):
        _truncate(entry)
    with capture_events() as logs:
        run = _run(NativeCodeCache(tmp_path))
    _same(run, reference)
    assert len(_warnings(logs)) == 1
    assert len(_events(logs, "native_code_cache_ignored")) == cold.stats.regions
    assert run.stats.regions == cold.stats.regions


def test_an_entry_for_other_guest_bytes_is_refused(tmp_path: Path, reference: Run) -> None:
    """A genuine entry under another region's name (copied or renamed): the key inside differs."""
    cold = _run(NativeCodeCache(tmp_path))
    first, second, *_ = _entries(tmp_path)
    first.write_bytes(second.read_bytes())
    with capture_events() as logs:
        run = _run(NativeCodeCache(tmp_path))
    _same(run, reference)
    (warning,) = _warnings(logs)
    assert warning["reason"] == "made for other guest bytes"
    assert (run.stats.regions, run.stats.cached) == (1, cold.stats.regions - 1)


def test_an_entry_from_another_translator_version_is_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_fingerprint: None, reference: Run
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(_cache, "NATIVE_TRANSLATOR_VERSION", _cache.NATIVE_TRANSLATOR_VERSION + 1)
        _cache.code_fingerprint.cache_clear()
        cold = _run(NativeCodeCache(tmp_path))
    _cache.code_fingerprint.cache_clear()
    with capture_events() as logs:
        run = _run(NativeCodeCache(tmp_path))
    _same(run, reference)
    (warning,) = _warnings(logs)
    assert warning["reason"] == "made by another translator: stale"
    assert (run.stats.regions, run.stats.cached) == (cold.stats.regions, 0)
    # The stale entries were replaced, not left beside the new ones.
    assert len(_entries(tmp_path)) == cold.stats.regions
    assert _run(NativeCodeCache(tmp_path)).stats.cached == cold.stats.regions


def test_an_entry_from_another_host_cpu_is_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_fingerprint: None, reference: Run
) -> None:
    real = _cache.host_description
    monkeypatch.setattr(_cache, "host_description", lambda: {**real(), "cpu": "other-cpu"})
    _run(NativeCodeCache(tmp_path))
    monkeypatch.setattr(_cache, "host_description", real)
    _cache.code_fingerprint.cache_clear()
    with capture_events() as logs:
        run = _run(NativeCodeCache(tmp_path))
    _same(run, reference)
    assert [w["reason"] for w in _warnings(logs)] == ["made by another cpu: stale"]
    assert run.stats.cached == 0


def test_patched_guest_code_never_runs_old_native_code(tmp_path: Path) -> None:
    """The same loop at the same addresses with one immediate changed: no entry matches, the
    region is compiled for the new bytes, and both agree with the interpreter."""

    def program(step: int) -> bytes:
        body = words(
            enc("ld", 5, BASE, 0, 0),
            enc("addi", 5, 5, imm=step),
            enc("sd", 0, BASE, 5, 0),
            enc("addi", BASE, BASE, imm=8),
        )
        back = len(body) + 4
        tail = words(enc("addi", COUNTER, COUNTER, imm=-1), enc("bne", 0, COUNTER, 0, -back))
        return body + tail + words(*EXIT)

    state = {BASE: DATA_BASE, COUNTER: 100}
    data = bytes(range(256)) * 8
    for step, compiled in ((3, True), (3, False), (-7, True)):
        m = _prepare(program(step), state, data, False)
        ref = _outcome(m, InterpreterExecutor(m).run(m))
        m = _prepare(program(step), state, data, False)
        ex = NativeExecutor(m, threshold=1, cache=NativeCodeCache(tmp_path))
        with capture_events() as logs:
            assert _outcome(m, ex.run(m)) == ref
        assert _warnings(logs) == []
        assert ex.native_stats.instructions > 0
        if compiled:  # (the region of the unchanged code after the loop may come from the cache)
            assert ex.native_stats.regions > 0
        else:
            assert ex.native_stats.regions == 0
            assert ex.native_stats.cached > 0


@settings(
    max_examples=int(os.environ.get("NATIVE_EXAMPLES", "20")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(
    st.lists(st.one_of(alu_instruction(), mem_instruction()), min_size=1, max_size=10),
    st.integers(1, 6),
    st.data(),
)
def test_random_loops_cold_and_warm_match_the_interpreter(
    body: list[bytes], count: int, data: st.DataObject
) -> None:
    """Random RV64IM loops: compiled and stored, then linked from the cache, both exactly the
    interpreter's registers, memory, pc and instret."""
    x = {r: data.draw(register_value) for r in range(1, 16)}
    x[BASE] = DATA_BASE + 0x2000
    x[COUNTER] = count
    code = b"".join(body)
    back = len(code) + 4
    code += words(enc("addi", COUNTER, COUNTER, imm=-1), enc("bne", 0, COUNTER, 0, -back))
    code += words(*EXIT)
    memory = bytes(range(256)) * 64
    m = _prepare(code, x, memory, False)
    ref = _outcome(m, InterpreterExecutor(m).run(m))
    with tempfile.TemporaryDirectory() as directory:
        for warm in (False, True):
            m = _prepare(code, x, memory, False)
            ex = NativeExecutor(m, threshold=1, cache=NativeCodeCache(directory))
            assert _outcome(m, ex.run(m)) == ref
            assert (ex.native_stats.regions == 0) is warm
            assert (ex.native_stats.cached > 0) is warm


def test_region_digest_covers_what_the_code_depends_on() -> None:
    blocks = [(0x1000, [(0x1000, None, 0x00000013), (0x1004, None, 0x00A00093)], 0x1008)]
    base = _cache.region_digest(blocks, FULL_DECODER)
    other_pc = [(0x2000, [(0x2000, None, 0x13), (0x2004, None, 0x00A00093)], 0x2008)]
    other_raw = [(0x1000, [(0x1000, None, 0x13), (0x1004, None, 0x00B00093)], 0x1008)]
    other_end = [(0x1000, [(0x1000, None, 0x13), (0x1004, None, 0x00A00093)], 0x100C)]
    rv64i = decoder_for(Isa(frozenset({"I", "Zifencei"})))
    digests = {
        base,
        _cache.region_digest(other_pc, FULL_DECODER),
        _cache.region_digest(other_raw, FULL_DECODER),
        _cache.region_digest(other_end, FULL_DECODER),
        _cache.region_digest(blocks, rv64i),
    }
    assert len(digests) == 5
    assert _cache.region_digest(list(blocks), FULL_DECODER) == base


# ---------------------------------------------------------------------- bad directories


def test_directory_writable_by_others_is_not_used(tmp_path: Path, reference: Run) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o777)
    with capture_events() as logs:
        run = _run(NativeCodeCache(cache))
    _same(run, reference)
    (warning,) = _warnings(logs)
    assert warning["event"] == "native_code_cache_disabled"
    assert "writable by group or others" in warning["reason"]
    assert run.stats.regions > 0
    assert list(cache.iterdir()) == []


def test_directory_of_another_user_is_not_used(tmp_path: Path, reference: Run) -> None:
    if os.geteuid() == 0:
        cache = tmp_path / "cache"
        cache.mkdir(mode=0o755)
        os.chown(cache, 65534, 65534)
    else:
        cache = Path("/")  # root's, whoever runs the tests
        assert cache.stat().st_uid != os.geteuid()
    before = sorted(cache.iterdir())
    with capture_events() as logs:
        run = _run(NativeCodeCache(cache))
    _same(run, reference)
    (warning,) = _warnings(logs)
    assert warning["event"] == "native_code_cache_disabled"
    assert warning["reason"] == "owned by another user"
    assert sorted(cache.iterdir()) == before


def test_unwritable_directory_is_read_but_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference: Run
) -> None:
    cache = tmp_path / "cache"
    cold = _run(NativeCodeCache(cache))
    first = _entries(cache)[0]
    first.unlink()  # one region will have to be compiled, and cannot be stored
    cache.chmod(0o500)
    if os.geteuid() == 0:  # root writes anywhere: make creating files there fail as it would
        real_open = os.open

        def refuse(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
            if flags & os.O_CREAT and kwargs.get("dir_fd") is not None:
                raise PermissionError(13, "Permission denied")
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(_cache.os, "open", refuse)
    try:
        with capture_events() as logs:
            run = _run(NativeCodeCache(cache))
    finally:
        cache.chmod(0o700)
    _same(run, reference)
    (warning,) = _warnings(logs)
    assert warning["event"] == "native_code_cache_unwritable"
    assert (run.stats.regions, run.stats.cached) == (1, cold.stats.regions - 1)
    assert not first.exists()
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".region")] == []


def test_missing_directory_that_cannot_be_made(tmp_path: Path, reference: Run) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with capture_events() as logs:
        run = _run(NativeCodeCache(blocker / "cache"))
    _same(run, reference)
    (warning,) = _warnings(logs)
    assert warning["event"] == "native_code_cache_disabled"


def test_the_hybrids_native_tier_uses_the_cache_too(tmp_path: Path) -> None:
    """``--native-cache`` reaches the hybrid's native tier: its second process links every
    region it compiles natively from the cache."""
    cache = tmp_path / "cache"

    def run() -> tuple[bytes, dict[str, Any]]:
        name, *args = PROGRAM
        proc = subprocess.run(
            [
                *(sys.executable, "-m", "vmkit.async_executor", "run", "--engine", "hybrid"),
                *("--native", "--native-threshold", "1", "--native-warmup", "0"),
                *("--native-cache", str(cache), "--stats", "--stats-format", "json"),
                *(str(samples.path(name)), *args),
            ],
            capture_output=True,
            env={**os.environ, "VMKIT_NATIVE_CACHE": "off"},  # the option decides
            check=True,
        )
        stats: dict[str, Any] = json.loads(proc.stderr.splitlines()[-1])
        return proc.stdout, stats

    (cold_out, cold), (warm_out, warm) = run(), run()
    assert cold_out == warm_out
    assert cold["native"]["regions"] > 0
    assert cold["native"]["cached"] == 0
    assert warm["native"]["regions"] == 0
    assert warm["native"]["cached"] == cold["native"]["regions"]
    assert len(_entries(cache)) == cold["native"]["regions"]
