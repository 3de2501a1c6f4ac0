"""Fixtures for every async-executor test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_code_cache_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Code caches are signed with a per-user key kept in the user's configuration directory;
    tests use a key in a temporary directory instead, so they never create or read the real one."""
    folder = tmp_path_factory.mktemp("vmkit-config")
    folder.chmod(0o700)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VMKIT_CODE_CACHE_KEY", str(folder / "code-cache.key"))
        # The native tier caches compiled regions on disk by default; tests that want it pass
        # their own directory, the rest compile as if the cache were empty (and write nothing).
        patch.setenv("VMKIT_NATIVE_CACHE", "off")
        yield


@pytest.fixture(scope="session")
def _worker_native_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("native-cache")
    folder.chmod(0o700)
    return str(folder)


@pytest.fixture
def oracle_native_cache(_worker_native_cache: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """One native disk cache for the whole-program oracle tests of this test process: the same
    guest programs run under several native configurations and in several modules, and a region
    compiled once (for real, by the first of them) is linked from the cache by the others, as on
    a user's machine. What each test checks, the program's output and status against
    qemu-riscv64, does not depend on where the machine code came from; the cache's own tests
    check that a linked region is the compiled one."""
    monkeypatch.setenv("VMKIT_NATIVE_CACHE", _worker_native_cache)
    return _worker_native_cache
