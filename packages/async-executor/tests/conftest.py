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
