import pickle

import numpy as np
import pytest
from test_eval_synth import write_masks

from talking_faces.errors import TalkingFacesError
from talking_faces.eval.regions import load_regions
from talking_faces.data.safe_pickle import load_pickle


def test_flame_masks_are_deduplicated(tmp_path):
    regions = load_regions(write_masks(tmp_path / "FLAME_masks.pkl"))
    np.testing.assert_array_equal(regions.lips, [3, 4, 5, 6, 7])  # 6 entries, 5 unique
    np.testing.assert_array_equal(regions.upper, [10, 11, 12, 13, 14, 15, 16])  # forehead ∪ eye_region
    info = regions.describe()
    assert info["kind"] == "FLAME_masks.pkl"
    assert info["lve"] == {"from": "masks['lips']", "entries": 6, "unique": 5}
    assert info["fdd"] == {"from": "masks['forehead'] ∪ masks['eye_region']", "entries": 9, "unique": 7}


def test_index_files_with_and_without_spaces(tmp_path):
    (tmp_path / "lve.txt").write_text("5, 3, 3, 9\n")
    (tmp_path / "fdd.txt").write_text("1,2,40")
    regions = load_regions(tmp_path)
    np.testing.assert_array_equal(regions.lips, [3, 5, 9])
    np.testing.assert_array_equal(regions.upper, [1, 2, 40])
    assert regions.describe()["lve"]["entries"] == 4
    with pytest.raises(TalkingFacesError, match="index vertex 40"):
        regions.check_fits(30, "the template")


def test_bad_region_inputs(tmp_path):
    (tmp_path / "lve.txt").write_text("1, x")
    (tmp_path / "fdd.txt").write_text("1")
    with pytest.raises(TalkingFacesError, match="lve.txt must hold"):
        load_regions(tmp_path)
    masks = tmp_path / "masks.pkl"
    masks.write_bytes(pickle.dumps({"lips": np.arange(3)}))
    with pytest.raises(TalkingFacesError, match="lacks the masks forehead, eye_region"):
        load_regions(masks)
    with pytest.raises(TalkingFacesError, match="Regions not found"):
        load_regions(tmp_path / "nope.pkl")


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickles_cannot_run_code(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "FLAME_masks.pkl"
    evil.write_bytes(pickle.dumps({"lips": _Exploit(str(marker))}))
    with pytest.raises(TalkingFacesError, match="refusing to load io.open"):
        load_regions(evil)
    assert not marker.exists()


def test_python2_numpy_pickle_is_read_with_latin1(tmp_path):
    # What Python 2 writes for {"lips": int64 array} (FLAME_masks.pkl, VOCASET): the array data is a
    # byte string with bytes > 127, readable only with encoding="latin1"; numpy named numpy.core then.
    data = np.array([1590, 200, 3928], dtype="<i8").tobytes()
    blob = (b"\x80\x02}q\x00U\x04lipsq\x01cnumpy.core.multiarray\n_reconstruct\nq\x02cnumpy\nndarray\nq\x03K\x00\x85U\x01b"
            b"\x87Rq\x04(K\x01K\x03\x85cnumpy\ndtype\nq\x05U\x02i8K\x00K\x01\x87Rq\x06(K\x03U\x01<NNNJ\xff\xff\xff\xff"
            b"J\xff\xff\xff\xffK\x00tb\x89U" + bytes([len(data)]) + data + b"tbs.")
    path = tmp_path / "py2.pkl"
    path.write_bytes(blob)
    loaded = load_pickle(path)
    assert list(loaded) == ["lips"]
    np.testing.assert_array_equal(loaded["lips"], [1590, 200, 3928])
