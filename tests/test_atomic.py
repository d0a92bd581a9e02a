import numpy as np
import pytest

from talking_faces.atomic import atomic_write
from talking_faces.errors import TalkingFacesError


def test_writes_through_a_temporary_with_the_same_suffix(tmp_path):
    seen = []

    def write(tmp):
        seen.append(tmp)
        np.save(tmp, np.arange(3))

    atomic_write(tmp_path / "sub" / "a.npy", write)
    np.testing.assert_array_equal(np.load(tmp_path / "sub" / "a.npy"), [0, 1, 2])
    assert seen[0].suffix == ".npy" and seen[0].parent == tmp_path / "sub"
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["a.npy"]


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")

    def broken(tmp):
        tmp.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, broken)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_os_errors_become_one_line_user_errors(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(TalkingFacesError, match="Cannot write .*choose a writable location"):
        atomic_write(tmp_path / "file" / "inside.npy", lambda tmp: None)
