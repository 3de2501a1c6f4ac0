"""Bases of the package's small value classes, in place of ``dataclasses`` on the start-up path.

A ``@dataclass`` costs every process that imports it: ``dataclasses`` imports ``inspect``
(with ``ast``, ``dis`` and ``tokenize``), about 7 ms here, and each decorated class ``exec``\\ s
generated methods, about 0.5 ms a class. ``async-executor run hello`` creates a dozen such
classes before the guest's first instruction, and its whole run is measured against ``python -c
pass`` (issue 11's start-up target), so the classes it needs are plain classes on these bases.

A subclass lists its fields in ``__slots__`` (in the order they show in ``repr``), annotates them
for type checkers and writes its own ``__init__``. The bases derive the rest from ``__slots__``:

* :class:`Record`: equality field by field, ``repr``, unhashable (it is mutable), as
  ``@dataclass(slots=True)``.
* :class:`FrozenRecord`: the same, hashable, immutable after ``__init__`` (which sets fields with
  :data:`init_field`) and with :meth:`FrozenRecord.replace`, as ``@dataclass(frozen=True,
  slots=True)`` with ``dataclasses.replace``.

``_hidden`` names fields ``repr`` leaves out (large or cyclic ones).
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

__all__ = ["FrozenRecord", "Record", "init_field"]

#: Sets a field of a :class:`FrozenRecord` in its ``__init__`` (its ``__setattr__`` refuses).
init_field = object.__setattr__


class Record:
    """A mutable value class: ``==`` compares every field of ``__slots__``; see the module."""

    __slots__ = ()
    _hidden: ClassVar[frozenset[str]] = frozenset()

    def _names(self) -> tuple[str, ...]:
        return type(self).__slots__

    def _values(self) -> tuple[Any, ...]:
        return tuple([getattr(self, name) for name in self._names()])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Record)
        return self._values() == other._values()

    __hash__: ClassVar[None] = None  # type: ignore[assignment]  # mutable: not a dict key

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={getattr(self, name)!r}" for name in self._names() if name not in self._hidden
        )
        return f"{type(self).__name__}({shown})"


class FrozenRecord(Record):
    """An immutable, hashable value class; see the module."""

    __slots__ = ()

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(self._values())

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: {type(self).__name__} is frozen")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: {type(self).__name__} is frozen")

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied (through ``__init__``, so it validates them)."""
        names = self._names()
        unknown = changes.keys() - set(names)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {', '.join(sorted(unknown))}")
        values = {name: getattr(self, name) for name in names}
        values.update(changes)
        return type(self)(**values)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle through __init__ (batch jobs carry limits to worker processes): the default
        # slot-state restore would go through the refusing __setattr__.
        return (_rebuild, (type(self), {name: getattr(self, name) for name in self._names()}))


def _rebuild(cls: type[FrozenRecord], values: dict[str, Any]) -> FrozenRecord:
    return cls(**values)
