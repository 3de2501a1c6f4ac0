"""Batches of guest programs: one warm worker process per core runs many guests.

``load_manifest`` reads the jobs (JSON Lines or TOML), ``run_batch`` runs them on a pool of
local worker processes (or as tasks on a Ray cluster, with the ``[ray]`` extra) with results
streamed to a JSON Lines file (resumable), and ``write_junit`` turns results into JUnit XML.
``async-executor batch`` is the command line.
"""

from __future__ import annotations

from vmkit.async_executor.batch._batch import (
    BatchPool,
    BatchSummary,
    finished_keys,
    open_pool,
    run_batch,
    write_junit,
)
from vmkit.async_executor.batch._manifest import Job, ManifestError, load_manifest
from vmkit.async_executor.batch._pool import LocalPool
from vmkit.async_executor.batch._ray import RayPool, RayUnavailableError
from vmkit.async_executor.batch._worker import JobRunner

__all__ = [
    "BatchPool",
    "BatchSummary",
    "Job",
    "JobRunner",
    "LocalPool",
    "ManifestError",
    "RayPool",
    "RayUnavailableError",
    "finished_keys",
    "load_manifest",
    "open_pool",
    "run_batch",
    "write_junit",
]
