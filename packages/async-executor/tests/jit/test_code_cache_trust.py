"""Code caches are code: only a cache written with this user's key ever runs (issue 19, item 13).

A crafted cache (its code objects would create a canary file on the host) with a recomputed
checksum, a cache signed with another key, any flipped bit, any truncation, a cache others can
write, a key others can read, records of the wrong shape under a valid signature, and files that
are not regular files: each is refused with a warning, and the run goes on without it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import marshal
import os
import pathlib
import stat

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jit_support import CODE_BASE, machine_with_code
from test_jit_aot import _built, _program

from vmkit.async_executor._logging import capture_events
from vmkit.async_executor.engine import _jit_aot
from vmkit.async_executor.engine._context import AsyncExecutionContext
from vmkit.async_executor.engine._jit import JitExecutor
from vmkit.async_executor.engine._signing import CacheTrustError, mac, user_key
from vmkit.async_executor.engine._translate import TRANSLATOR_VERSION

TAG = _jit_aot._TAG


def _load(path: pathlib.Path) -> tuple[int, list[dict[str, object]], int]:
    """(blocks offered, warnings, exit status of a run with the cache) on a fresh machine."""
    m = machine_with_code(_program())
    ctx = AsyncExecutionContext()
    with capture_events() as logs:
        offered = _jit_aot.load_code_cache(ctx, m.memory, path)
        status = JitExecutor(m, ctx).run()
    return offered, [e for e in logs if e["log_level"] == "warning"], status


def _evil_code(canary: pathlib.Path) -> object:
    source = f"def b(*a):\n    open({str(canary)!r}, 'w').write('pwned')\n    return 0\n"
    namespace: dict[str, object] = {}
    exec(compile(source, "<evil>", "exec"), namespace)
    return namespace["b"].__code__  # type: ignore[attr-defined]


def _evil_payload(canary: pathlib.Path) -> bytes:
    entry = (CODE_BASE, b"", _evil_code(canary), (), (CODE_BASE,), (), (16,), 1, 0, False, 0)
    entry += (((CODE_BASE, CODE_BASE + 4),), bytes(32))
    index = {CODE_BASE: marshal.dumps(entry)}
    return marshal.dumps((importlib.util.MAGIC_NUMBER, TRANSLATOR_VERSION, index))


class TestForgedCaches:
    def test_recomputed_checksum_is_refused_unread(self, tmp_path: pathlib.Path) -> None:
        canary = tmp_path / "canary"
        payload = _evil_payload(canary)
        forged = tmp_path / "forged.cache"
        forged.write_bytes(TAG + hashlib.sha256(payload).digest() + payload)
        forged.chmod(0o600)
        offered, warnings, status = _load(forged)
        assert offered == 0
        assert "this user's key" in str(warnings[0]["reason"])
        assert status == 31  # translated afresh
        assert not canary.exists()

    def test_another_key_is_refused(self, tmp_path: pathlib.Path) -> None:
        canary = tmp_path / "canary"
        payload = _evil_payload(canary)
        other = tmp_path / "other.cache"
        other.write_bytes(TAG + mac(os.urandom(32), TAG, payload) + payload)
        other.chmod(0o600)
        assert _load(other)[0] == 0
        assert not canary.exists()

    def test_valid_signature_with_malformed_records_is_harmless(
        self, tmp_path: pathlib.Path
    ) -> None:
        """Signed by this user's key but malformed (wrong types, spans, digests): every record
        is rejected before use and the run translates afresh, never exit 70."""
        bad_entries = [
            (1, 2, 3),
            (CODE_BASE, b"", None, (), (), (), (), 1, 0, False, 0, (), bytes(32)),
            (
                *_record(_evil_code(tmp_path / "c"), written=(99,)),
                ((CODE_BASE, CODE_BASE + 9),),  # a span longer than any instruction
                bytes(32),
            ),
            "not even a tuple",
        ]
        index = {CODE_BASE + 4 * i: marshal.dumps(e) for i, e in enumerate(bad_entries)}
        index[CODE_BASE + 100] = b"\xff not marshal"
        payload = marshal.dumps((importlib.util.MAGIC_NUMBER, TRANSLATOR_VERSION, index))
        path = tmp_path / "malformed.cache"
        path.write_bytes(TAG + mac(user_key(), TAG, payload) + payload)
        path.chmod(0o600)
        offered, _warnings, status = _load(path)
        assert offered == len(index)
        assert status == 31
        assert not (tmp_path / "c").exists()


def _record(code: object, *, written: tuple[int, ...]) -> tuple[object, ...]:
    """The first eleven fields of a block record (pc .. syscall line), then a digest slot."""
    return (CODE_BASE, b"", code, (), (), written, (), 1, 0, False, 0, bytes(32))[:11]


class TestCorruption:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.data())
    def test_any_flipped_bit_or_truncation_is_refused(self, data: st.DataObject) -> None:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = _built(pathlib.Path(tmp))
            raw = bytearray(path.read_bytes())
            if data.draw(st.booleans()):
                bit = data.draw(st.integers(0, 8 * len(raw) - 1))
                raw[bit // 8] ^= 1 << (bit % 8)
            else:
                del raw[data.draw(st.integers(0, len(raw) - 1)) :]
            path.write_bytes(bytes(raw))
            offered, warnings, status = _load(path)
        assert offered == 0
        assert warnings
        assert status == 31


class TestFilePermissions:
    def test_cache_writable_by_others_is_refused(self, tmp_path: pathlib.Path) -> None:
        path = _built(tmp_path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600  # written private
        assert _load(path)[0] > 0
        path.chmod(0o622)
        offered, warnings, _ = _load(path)
        assert offered == 0
        assert "writable by group or others" in str(warnings[0]["reason"])

    def test_key_readable_by_others_is_refused(self, tmp_path: pathlib.Path) -> None:
        path = _built(tmp_path)
        key = pathlib.Path(os.environ["VMKIT_CODE_CACHE_KEY"])
        key.chmod(0o644)
        try:
            with pytest.raises(CacheTrustError, match="group or others"):
                user_key()
            offered, warnings, _ = _load(path)
            assert offered == 0
            assert "code-cache key" in str(warnings[0]["reason"])
        finally:
            key.chmod(0o600)

    @pytest.mark.timeout(20)
    @pytest.mark.parametrize("kind", ["dev-zero", "fifo", "directory"])
    def test_non_regular_files_are_refused_at_once(self, kind: str, tmp_path: pathlib.Path) -> None:
        if kind == "dev-zero":
            path = pathlib.Path("/dev/zero")
        elif kind == "fifo":
            path = tmp_path / "fifo"
            os.mkfifo(path)
        else:
            path = tmp_path
        offered, warnings, status = _load(path)
        assert offered == 0
        assert warnings
        assert status == 31
