"""Shared fixtures: a capture of the scheduler's log events at debug level."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from vmkit.coroutine_scheduler._logging import capture_events


@pytest.fixture
def debug_log() -> Iterator[list[dict[str, Any]]]:
    """Debug logging on for the scheduler, every event captured as a dict."""
    with capture_events("vmkit.coroutine_scheduler") as events:
        yield events
