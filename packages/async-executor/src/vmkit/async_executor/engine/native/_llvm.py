"""llvmlite set-up: one native target machine and MCJIT engine per process, and compiling a
module of region functions to callable addresses.

Regions are compiled to a relocatable object file (:func:`emit_object`) which the engine then
links in (:func:`load_object`): exactly what MCJIT does internally for an IR module, with the
object's bytes in our hands, so the on-disk cache (``_cache``) stores what a cold compile made and
a warm start goes through the same loading path.

llvmlite is an optional extra (``vmkit-async-executor[native]``); importing this module without
it raises :class:`NativeUnavailable` with the one line a user needs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from typing import Any, Final

from vmkit.async_executor.errors import AsyncExecutorError

__all__ = [
    "NATIVE_EXTRA",
    "NativeUnavailable",
    "RegionFunction",
    "emit_object",
    "host_description",
    "ir",
    "llvm_version",
    "load_object",
    "new_module",
]

NATIVE_EXTRA: Final = "vmkit-async-executor[native]"


class NativeUnavailable(AsyncExecutorError):
    """The native tier needs llvmlite, which is not installed."""


try:
    import llvmlite.binding as llvm
    from llvmlite import ir
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise NativeUnavailable(
        f"the native engine needs llvmlite: pip install '{NATIVE_EXTRA}' ({exc})"
    ) from None

#: ``u64 region(u64 *regs, u64 *tlb, u64 *io)``
RegionFunction = ctypes.CFUNCTYPE(
    ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p
)

_lock = threading.Lock()
_state: dict[str, Any] = {}


def _engine() -> tuple[Any, Any]:
    """The process's target machine and execution engine, made on first use."""
    with _lock:
        if "engine" not in _state:
            llvm.initialize_native_target()
            llvm.initialize_native_asmprinter()
            target = llvm.Target.from_default_triple()
            machine = target.create_target_machine(opt=2, codemodel="jitdefault")
            engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), machine)
            _state.update(machine=machine, engine=engine, helpers=_link_helpers())
        return _state["machine"], _state["engine"]


#: Compiler runtime functions LLVM may call from machine code: 128-bit division, which the
#: optimiser introduces itself (a loop's trip count under the budget check is computed in 128
#: bits). The Python process does not export them, and MCJIT would resolve them to address 0.
_HELPERS: Final = ("__udivti3", "__umodti3", "__divti3", "__modti3")


def _link_helpers() -> Any:
    """Make :data:`_HELPERS` resolvable for MCJIT, from libgcc; returns the library (kept alive
    as long as machine code may call into it)."""
    try:
        library = ctypes.CDLL(ctypes.util.find_library("gcc_s") or "libgcc_s.so.1")
        for name in _HELPERS:
            llvm.add_symbol(name, ctypes.cast(getattr(library, name), ctypes.c_void_p).value)
    except (OSError, AttributeError):  # pragma: no cover - a host without libgcc (not Linux)
        return None
    return library


def llvm_version() -> str:
    """The LLVM version llvmlite was built with, e.g. ``"22.1.0"``."""
    return ".".join(map(str, llvm.llvm_version_info))


def new_module(name: str) -> ir.Module:
    """An empty IR module for the host."""
    module = ir.Module(name)
    module.triple = llvm.get_process_triple()
    return module


def emit_object(module: ir.Module) -> bytes:
    """Optimise ``module`` and compile it to an object file for this host (its bytes)."""
    machine, _engine_unused = _engine()
    parsed = llvm.parse_assembly(str(module))
    parsed.verify()
    tuning = llvm.create_pipeline_tuning_options(speed_level=2)
    builder = llvm.create_pass_builder(machine, tuning)
    builder.getModulePassManager().run(parsed, builder)
    with _lock:  # the engine owns the target machine; it is not used from two threads at once
        return bytes(machine.emit_object(parsed))


def load_object(data: bytes, names: list[str]) -> list[Any]:
    """Link the object file ``data`` (made by :func:`emit_object` in this or an earlier process)
    into the engine; return the callables of its functions ``names``.

    The bytes must come from :func:`emit_object` for this host and LLVM: the caller vouches for
    them (a cache entry is authenticated before it gets here), since linking is running code.

    Raises:
        ValueError: the bytes are not an object file, or a function is not in it.
    """
    _machine_unused, engine = _engine()
    obj = llvm.ObjectFileRef.from_data(data)
    if not obj:  # LLVMCreateObjectFile gives NULL for bytes that are no object file
        raise ValueError("not an object file")
    with _lock:
        engine.add_object_file(obj)
        engine.finalize_object()
        addresses = [engine.get_function_address(name) for name in names]
    if not all(addresses):
        raise ValueError("the object file lacks a region function")
    return [RegionFunction(address) for address in addresses]


def host_description() -> dict[str, str]:
    """What decides the machine code LLVM makes here: LLVM and llvmlite versions, the target
    triple and data layout, the host CPU and its features (the code-cache key's host part)."""
    import llvmlite

    machine, _engine_unused = _engine()
    return {
        "llvm": llvm_version(),
        "llvmlite": llvmlite.__version__,
        "triple": str(machine.triple),
        "data_layout": str(machine.target_data),
        "cpu": llvm.get_host_cpu_name(),
        "features": llvm.get_host_cpu_features().flatten(),
    }
