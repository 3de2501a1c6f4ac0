"""The value classes that replaced dataclasses on the start-up path keep dataclass behaviour."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys

import pytest

from vmkit.async_executor import GuestLimits
from vmkit.async_executor.engine._stats import ExecutionStats
from vmkit.async_executor.limits import LimitCounters
from vmkit.async_executor.machine._hooks import HookHandle, SyscallCall
from vmkit.async_executor.machine._machine import Termination


def test_frozen_records_compare_hash_and_refuse_assignment():
    a = Termination(0, "exit", message="done")
    b = Termination(0, "exit", message="done")
    assert a == b
    assert hash(a) == hash(b)
    assert a != Termination(1, "exit", message="done")
    assert a != (0, "exit", None, "done", None)  # a record is not its tuple of fields
    with pytest.raises(AttributeError, match="frozen"):
        a.status = 3  # type: ignore[misc]
    with pytest.raises(AttributeError, match="frozen"):
        del a.reason  # type: ignore[misc]
    assert repr(a) == "Termination(status=0, reason='exit', signal=None, message='done', pc=None)"


def test_replace_goes_through_validation_and_names_unknown_fields():
    limits = GuestLimits(wall_seconds=2.0)
    assert limits.replace(open_files=10) == GuestLimits(wall_seconds=2.0, open_files=10)
    assert limits.wall_seconds == 2.0  # unchanged original
    with pytest.raises(ValueError, match="memory_bytes must be positive"):
        limits.replace(memory_bytes=0)
    with pytest.raises(TypeError, match="no field colour"):
        limits.replace(colour="red")


def test_frozen_records_pickle_and_copy():
    limits = GuestLimits(max_instructions=5, disk_bytes=None)
    for clone in (pickle.loads(pickle.dumps(limits)), copy.copy(limits), copy.deepcopy(limits)):
        assert clone == limits
        assert type(clone) is GuestLimits


def test_mutable_records_compare_by_value_and_are_not_hashable():
    stats = ExecutionStats()
    stats.instructions += 5
    assert stats == ExecutionStats(instructions=5)
    with pytest.raises(TypeError):
        hash(stats)
    counters = LimitCounters(files_refused=2)
    assert pickle.loads(pickle.dumps(counters)) == counters


def test_hidden_fields_stay_out_of_repr_and_handles_are_equal_only_to_themselves():
    call = SyscallCall(64, "write", (1, 2, 3, 0, 0, 0), 0x1000, machine=object())
    assert "machine" not in repr(call)
    assert "name='write'" in repr(call)
    callback = print
    first, second = HookHandle("code", callback), HookHandle("code", callback)
    assert first != second
    assert first in {first}
    assert len({first, second}) == 2


def test_running_a_guest_imports_none_of_the_costly_modules():
    # What the start-up target pays for: dataclasses with inspect ~7 ms (see _record), logging
    # ~4 ms (see _logging).
    code = (
        "import sys\n"
        "from vmkit.async_executor.cli import main\n"
        "from vmkit.async_executor.samples import path\n"
        "for engine in ('interp', 'hybrid'):\n"
        "    main(['run', '--engine', engine, str(path('hello'))])\n"
        "costly = {'ctypes', 'dataclasses', 'inspect', 'logging', 'statistics', 'subprocess'}\n"
        "leaked = sorted(costly & set(sys.modules))\n"
        "print('LEAKED', leaked, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert "LEAKED []" in done.stderr, done.stderr
