import pickle

import numpy as np
import pytest
import soundfile
from test_eval_synth import (
    V, VOCA_TEST, VOCA_TRAIN, motion, template, write_mead_emote, write_mead_lgldm, write_vocaset, write_wav,
)
from typer.testing import CliRunner

from talking_faces.cli import app
from talking_faces.errors import TalkingFacesError
from talking_faces.data import read_dataset


def test_vocaset_processed_layout(tmp_path):
    truth = write_vocaset(tmp_path, sentences=(20, 21, 22))
    seqs = read_dataset("vocaset", tmp_path)  # test split: test subjects x sentences 21-40
    assert [s.name for s in seqs] == sorted(f"{s}_sentence{n}" for s in VOCA_TEST for n in ("21", "22"))
    seq = seqs[0]
    assert seq.fps == 30.0 and seq.emotion is None and seq.sentence == "21" and seq.subject in VOCA_TEST
    gt = seq.load_vertices()
    assert gt.dtype == np.float64  # the file's precision is kept
    np.testing.assert_array_equal(gt, truth[seq.name][::2])  # 60 -> 30 fps
    assert len(read_dataset("vocaset", tmp_path, "train")) == 3  # train subject, sentences 1-40
    assert len(read_dataset("vocaset", tmp_path, "all")) == 9


def test_vocaset_malformed(tmp_path):
    write_vocaset(tmp_path)
    name = f"{VOCA_TEST[0]}_sentence21"
    bad = tmp_path / "vertices_npy" / f"{name}.npy"
    np.save(bad, np.zeros((4, V * 3 + 1)))
    with pytest.raises(TalkingFacesError, match=f"{name}.npy: expected vertices of shape"):
        read_dataset("vocaset", tmp_path)
    bad.unlink()
    with pytest.raises(TalkingFacesError, match=f"{name}.wav has no vertices; expected .*{name}.npy"):
        read_dataset("vocaset", tmp_path)
    np.save(bad, np.zeros((4, V * 3)))
    (tmp_path / "wav" / f"{name}.wav").unlink()
    with pytest.raises(TalkingFacesError, match=f"{name}.npy has no audio"):
        read_dataset("vocaset", tmp_path)
    write_wav(tmp_path / "wav" / f"{name}.wav", 0.1)
    templates = pickle.loads((tmp_path / "templates.pkl").read_bytes())
    del templates[VOCA_TEST[1]]
    (tmp_path / "templates.pkl").write_bytes(pickle.dumps(templates))
    with pytest.raises(TalkingFacesError, match=f"{VOCA_TEST[1]}_sentence21.npy: no template for subject {VOCA_TEST[1]}"):
        read_dataset("vocaset", tmp_path)
    empty = tmp_path / "empty"
    (empty / "wav").mkdir(parents=True)
    (empty / "vertices_npy").mkdir()
    (empty / "templates.pkl").write_bytes(pickle.dumps({"s": np.zeros((V, 3))}))
    with pytest.raises(TalkingFacesError, match="wav holds no .wav files"):
        read_dataset("vocaset", empty)
    (empty / "vertices_npy").rmdir()
    with pytest.raises(TalkingFacesError, match="vertices_npy is missing"):
        read_dataset("vocaset", empty)
    with pytest.raises(TalkingFacesError, match="Unknown split 'unseen'"):
        read_dataset("vocaset", tmp_path, "unseen")


def _write_raw_vocaset(raw):
    raw.mkdir()
    subjects = {VOCA_TEST[0]: {"sentence21": 6, "sentence22": 4}, VOCA_TRAIN: {"sentence01": 5}}
    rows, index, audio, row = [], {}, {}, 0
    for i, (subject, seqs) in enumerate(subjects.items()):
        index[subject], audio[subject] = {}, {}
        for j, (seq, length) in enumerate(seqs.items()):
            rows.append(motion(length, 10 * i + j, template(i)).astype(np.float32))
            index[subject][seq] = {f: row + f for f in range(length)}
            audio[subject][seq] = {"audio": (np.arange(2200 * (j + 1)) % 300).astype(np.int16), "sample_rate": 22000}
            row += length
    audio[VOCA_TRAIN]["sentence02"] = {"audio": np.zeros(10, np.int16), "sample_rate": 22000}  # audio only: skipped
    np.save(raw / "data_verts.npy", np.concatenate(rows))
    (raw / "raw_audio_fixed.pkl").write_bytes(pickle.dumps(audio, protocol=2))
    (raw / "subj_seq_to_idx.pkl").write_bytes(pickle.dumps(index, protocol=2))
    (raw / "templates.pkl").write_bytes(pickle.dumps({s: template(i) for i, s in enumerate(subjects)}, protocol=2))
    return rows, audio


def test_raw_vocaset_conversion_through_cli(tmp_path):
    rows, audio = _write_raw_vocaset(tmp_path / "raw")
    out = tmp_path / "processed"
    result = CliRunner().invoke(app, ["data", "vocaset", "--raw", str(tmp_path / "raw"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "wrote 3 sequences" in output and "(skipped 1 without audio or frames)" in output
    seqs = read_dataset("vocaset", out)
    assert [s.name for s in seqs] == [f"{VOCA_TEST[0]}_sentence21", f"{VOCA_TEST[0]}_sentence22"]
    np.testing.assert_array_equal(seqs[0].load_vertices(), rows[0][::2])
    samples, rate = soundfile.read(seqs[1].audio_path, dtype="int16")
    assert rate == 22000
    np.testing.assert_array_equal(samples, audio[VOCA_TEST[0]]["sentence22"]["audio"])


def test_mead_emote_layout(tmp_path):
    root = tmp_path / "mead"
    write_mead_emote(root)
    test = read_dataset("mead", root)  # EMOTE identity split: test IDs, every sentence
    assert [(s.name, s.subject, s.emotion, s.intensity, s.sentence) for s in test] == [
        ("M037_005_3_1", "M037", "surprise", 2, "005")]
    seqs = read_dataset("mead-emote", root, "pred-test")  # ProbTalk3D: neutral 37-40, emotional 28-30
    assert [(s.name, s.emotion, s.intensity) for s in seqs] == [("M003_028_6_2", "angry", 3), ("M003_037_0_0", "neutral", 1)]
    assert seqs[0].fps == 25.0 and seqs[0].load_vertices().shape == (11, V, 3)
    assert [s.name for s in read_dataset("mead", root, "pred-train")] == ["M003_001_1_0"]
    assert len(read_dataset("mead", root, "train")) == 3


def test_mead_emote_malformed(tmp_path):
    root = tmp_path / "mead"
    write_mead_emote(root)
    np.save(root / "vertex" / "M003_029_9_0.npy", np.zeros((3, V * 3)))
    write_wav(root / "wav" / "M003_029_9_0.wav", 0.1)
    with pytest.raises(TalkingFacesError, match="M003_029_9_0.npy: emotion index 9 is out of range"):
        read_dataset("mead", root)
    for f in (root / "vertex" / "M003_029_9_0.npy", root / "wav" / "M003_029_9_0.wav"):
        f.unlink()
    (root / "wav" / "M003_028_6_2.wav").unlink()
    with pytest.raises(TalkingFacesError, match="M003_028_6_2.npy has no audio"):
        read_dataset("mead", root, "all")
    params = tmp_path / "params"
    (params / "param").mkdir(parents=True)
    np.save(params / "param" / "M003_028_6_2.npy", np.zeros((1, 4, 403)))
    write_wav(params / "wav" / "M003_028_6_2.wav", 0.1)
    (params / "templates.pkl").write_bytes(pickle.dumps({"M003": template(0)}))
    with pytest.raises(TalkingFacesError, match="M003_028_6_2.npy holds FLAME parameters, not vertices; pass --flame-model"):
        read_dataset("mead", params, "pred-test")


@pytest.mark.parametrize("with_csv", [False, True])
def test_mead_lgldm_layout(tmp_path, with_csv):
    root = tmp_path / "MEAD"
    write_mead_lgldm(root, with_csv)
    seqs = read_dataset("mead", root)
    assert [(s.name, s.subject, s.emotion, s.intensity, s.sentence) for s in seqs] == [
        ("M037-surprised-level_3-001", "M037", "surprise", 3, "001"),
        ("M040-angry-level_3-002", "M040", "angry", 3, "002"),
    ]
    np.testing.assert_array_equal(seqs[0].template, template(5))
    assert seqs[1].load_vertices().shape == (9, V, 3) and seqs[1].fps == 25.0
    assert [s.subject for s in read_dataset("mead-lgldm", root, "train")] == ["M003"]


def test_mead_lgldm_malformed(tmp_path):
    root = tmp_path / "MEAD"
    write_mead_lgldm(root)
    (root / "AUDIO" / "M040" / "angry" / "level_3" / "002.wav").unlink()
    with pytest.raises(TalkingFacesError, match=r"M040-angry-level_3-002.npz has no audio; expected .*002.wav or .*002.m4a"):
        read_dataset("mead", root)
    write_wav(root / "AUDIO" / "M040" / "angry" / "level_3" / "002.wav", 0.2)
    np.savez(root / "FLAME_ALL" / "M037" / "M037-surprised-level_3-001.npz", vertices=np.zeros((4, 7)))
    with pytest.raises(TalkingFacesError, match=r"M037-surprised-level_3-001.npz\['vertices'\]: expected"):
        read_dataset("mead", root)
    np.savez(root / "FLAME_ALL" / "M037" / "M037-surprised-level_3-001.npz", expression=np.zeros((4, 50)), pose=np.zeros((4, 6)))
    with pytest.raises(TalkingFacesError, match="holds FLAME parameters, not vertices"):
        read_dataset("mead", root)
    (root / "FLAME_template.npy").unlink()
    with pytest.raises(TalkingFacesError, match="FLAME_template.npy is missing"):
        read_dataset("mead", root)
    with pytest.raises(TalkingFacesError, match="is not a 3D MEAD root"):
        read_dataset("mead", tmp_path)


def test_empty_split_says_which_subjects_it_needs(tmp_path):
    write_vocaset(tmp_path, sentences=(1, 2))
    with pytest.raises(TalkingFacesError, match="the test split is FaceTalk_170809_00138_TA, FaceTalk_170731_00024_TA x "
                                                "sentences 21-40; pass --split all"):
        read_dataset("vocaset", tmp_path)
    assert len(read_dataset("vocaset", tmp_path, "all")) == 6


def test_truncated_vertex_file_names_the_file(tmp_path):
    write_vocaset(tmp_path)
    seq = read_dataset("vocaset", tmp_path)[0]
    path = tmp_path / "vertices_npy" / f"{seq.name}.npy"
    path.write_bytes(path.read_bytes()[:-100])  # the header still parses
    with pytest.raises(TalkingFacesError, match=f"Cannot read .*{seq.name}.npy: .*truncated or corrupt"):
        seq.load_vertices()


def test_mead_emote_other_folder_and_template_names(tmp_path):
    root = tmp_path / "mead"
    write_mead_emote(root, vertex_dir="meshes")
    (root.parent / "templates_mead_vert.pkl").rename(root / "my_templates.pkl")
    assert [s.name for s in read_dataset("mead", root)] == ["M037_005_3_1"]


def test_mead_lgldm_vertex_array_under_another_key(tmp_path):
    root = tmp_path / "MEAD"
    write_mead_lgldm(root)
    path = root / "FLAME_ALL" / "M037" / "M037-surprised-level_3-001.npz"
    np.savez(path, motion=np.ones((6, V, 3)), expression=np.zeros((6, 50)), pose=np.zeros((6, 6)))
    np.testing.assert_array_equal(read_dataset("mead", root)[0].load_vertices(), np.ones((6, V, 3)))
