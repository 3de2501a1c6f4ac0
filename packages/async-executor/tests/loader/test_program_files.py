"""Only regular files are programs (issue 19, item 10): a device would be read forever, a FIFO's
open would block forever. Each is refused at once with a message and status 126."""

from __future__ import annotations

import os
import pathlib

import pytest

from vmkit.async_executor.cli import STATUS_CANNOT_EXECUTE, main
from vmkit.async_executor.errors import ElfLoadError
from vmkit.async_executor.loader import load_program


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("kind", "words"),
    [("zero", "a character device"), ("fifo", "a FIFO"), ("dir", "a directory")],
)
def test_non_regular_files_are_refused(
    kind: str, words: str, tmp_path: pathlib.Path, capfd: pytest.CaptureFixture[str]
) -> None:
    if kind == "zero":
        path = pathlib.Path("/dev/zero")
    elif kind == "fifo":
        path = tmp_path / "fifo"
        os.mkfifo(path)  # nobody writes to it: an open that blocked would hang the test
    else:
        path = tmp_path
    with pytest.raises(ElfLoadError, match=words):
        load_program(path, root=tmp_path)
    assert main(["run", "--root", str(tmp_path), str(path)]) == STATUS_CANNOT_EXECUTE
    err = capfd.readouterr().err
    assert words in err
    assert "Traceback" not in err


def test_an_empty_regular_file_is_not_an_elf(tmp_path: pathlib.Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(ElfLoadError):
        load_program(empty, root=tmp_path)
