"""The Linux user-mode ABI for guests: syscalls, file descriptors and the sandboxed file system."""

from __future__ import annotations

from vmkit.async_executor.linux._abi import SYSCALL_NAMES, SYSCALL_NUMBERS
from vmkit.async_executor.linux._fs import GuestFS
from vmkit.async_executor.linux._kernel import Linux

__all__ = ["SYSCALL_NAMES", "SYSCALL_NUMBERS", "GuestFS", "Linux"]
