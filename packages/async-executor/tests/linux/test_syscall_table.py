"""Every syscall handler is bound to a syscall number: handlers are found by name, so a misspelt
``sys_`` method would otherwise never run and its syscall would answer ENOSYS."""

from __future__ import annotations

import inspect
from pathlib import Path

from vmkit.async_executor.linux import _abi as abi
from vmkit.async_executor.linux._kernel import Linux


def _handler_names() -> set[str]:
    return {
        name.removeprefix("sys_")
        for name, member in inspect.getmembers(Linux, inspect.isfunction)
        if name.startswith("sys_")
    }


def test_every_handler_names_a_syscall() -> None:
    names = _handler_names()
    assert len(names) > 50
    assert sorted(names - set(abi.SYSCALL_NUMBERS)) == []


def test_numbers_and_names_are_one_to_one() -> None:
    assert len(abi.SYSCALL_NAMES) == len(abi.SYSCALL_NUMBERS)
    assert all(abi.SYSCALL_NUMBERS[name] == n for n, name in abi.SYSCALL_NAMES.items())


def test_the_dispatch_table_holds_every_handler(tmp_path: Path) -> None:
    linux = Linux(str(tmp_path))
    try:
        bound = set(linux.supported.values())
    finally:
        linux.close()
    assert bound == _handler_names()
