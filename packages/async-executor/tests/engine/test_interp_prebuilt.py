"""The interpreter's precompiled factories: current with the table, and only a speed-up."""

from __future__ import annotations

from vmkit.async_executor.engine import _interp_gen, _interp_prebuilt, _interpreter


def test_generated_module_is_current() -> None:
    """The committed file is what the generator writes today (regenerate with
    ``python -m vmkit.async_executor.engine._interp_gen`` after changing a template)."""
    assert _interp_gen.TARGET.read_text(encoding="utf-8") == _interp_gen.generate()


def test_every_body_the_table_can_produce_is_prebuilt() -> None:
    assert set(_interp_gen.all_bodies()) == set(_interp_prebuilt.FACTORIES)
    assert len(_interp_prebuilt.DRIVERS) == _interpreter.MAX_BLOCK + 1


def test_a_body_missing_from_the_file_is_compiled_at_run_time() -> None:
    body = "X[rd] = (imm * 3) & 0xffffffffffffffff"
    assert body not in _interp_prebuilt.FACTORIES
    x = [0] * 32
    args = dict.fromkeys(_interpreter._FACTORY_ARGS.split(", "))
    args.update(X=x, rd=5, imm=14)
    _interpreter._factory(body)(*args.values())()
    assert x[5] == 42
