"""``async-executor run --engine`` on every engine, the JIT options, and ``aot``/``--code-cache``.

The oracle for guest output is what qemu-riscv64 printed for the same binaries (guest/expected,
recorded by guest/record_expected.py); every engine must reproduce it, and the engines must agree
with each other on the error line of a guest that dies.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from vmkit.async_executor import cli
from vmkit.async_executor.cli import main
from vmkit.async_executor.engine import _native_tierup
from vmkit.async_executor.engine._jit_aot import function_symbols
from vmkit.async_executor.samples import path as sample_path

GUEST = pathlib.Path(__file__).resolve().parents[2] / "guest"
SPEC: dict[str, Any] = json.loads((GUEST / "cases.json").read_text())
CASES = {case["id"]: case for case in SPEC["cases"]}
#: Cases without stdin whose output does not depend on the host: samples and guest programs,
#: among them faults, a signal-handling program and one that runs code on its stack.
CHOSEN = [
    "hello",
    "strings",
    "setjmp",
    "divide",
    "args",
    "exits-segv",
    "exits-abort",
    "signals",
    "trampoline",
    "crc32",
    "sieve",
    "matmul",
]
#: Engine configurations: each engine, and the hybrid made to translate almost at once so that
#: both of its tiers and the switches between them run.
ENGINE_ARGS = {
    "interp": ["--engine", "interp"],
    "jit": ["--engine", "jit"],
    "hybrid": ["--engine", "hybrid"],
    "hybrid-hot": ["--engine", "hybrid", "--jit-threshold", "2"],
}
try:
    import llvmlite  # noqa: F401 - only whether the [native] extra is installed
except ImportError:  # CI installs it; a local run without it still tests the other engines
    pass
else:
    # The native tier compiling almost at once, so hot and cold code and the exits between
    # them all run.
    ENGINE_ARGS["native-hot"] = ["--engine", "native", "--jit-threshold", "2"]
    # The hybrid tiering up to native code at once (with a short sampling period, see
    # run_case), so that all three of its tiers and the exits between them run.
    ENGINE_ARGS["hybrid-native"] = [
        "--engine",
        "hybrid",
        "--jit-threshold",
        "2",
        "--native",
        "--native-threshold",
        "1",
        "--native-warmup",
        "0",
    ]


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """main() configures logging for the process; undo it so other tests see the defaults."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def binary(name: str) -> pathlib.Path:
    try:
        return sample_path(name)
    except KeyError:
        return GUEST / "prebuilt" / name


def guest_env() -> list[bytes]:
    return [f"{k}={v}".encode() for k, v in SPEC["env"].items()]


def run_case(
    case_id: str,
    engine_args: list[str],
    root: pathlib.Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[int, str, str]:
    """Run a case as qemu did: ``./NAME ARGS`` from a copy in the guest's root, the case's env."""
    case = CASES[case_id]
    copy = root / case["program"]
    if not copy.exists():
        shutil.copy(binary(case["program"]), copy)
    monkeypatch.chdir(root)
    monkeypatch.setattr(cli, "host_environment", guest_env)
    monkeypatch.setattr(_native_tierup, "SAMPLE_PERIOD", 500)  # these programs are short
    status = main(["run", *engine_args, "--root", str(root), "./" + case["program"], *case["args"]])
    out, err = capfd.readouterr()
    return status, out, err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("async-executor:")]


def json_stats(err: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(err.strip().splitlines()[-1])
    return data


@pytest.mark.matrix_once  # under every Python the guest programs run in process on interp and JIT
class TestEnginesAgree:
    """Every engine prints what qemu-riscv64 printed and exits with its status."""

    @pytest.mark.parametrize("case_id", CHOSEN)
    def test_case_on_every_engine(
        self,
        case_id: str,
        tmp_path: pathlib.Path,
        capfd: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """stdout and status equal qemu's on every engine; a dying guest's error line is equal."""
        expected_out = (GUEST / "expected" / f"{case_id}.stdout").read_text()
        expected_status = int((GUEST / "expected" / f"{case_id}.status").read_text())
        errors = {}
        for name, engine_args in ENGINE_ARGS.items():
            status, out, err = run_case(case_id, engine_args, tmp_path, capfd, monkeypatch)
            assert out == expected_out, name
            assert status == expected_status, name
            assert "Traceback" not in err
            errors[name] = error_lines(err)
        assert len({tuple(lines) for lines in errors.values()}) == 1, errors


class TestNativeTierOptions:
    """--native, --no-native, --native-threshold and --native-warmup of the hybrid."""

    def test_stats_show_the_native_tier(
        self,
        capfd: pytest.CaptureFixture[str],
        tmp_path: pathlib.Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """The native tier's share, its counters and the tier-up's in JSON --stats."""
        pytest.importorskip("llvmlite", reason="the native tier needs the [native] extra")
        monkeypatch.setattr(_native_tierup, "SAMPLE_PERIOD", 1000)
        argv = ["run", "--root", str(tmp_path), "--stats", "--stats-format", "json"]
        argv += ["--native", "--native-threshold", "1", "--native-warmup", "0"]
        status = main([*argv, str(sample_path("crc32")), "3000"])
        data = json_stats(capfd.readouterr()[1])
        assert status == 0
        tiers = data["tiers"]
        assert sum(t["instructions"] for t in tiers.values()) == data["instructions"]
        assert tiers["native"]["instructions"] == data["native"]["instructions"] > 0
        assert data["native"]["regions"] >= 1
        assert data["native_tierup"]["started"] is True
        assert data["native_tierup"]["samples"] > 0

    def test_no_native_keeps_two_tiers(
        self, capfd: pytest.CaptureFixture[str], tmp_path: pathlib.Path
    ) -> None:
        argv = ["run", "--root", str(tmp_path), "--stats", "--stats-format", "json", "--no-native"]
        status = main([*argv, str(sample_path("crc32")), "300"])
        data = json_stats(capfd.readouterr()[1])
        assert status == 0
        assert set(data["tiers"]) == {"interp", "jit"}
        assert "native" not in data
        assert "native_tierup" not in data

    @pytest.mark.parametrize("option", ["--native", "--no-native", "--native-threshold=3"])
    def test_native_options_need_the_hybrid(
        self, option: str, capfd: pytest.CaptureFixture[str]
    ) -> None:
        status = main(["run", "--engine", "jit", option, str(sample_path("hello"))])
        [line] = error_lines(capfd.readouterr().err)
        assert status == 2
        assert "--engine hybrid" in line


class TestJitOptions:
    """--jit-threshold, --dump-jit and --stats for the JIT engines."""

    def test_threshold_moves_work_between_tiers(
        self, capfd: pytest.CaptureFixture[str], tmp_path: pathlib.Path
    ) -> None:
        """A huge threshold leaves every instruction to the interpreter; threshold 1 to the JIT."""
        crc = [str(sample_path("crc32")), "2000"]
        base = ["run", "--root", str(tmp_path), "--stats", "--stats-format", "json"]
        shares = {}
        for threshold in ("1000000000", "1"):
            status = main([*base, "--jit-threshold", threshold, *crc])
            _, err = capfd.readouterr()
            assert status == 0
            data = json_stats(err)
            assert data["engine"] == "hybrid"
            tiers = data["tiers"]
            assert (
                tiers["interp"]["instructions"] + tiers["jit"]["instructions"]
                == (data["instructions"])
            )
            shares[threshold] = tiers["jit"]["instruction_share"]
            if threshold == "1":
                assert data["jit"]["compilations"] == data["jit"]["cached_blocks"] > 0
        assert shares["1000000000"] == 0.0
        assert shares["1"] == 1.0

    def test_text_stats_show_tiers_and_translation(
        self, capfd: pytest.CaptureFixture[str], tmp_path: pathlib.Path
    ) -> None:
        """Text --stats of the hybrid has a section per tier and the context's counters."""
        status = main(["run", "--root", str(tmp_path), "--stats", str(sample_path("sieve")), "500"])
        _, err = capfd.readouterr()
        assert status == 0
        for heading in ("tier interp:", "tier jit:", "jit:"):
            assert f"\n  {heading}\n" in err
        for key in ("compilations", "compile_time_seconds", "hit_rate"):
            assert f"\n    {key} " in err

    def test_jit_stats_count_compilations(
        self, capfd: pytest.CaptureFixture[str], tmp_path: pathlib.Path
    ) -> None:
        """Under --engine jit every miss is a compilation and hits plus misses are executions."""
        argv = ["run", "--engine", "jit", "--root", str(tmp_path), "--stats", "--stats-format"]
        status = main([*argv, "json", str(sample_path("crc32")), "500"])
        data = json_stats(capfd.readouterr()[1])
        assert status == 0
        jit = data["jit"]
        assert jit["compilations"] >= jit["misses"] > 0
        assert jit["hits"] + jit["misses"] == jit["executions"] == data["executions"]
        assert 0.0 < jit["hit_rate"] < 1.0
        assert "tiers" not in data

    def test_dump_jit_is_python(
        self, capfd: pytest.CaptureFixture[str], tmp_path: pathlib.Path
    ) -> None:
        """--dump-jit writes one headed chunk per compiled block, each valid Python source."""
        argv = ["run", "--engine", "jit", "--dump-jit", "--root", str(tmp_path), "--stats"]
        status = main([*argv, "--stats-format", "json", str(sample_path("crc32")), "300"])
        out, err = capfd.readouterr()
        assert status == 0
        assert out.startswith("crc32")
        dump, _, stats_line = err.rpartition("\n{")
        chunks = dump.split("# jit block ")[1:]
        assert len(chunks) == json.loads("{" + stats_line)["jit"]["compilations"]
        first_pc = None
        for chunk in chunks:
            header, _, source = chunk.partition("\n")
            pc, _, count = header.partition(": ")
            first_pc = first_pc or int(pc, 16)
            assert count.endswith(" instructions")
            compile(source, f"<block {pc}>", "exec")
            assert source.startswith("def b(")
        compile(dump, "<all blocks>", "exec")  # the whole dump is one Python module too
        assert first_pc is not None

    @pytest.mark.parametrize(
        ("engine", "option"),
        [("interp", "--dump-jit"), ("interp", "--code-cache=x"), ("jit", "--jit-threshold=5")],
    )
    def test_option_needs_another_engine(
        self, engine: str, option: str, capfd: pytest.CaptureFixture[str]
    ) -> None:
        """A JIT option on an engine that has no use for it is one line and status 2."""
        status = main(["run", "--engine", engine, option, str(sample_path("hello"))])
        out, err = capfd.readouterr()
        assert status == 2
        assert out == ""
        [line] = error_lines(err)
        assert option.split("=", maxsplit=1)[0] in line
        assert engine in line

    def test_zero_threshold_is_a_usage_error(self, capfd: pytest.CaptureFixture[str]) -> None:
        """--jit-threshold 0 is refused by the argument parser."""
        with pytest.raises(SystemExit) as exit_info:
            main(["run", "--jit-threshold", "0", str(sample_path("hello"))])
        assert exit_info.value.code == 2
        assert "must be >= 1" in capfd.readouterr().err

    @pytest.mark.parametrize(
        "engine",
        [
            "interp",
            "jit",
        ],
    )
    def test_metrics_port_slices_every_engine(
        self, engine: str, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With --metrics-port the interpreter and the JIT run in slices with identical results."""
        pytest.importorskip("prometheus_client")
        monkeypatch.setattr(cli, "_METRICS_SLICE", 5_000)
        argv = ["run", "--engine", engine, "--stats", "--stats-format", "json"]
        crc = [str(sample_path("crc32")), "1000"]
        plain = main([*argv, *crc]), *capfd.readouterr()
        served = main([*argv, "--metrics-port", "0", *crc]), *capfd.readouterr()
        assert served[0] == plain[0] == 0
        assert served[1] == plain[1]
        assert json_stats(served[2])["instructions"] == json_stats(plain[2])["instructions"]


def aot(capfd: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["aot", *argv])
    out, err = capfd.readouterr()
    return status, out, err


class TestAot:
    """``aot PROGRAM -o CACHE`` and ``run --code-cache CACHE``."""

    @pytest.mark.parametrize("engine", ["jit", "hybrid"])
    def test_round_trip(
        self, engine: str, capfd: pytest.CaptureFixture[str], tmp_path: pathlib.Path
    ) -> None:
        """A run from the cache prints the same and runs prebuilt blocks instead of work."""
        crc = str(sample_path("crc32"))
        cache = tmp_path / "crc32.cache"
        status, out, _ = aot(capfd, crc, "-o", str(cache), "--max-blocks", "400")
        assert status == 0
        assert out.startswith(f"{cache}: 400 blocks from 1 entry points")
        assert cache.stat().st_size > 0
        results = {}
        for extra in ([], ["--code-cache", str(cache)]):
            argv = ["run", "--engine", engine, "--root", str(tmp_path), "--stats", *extra]
            status = main([*argv, "--stats-format", "json", crc, "500"])
            out, err = capfd.readouterr()
            assert status == 0
            assert error_lines(err) == []
            results[bool(extra)] = (out, json_stats(err))
        (cold_out, cold), (warm_out, warm) = results[False], results[True]
        assert warm_out == cold_out
        assert warm["instructions"] == cold["instructions"]
        assert cold["jit"]["prebuilt_blocks"] == 0
        assert warm["jit"]["prebuilt_blocks"] > 0
        if engine == "jit":
            # Every block the cache did not hold is still compiled; the others are not.
            compiled = warm["jit"]["compilations"] + warm["jit"]["prebuilt_blocks"]
            assert compiled == cold["jit"]["compilations"]
        else:
            # The hybrid takes offered blocks at first sight: less is interpreted.
            interp_share = [r["tiers"]["interp"]["instruction_share"] for r in (cold, warm)]
            assert interp_share[1] < interp_share[0]

    @pytest.mark.parametrize("damage", ["garbage", "flipped", "missing"])
    def test_unusable_cache_warns_once(
        self, damage: str, capfd: pytest.CaptureFixture[str], tmp_path: pathlib.Path
    ) -> None:
        """A corrupt or missing cache is one warning line; the guest runs as without it."""
        hello = str(sample_path("hello"))
        cache = tmp_path / "hello.cache"
        assert aot(capfd, hello, "-o", str(cache), "--max-blocks", "50")[0] == 0
        if damage == "garbage":
            cache.write_bytes(b"not a code cache at all")
        elif damage == "flipped":
            data = bytearray(cache.read_bytes())
            data[len(data) // 2] ^= 0xFF
            cache.write_bytes(bytes(data))
        else:
            cache.unlink()
        status = main(["run", "--root", str(tmp_path), "--code-cache", str(cache), hello])
        out, err = capfd.readouterr()
        assert status == 0
        assert out == (GUEST / "expected" / "hello.stdout").read_text()
        warnings = [line for line in err.splitlines() if "code_cache" in line]
        assert len(warnings) == 1, err
        assert "warning" in warnings[0]
        assert str(cache) in warnings[0]
        assert "Traceback" not in err

    def test_cache_of_another_program_never_runs(
        self, capfd: pytest.CaptureFixture[str], tmp_path: pathlib.Path
    ) -> None:
        """A cache built for crc32 given to sieve: one stale-blocks warning, sieve's own output."""
        cache = tmp_path / "crc32.cache"
        assert (
            aot(capfd, str(sample_path("crc32")), "-o", str(cache), "--max-blocks", "300")[0] == 0
        )
        argv = ["run", "--engine", "jit", "--root", str(tmp_path), "--code-cache", str(cache)]
        status = main([*argv, str(sample_path("sieve")), "1000"])
        out, err = capfd.readouterr()
        assert status == 0
        assert out == "primes up to 1000: 168 (largest 997)\n"
        assert len([line for line in err.splitlines() if "code_cache" in line]) == 1, err

    def test_profile_round_trip(
        self, capfd: pytest.CaptureFixture[str], tmp_path: pathlib.Path
    ) -> None:
        """``aot --profile`` caches the blocks a run used: a run like it compiles nothing, a
        different run still prints its own output."""
        crc = str(sample_path("crc32"))
        cache = tmp_path / "crc32.prof"
        status, out, err = aot(
            capfd, "-o", str(cache), "--profile", "--root", str(tmp_path), crc, "500"
        )
        assert status == 0, err
        blocks = int(out.split(": ", 1)[1].split()[0])
        assert f"{blocks} blocks used by a run of {crc} (exit status 0" in out
        assert 100 < blocks < 2000  # what a run touches, not the whole static libc
        argv = ["run", "--engine", "jit", "--root", str(tmp_path), "--stats"]
        runs = {}
        for extra, arg in (([], "500"), (["--code-cache", str(cache)], "500"), ([], "2000")):
            status = main([*argv, *extra, "--stats-format", "json", crc, arg])
            out, err = capfd.readouterr()
            assert status == 0
            runs[bool(extra), arg] = out, json_stats(err)["jit"]
        warm_out, warm = runs[True, "500"]
        assert warm_out == runs[False, "500"][0]
        assert warm["compilations"] == 0
        assert warm["prebuilt_blocks"] == runs[False, "500"][1]["compilations"]
        status = main([*argv, "--code-cache", str(cache), crc, "2000"])
        out, _err = capfd.readouterr()
        assert status == 0
        assert out == runs[False, "2000"][0]

    def test_guest_arguments_need_profile(
        self, capfd: pytest.CaptureFixture[str], tmp_path: pathlib.Path
    ) -> None:
        """Guest arguments without --profile are a usage error, not silently ignored."""
        hello = str(sample_path("hello"))
        status, _, err = aot(capfd, "-o", str(tmp_path / "c"), hello, "extra")
        assert status == 2
        assert "only used with --profile" in error_lines(err)[0]
        assert not (tmp_path / "c").exists()

    def test_missing_program(
        self, capfd: pytest.CaptureFixture[str], tmp_path: pathlib.Path
    ) -> None:
        """aot of a file that does not exist: status 127 and one line."""
        status, _, err = aot(capfd, str(tmp_path / "nope"), "-o", str(tmp_path / "c"))
        assert status == 127
        assert "no such file" in error_lines(err)[0]

    def test_unwritable_output(
        self, capfd: pytest.CaptureFixture[str], tmp_path: pathlib.Path
    ) -> None:
        """A cache that cannot be written: status 73 and one line naming it."""
        out_path = tmp_path / "no-such-dir" / "c"
        hello = str(sample_path("hello"))
        status, _, err = aot(capfd, hello, "-o", str(out_path), "--max-blocks", "5")
        assert status == 73
        [line] = error_lines(err)
        assert str(out_path) in line

    @pytest.mark.oracle
    def test_symbols_add_entry_points(
        self, capfd: pytest.CaptureFixture[str], tmp_path: pathlib.Path
    ) -> None:
        """An unstripped program's function symbols become entry points of the cache."""
        gcc = shutil.which("riscv64-linux-gnu-gcc")
        if gcc is None:
            if os.environ.get("REQUIRE_ORACLES") == "1":
                pytest.fail("riscv64-linux-gnu-gcc is required (REQUIRE_ORACLES=1)")
            pytest.skip("riscv64-linux-gnu-gcc is not installed")
        src = tmp_path / "two.c"
        src.write_text(
            "int twice(int x) { return 2 * x; }\n"
            "int (*volatile fp)(int) = twice;\n"
            "int main(void) { return fp(21); }\n"
        )
        program = tmp_path / "two"
        subprocess.run([gcc, "-O2", "-static", "-o", str(program), str(src)], check=True)
        symbols = function_symbols(program.read_bytes())
        assert len(symbols) > 100  # main, twice and the C library's functions
        status, out, _ = aot(capfd, str(program), "-o", str(tmp_path / "c"), "--max-blocks", "50")
        assert status == 0
        assert f"from {len(symbols) + 1} entry points" in out
        run_status = main(["run", "--code-cache", str(tmp_path / "c"), str(program)])
        capfd.readouterr()
        assert run_status == 42


def test_native_without_llvmlite_is_one_line_not_an_internal_error(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Without the [native] extra, --engine native says which extra to install (no exit 70)."""
    import sys

    monkeypatch.setitem(sys.modules, "llvmlite", None)  # import llvmlite now raises ImportError
    monkeypatch.setitem(sys.modules, "llvmlite.binding", None)
    for name in [m for m in sys.modules if m.startswith("vmkit.async_executor.engine.native")]:
        monkeypatch.delitem(sys.modules, name)
    status = main(["run", "--engine", "native", str(sample_path("hello"))])
    err = capfd.readouterr().err
    assert status != cli.STATUS_INTERNAL_ERROR, err
    assert "vmkit-async-executor[native]" in err
    # The hybrid asked for its native tier: the same one line; left to itself, it runs as ever.
    monkeypatch.setattr(_native_tierup, "native_available", lambda: False)
    status = main(["run", "--native", str(sample_path("hello"))])
    out, err = capfd.readouterr()
    assert status == cli.STATUS_USAGE
    assert out == ""
    [line] = error_lines(err)
    assert "vmkit-async-executor[native]" in line
    assert main(["run", str(sample_path("hello"))]) == 0
    assert capfd.readouterr().out.startswith("Hello, RISC-V!")
