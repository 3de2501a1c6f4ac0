"""Record what qemu-riscv64 prints for every case in cases.json into expected/ (run by hand).

    python record_expected.py            # uses prebuilt/ and the package samples

Each case gets ``expected/<id>.stdout`` and ``expected/<id>.status``. The programs run as
``./NAME`` from a fresh temporary directory holding a copy of them, with exactly the environment
from cases.json, as the tests run them.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
SAMPLES = HERE.parent / "src" / "vmkit.async_executor" / "samples"


def binary(name: str) -> pathlib.Path:
    for folder in (SAMPLES, HERE / "prebuilt"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(name)


def main() -> None:
    spec = json.loads((HERE / "cases.json").read_text())
    out = HERE / "expected"
    out.mkdir(exist_ok=True)
    for case in spec["cases"]:
        with tempfile.TemporaryDirectory() as tmp:
            # Run a copy as ./NAME so argv[0] (and every stack address) does not depend on where
            # the checkout lives.
            shutil.copy(binary(case["program"]), pathlib.Path(tmp) / case["program"])
            proc = subprocess.run(
                ["qemu-riscv64", "./" + case["program"], *case["args"]],
                input=case.get("stdin", "").encode(),
                capture_output=True,
                env=spec["env"],
                cwd=tmp,
                check=False,
            )
        status = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
        (out / f"{case['id']}.stdout").write_bytes(proc.stdout)
        (out / f"{case['id']}.status").write_text(f"{status}\n")
        print(f"{case['id']}: status {status}, {len(proc.stdout)} bytes")


if __name__ == "__main__":
    main()
