"""Nothing a run made is lost: the run folder's lock, runs never overwritten, Ctrl-C, a full
disk, the cleanup of temporary files, weights that flipped on disk, a resume on other data."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from utils import checkpoint as ckpt_mod
from utils.checkpoint import (
    CheckpointError,
    UnverifiedCheckpointWarning,
    add_weights_hash,
    load_checkpoint,
    remove_stale_temps,
    save_atomic,
    weights_sha256,
)
from utils.errors import OptionError
from utils.models.vocoder import MelVocoder, VocoderConfig
from utils.tasks import vocoder as vocoder_task
from utils.train import main as train_main
from utils.training import LOCK_NAME, RunLock, TrainConfig, _interrupt_deferred, train

ROOT = Path(__file__).resolve().parents[1]
TINY_CODEC = ["--set", "channels=16", "--set", "latent_dim=8", "--set", "num_codes=16",
              "--set", "num_quantizers=3", "--set", "res_blocks=1"]


def _vocoder(data: Path, out: Path, *extra: str) -> int:
    """A tiny vocoder training (the cheapest task), as ``python -m utils.train`` runs it."""
    return train_main(["vocoder", "--data", str(data), "--out", str(out), "--batch-size", "2",
                       "--crop-frames", "16", "--val-every", "4", "--save-every", "2",
                       "--log-every", "1", "--warmup", "1", "--threads", "1", "--no-progress",
                       "--set", "channels=8", "--set", "blocks=1", "--steps", "4", *extra])


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _tiny_vocoder() -> MelVocoder:
    torch.manual_seed(0)
    return MelVocoder(VocoderConfig(channels=8, blocks=1))


def _flip_a_bit(state: dict[str, torch.Tensor]) -> str:
    """Flip one bit of the first floating-point tensor (in place); returns its key."""
    key = next(k for k, v in state.items() if v.is_floating_point() and v.numel())
    flipped = state[key].clone()
    flipped.view(-1).view(torch.int32)[0] ^= 1 << 4
    state[key] = flipped
    return key


# ------------------------------------------------------------------------------ 1. the lock


def test_two_runs_into_one_out_folder_the_second_is_refused(voiced_words, tmp_path, capsys,
                                                            monkeypatch):
    out = tmp_path / "run"
    out.mkdir()
    lock = out / LOCK_NAME
    held = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
    lock.write_text(held)
    monkeypatch.setattr(vocoder_task.codec_task, "load_waveforms",
                        lambda *a, **k: pytest.fail("data loaded in a folder in use"))
    assert _vocoder(voiced_words, out) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --out: ") and str(out) in err and f"pid {os.getpid()}" in err
    assert "in use by another training" in err and "Traceback" not in err
    assert lock.read_text() == held  # the owner's lock is left alone
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing written
    with pytest.raises(OptionError, match="in use by another training"):  # nor with --resume
        train(vocoder_task.VocoderTask([voiced_words]),
              TrainConfig(out=str(out), resume=True, device="cpu", progress=False))
    # a lock held on another host cannot be checked from here: refused, saying how to clear it
    lock.write_text(json.dumps({"pid": 1, "host": "elsewhere.example"}))
    with pytest.raises(OptionError, match=f"cannot be checked.*delete {lock}"):
        RunLock(out).acquire()


def test_a_stale_lock_is_taken_over_and_the_lock_is_gone_after_the_run(voiced_words, tmp_path,
                                                                      capsys):
    out = tmp_path / "run"
    out.mkdir()
    dead = _dead_pid()
    (out / LOCK_NAME).write_text(json.dumps({"pid": dead, "host": socket.gethostname()}))
    assert _vocoder(voiced_words, out) == 0
    err = capsys.readouterr().err
    took = [line for line in err.splitlines() if "took over" in line]
    assert len(took) == 1 and f"pid {dead}" in took[0] and "no longer runs" in took[0]
    assert not (out / LOCK_NAME).exists()
    assert load_checkpoint(out / "last.pt")["step"] == 4
    # a lock whose pid now belongs to another process (reused after a restart) is stale too
    (out / LOCK_NAME).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                             "process_start": "-1"}))
    said: list[str] = []
    lock = RunLock(out).acquire(said.append)
    assert len(said) == 1 and "no longer runs" in said[0]
    info = json.loads((out / LOCK_NAME).read_text())
    assert info["pid"] == os.getpid() and info["host"] == socket.gethostname()
    with pytest.raises(OptionError, match=f"{out}.*pid {os.getpid()}"):
        RunLock(out).acquire()  # held by a live process (this one)
    lock.release()
    assert not (out / LOCK_NAME).exists()


# ------------------------------------------------------------------------------ 2. no overwrite


def test_a_folder_with_best_pt_but_no_last_pt_is_never_overwritten(voiced_words, tmp_path,
                                                                    capsys):
    out = tmp_path / "run"
    out.mkdir()
    best = out / "best.pt"
    best.write_bytes(b"the weights of a week of training")
    assert _vocoder(voiced_words, out) == 2
    err = capsys.readouterr().err
    assert "holds a run already (best.pt)" in err and "overwrite best.pt" in err
    assert _vocoder(voiced_words, out, "--resume") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --resume: ") and "no last.pt to resume from" in err
    assert "would overwrite" in err
    assert best.read_bytes() == b"the weights of a week of training"
    assert not (out / "log.jsonl").exists() and not (out / LOCK_NAME).exists()

    logged = tmp_path / "logged"
    logged.mkdir()
    (logged / "log.jsonl").write_text('{"step": 1, "loss": 3.0}\n')
    assert _vocoder(voiced_words, logged) == 2
    assert "holds a run already (log.jsonl" in capsys.readouterr().err
    assert (logged / "log.jsonl").read_text() == '{"step": 1, "loss": 3.0}\n'


# ------------------------------------------------------------------------------ 3. Ctrl-C


def test_ctrl_c_saves_last_pt_and_the_resumed_run_ends_with_the_same_weights(
        voiced_words, tmp_path, capsys, monkeypatch):
    assert _vocoder(voiced_words, tmp_path / "full", "--save-every", "100") == 0
    out = tmp_path / "cut"
    loss = vocoder_task.VocoderTask.loss
    calls = []

    def interrupted_at_step_2(self, model, batch):
        calls.append(1)
        if len(calls) == 3:  # during step 3: steps 1 and 2 are complete
            raise KeyboardInterrupt
        return loss(self, model, batch)

    monkeypatch.setattr(vocoder_task.VocoderTask, "loss", interrupted_at_step_2)
    capsys.readouterr()
    assert _vocoder(voiced_words, out, "--save-every", "100") == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (f"interrupted at step 2: saved {out / 'last.pt'}; "
                                            "continue with the same command plus --resume")
    assert "Traceback" not in err and not (out / LOCK_NAME).exists()
    assert load_checkpoint(out / "last.pt")["step"] == 2  # saved by the interruption alone
    monkeypatch.undo()
    assert _vocoder(voiced_words, out, "--save-every", "100", "--resume") == 0
    for name in ("last.pt", "best.pt"):
        a = load_checkpoint(tmp_path / "full" / name)["model"]
        b = load_checkpoint(out / name)["model"]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def test_ctrl_c_during_a_validation_runs_it_again_on_resume(voiced_words, tmp_path, capsys,
                                                           monkeypatch):
    """Interrupted after step 2's update, during its validation: the resume validates step 2
    first, so the log, best.pt and the final weights are those of an uninterrupted run."""
    args = ("--val-every", "2", "--save-every", "100")
    assert _vocoder(voiced_words, tmp_path / "full", *args) == 0
    out = tmp_path / "cut"
    validate = vocoder_task.VocoderTask.validate

    def interrupted(self, model, device):
        raise KeyboardInterrupt

    monkeypatch.setattr(vocoder_task.VocoderTask, "validate", interrupted)
    assert _vocoder(voiced_words, out, *args) == 130
    assert "interrupted at step 2: saved" in capsys.readouterr().err
    assert load_checkpoint(out / "last.pt")["pending_validation"] is True
    monkeypatch.setattr(vocoder_task.VocoderTask, "validate", validate)
    assert _vocoder(voiced_words, out, *args, "--resume") == 0

    def validations(run: Path) -> list[int]:
        lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
        return [r["step"] for r in lines if "val_logmel_l1" in r]

    assert validations(out) == validations(tmp_path / "full") == [2, 4]
    for name in ("last.pt", "best.pt"):
        a = load_checkpoint(tmp_path / "full" / name)
        b = load_checkpoint(out / name)
        assert a["step"] == b["step"] and all(torch.equal(a["model"][k], b["model"][k])
                                              for k in a["model"]), name


@pytest.mark.skipif(signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
                    reason="Python's own SIGINT handler is not installed")
def test_ctrl_c_during_the_optimizer_update_is_held_back_until_it_is_done():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with _interrupt_deferred():
            signal.raise_signal(signal.SIGINT)
            done.append("the update finished")
    assert done == ["the update finished"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# ------------------------------------------------------------------------------ 4. full disk


def _full_disk(monkeypatch):
    def save(obj, f, *a, **k):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", save)


def test_a_full_disk_keeps_the_previous_last_pt_and_says_so(voiced_words, tmp_path, capsys,
                                                            monkeypatch):
    path = save_atomic(_tiny_vocoder().checkpoint(step=1), tmp_path / "last.pt")
    before = path.read_bytes()
    with monkeypatch.context() as m:
        _full_disk(m)
        with pytest.raises(CheckpointError) as err:
            save_atomic({**_tiny_vocoder().checkpoint(step=2)}, path)
    assert err.value.path == str(path) and "No space left on device" in err.value.reason
    assert "the previous last.pt was kept" in err.value.reason
    assert path.read_bytes() == before and load_checkpoint(path)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temporary file left

    out = tmp_path / "run"
    assert _vocoder(voiced_words, out, "--steps", "6", "--stop-at", "2") == 0
    capsys.readouterr()
    with monkeypatch.context() as m:
        _full_disk(m)
        assert _vocoder(voiced_words, out, "--steps", "6", "--save-every", "1", "--val-every",
                        "100", "--resume") == 2
    out_err = capsys.readouterr().err
    err = out_err.strip().splitlines()[-1]
    assert "Traceback" not in out_err
    assert err.startswith(f"error: {out / 'last.pt'}: cannot be written (No space left")
    assert "the previous last.pt was kept" in err and "stopped at step 3" in err
    assert load_checkpoint(out / "last.pt")["step"] == 2
    assert not list(out.glob(".*")) and not (out / LOCK_NAME).exists()


# ------------------------------------------------------------------------------ 5. temp files


def test_the_cleanup_removes_only_the_temporary_files_of_an_interrupted_save(voiced_words,
                                                                            tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    theirs = [".notes.tmp", ".backup.20240101.tmp", ".draft.partial", ".last.pt.abc.partial"]
    for name in theirs:
        (out / name).write_text("the user's")
    # a save killed half-way, by _write_atomic itself
    code = ("import os, torch\nfrom utils.checkpoint import save_atomic\n"
            "def killed(obj, f):\n    f.write(b'half a checkpoint'); f.flush(); os._exit(9)\n"
            f"torch.save = killed\nsave_atomic({{'kind': 'x', 'model': {{}}}}, "
            f"{str(out / 'last.pt')!r})\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, timeout=300)
    assert r.returncode == 9
    left = [p for p in out.iterdir() if p.name not in theirs]
    assert len(left) == 1 and left[0].name.startswith(".last.pt.")
    assert not (out / "last.pt").exists()
    assert _vocoder(voiced_words, out) == 0
    assert f"removed {left[0].name}" in capsys.readouterr().err
    assert not left[0].exists()
    assert all((out / name).read_text() == "the user's" for name in theirs)
    assert remove_stale_temps(out) == []


# ------------------------------------------------------------------------------ 6. weights hash


def test_weights_that_flipped_on_disk_are_refused(tmp_path):
    model = _tiny_vocoder()
    ck = model.checkpoint()
    assert ck["weights_sha256"] == weights_sha256(model.state_dict())
    path = save_atomic(ck, tmp_path / "voc.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnverifiedCheckpointWarning)
        assert load_checkpoint(path)["weights_sha256"] == ck["weights_sha256"]
    stored = torch.load(path, weights_only=True)
    key = _flip_a_bit(stored["model"])  # one tensor changed, the old hash kept
    bad = tmp_path / "flipped.pt"
    torch.save(stored, bad)
    for load in (load_checkpoint, MelVocoder.from_checkpoint):
        with pytest.raises(CheckpointError, match="weights corrupted: .*hash does not match"
                           ) as err:
            load(bad)
        assert err.value.path == str(bad), key
    with pytest.raises(CheckpointError, match="weights corrupted"):
        add_weights_hash(bad)  # corrupted weights are not blessed with a new hash


def test_the_weights_hash_covers_dtype_shape_and_complex_values_not_layout():
    z = torch.randn(3, 4, dtype=torch.complex64)
    state = {"b": torch.arange(6.0), "a": z}
    digest = weights_sha256(state)
    assert digest == weights_sha256({"a": z.t().contiguous().t(), "b": torch.arange(6.0)})
    changed = z.clone()
    changed[1, 2] += 1e-6j
    assert weights_sha256({**state, "a": changed}) != digest
    assert weights_sha256({**state, "b": torch.arange(6.0).double()}) != digest
    assert weights_sha256({**state, "b": torch.arange(6.0).reshape(2, 3)}) != digest
    assert weights_sha256({**state, "b": torch.arange(6.0).bfloat16()}) != digest


def test_an_old_checkpoint_without_a_hash_warns_and_add_weights_hash_fixes_it(tmp_path,
                                                                              capsys):
    ck = _tiny_vocoder().checkpoint()
    del ck["weights_sha256"]
    old = tmp_path / "old.pt"
    torch.save(ck, old)
    with pytest.warns(UnverifiedCheckpointWarning, match="carries no weights hash"):
        loaded = load_checkpoint(old)
    assert all(torch.equal(loaded["model"][k], ck["model"][k]) for k in ck["model"])
    with warnings.catch_warnings():  # once per file
        warnings.simplefilter("error", UnverifiedCheckpointWarning)
        load_checkpoint(old)
    old.chmod(0o640)
    digest = add_weights_hash(old)
    assert digest == weights_sha256(ck["model"]) and (old.stat().st_mode & 0o777) == 0o640
    ckpt_mod._WARNED_UNVERIFIED.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnverifiedCheckpointWarning)
        again = load_checkpoint(old)
        model = MelVocoder.from_checkpoint(old)
    assert all(torch.equal(again["model"][k], ck["model"][k]) for k in ck["model"])
    assert all(torch.equal(v, ck["model"][k]) for k, v in model.state_dict().items())
    assert {k: v for k, v in again.items() if k not in ("model", "weights_sha256")} == \
        {k: v for k, v in ck.items() if k != "model"}
    assert add_weights_hash(old) is None  # nothing to do

    other = tmp_path / "other.pt"
    torch.save(ck, other)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    assert ckpt_mod.main(["--add-hash", str(other), str(old), str(garbage)]) == 2
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"{other}: weights hash added (sha256 {digest})",
        f"{old}: has a valid weights hash already; left unchanged"]
    assert captured.err.startswith(f"error: {garbage}: not a loadable checkpoint")
    assert torch.load(other, weights_only=True)["weights_sha256"] == digest


def test_the_training_loop_saves_verified_weights_and_resume_refuses_flipped_ones(
        voiced_words, tmp_path, capsys):
    out = tmp_path / "run"
    assert _vocoder(voiced_words, out, "--steps", "6", "--stop-at", "2") == 0
    for name in ("last.pt", "best.pt"):
        ck = torch.load(out / name, weights_only=True)
        assert ck["weights_sha256"] == weights_sha256(ck["model"]), name
    # a task whose checkpoint() does not call model_checkpoint (the codec) is hashed as well
    codec_out = tmp_path / "codec"
    assert train_main(["codec", "--data", str(voiced_words), "--out", str(codec_out),
                       "--batch-size", "2", "--crop-frames", "16", "--steps", "1",
                       "--threads", "1", "--no-progress", *TINY_CODEC]) == 0
    ck = torch.load(codec_out / "last.pt", weights_only=True)
    assert ck["weights_sha256"] == weights_sha256(ck["model"])

    last = torch.load(out / "last.pt", weights_only=True)
    _flip_a_bit(last["model"])
    torch.save(last, out / "last.pt")
    capsys.readouterr()
    assert _vocoder(voiced_words, out, "--steps", "6", "--resume") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {out / 'last.pt'}: weights corrupted")
    assert "hash does not match" in err and not (out / LOCK_NAME).exists()


# ------------------------------------------------------------------------------ 7. other data


def test_resume_with_another_data_folder_is_refused(voiced_words, tmp_path, capsys,
                                                    monkeypatch):
    out = tmp_path / "run"
    assert _vocoder(voiced_words, out, "--steps", "6", "--stop-at", "2") == 0
    other = tmp_path / "other_words"
    shutil.copytree(voiced_words, other)
    capsys.readouterr()
    monkeypatch.setattr(vocoder_task.codec_task, "load_waveforms",
                        lambda *a, **k: pytest.fail("data loaded before the refusal"))
    assert _vocoder(other, out, "--steps", "6", "--resume") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --resume: {out / 'last.pt'}: ")
    assert f"started with --data {voiced_words}, now {other}" in err
    assert load_checkpoint(out / "last.pt")["step"] == 2


def test_resume_with_another_augmentation_is_refused(voiced_words, tmp_path, capsys):
    out = tmp_path / "codec"
    base = ["codec", "--data", str(voiced_words), "--out", str(out), "--batch-size", "2",
            "--crop-frames", "16", "--steps", "4", "--threads", "1", "--no-progress",
            *TINY_CODEC]
    assert train_main([*base, "--augment", "--stop-at", "1"]) == 0
    capsys.readouterr()
    assert train_main([*base, "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --resume: {out / 'last.pt'}: started with augmentation {{")
    assert err.rstrip().endswith("now no augmentation")
    assert load_checkpoint(out / "last.pt")["step"] == 1


# ------------------------------------------------------------------- 8. a --data without words


@pytest.mark.parametrize("layout", ["empty", "loose_wavs"])
def test_data_without_word_folders_is_one_clear_option_error(tmp_path, capsys, layout):
    """``--data`` at a folder without ``<word>/`` folders: exit 2, one line naming the folder,
    no traceback, nothing trained (codec and words training, codec evaluation)."""
    import numpy as np

    from utils.audio import save
    from utils.evaluate import main as evaluate_main

    data = tmp_path / "no_words"
    data.mkdir()
    if layout == "loose_wavs":
        for i in range(2):
            save(data / f"clip{i}.wav", 0.1 * np.sin(np.arange(8000, dtype=np.float32) / 5))
    runs = {
        "codec": ["codec", "--data", str(data), "--out", str(tmp_path / "codec"),
                  "--no-progress", "--steps", "2", *TINY_CODEC],
        "words": ["words", "--data", str(data), "--out", str(tmp_path / "words"),
                  "--no-progress", "--epochs", "1", "--seeds", "0", "--kind", "complex"],
    }
    for task, argv in runs.items():
        capsys.readouterr()
        assert train_main(argv) == 2, task
        err = capsys.readouterr().err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, task
        assert err.startswith(f"error: --data: {data}: no word folders"), task
        assert "(expected <data>/<word>/*.wav)" in err, task
        assert not list((tmp_path / task).glob("*")), task  # no run started
    if layout == "empty":  # a codec evaluation takes loose files; an empty folder is refused
        ckpt = ROOT / "data" / "pretrained" / "vqvae_speech.pt"
        capsys.readouterr()
        assert evaluate_main(["codec", str(ckpt), str(data)]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.startswith(f"error: {data}: ")


# ------------------------------------------------------------- 9. an enhancement test set


def _same_named_clips(tmp_path: Path) -> list[Path]:
    """Two data folders, each with one test clip ``w/v0000000_nohash_0.wav`` (other sounds)."""
    import numpy as np

    from utils.audio import save

    folders = []
    for k, freq in enumerate((300.0, 700.0)):
        root = tmp_path / f"data{k}"
        (root / "w").mkdir(parents=True)
        t = np.arange(16000, dtype=np.float32) / 16000
        save(root / "w" / "v0000000_nohash_0.wav", 0.3 * np.sin(2 * np.pi * freq * t))
        (root / "testing_list.txt").write_text("w/v0000000_nohash_0.wav\n")
        (root / "validation_list.txt").write_text("")
        folders.append(root)
    return folders


def _make_set(folders: list[Path], out: Path) -> int:
    from utils.evaluate import main as evaluate_main

    args = [x for d in folders for x in ("--data", str(d))]
    return evaluate_main(["enhance", "-", "--make-test-set", str(out), *args])


def test_make_test_set_keeps_same_named_clips_of_two_folders_apart(tmp_path, capsys):
    from utils.tasks.enhance import TEST_SNRS, _sha256

    folders = _same_named_clips(tmp_path)
    out = tmp_path / "test_set"
    assert _make_set(folders, out) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    pairs = manifest["pairs"]
    assert len(pairs) == 2 * len(TEST_SNRS)
    assert len({p["clean"] for p in pairs}) == len({p["noisy"] for p in pairs}) == len(pairs)
    sources = {p["source"] for p in pairs}
    assert sources == {str(d / "w" / "v0000000_nohash_0.wav") for d in folders}
    for p in pairs:
        assert p["source_sha256"] == _sha256(p["source"])
        assert p["clean_sha256"] == _sha256(out / p["clean"]) and p["snr_db"] in TEST_SNRS
        assert p["noisy_sha256"] == _sha256(out / p["noisy"]) and p["noise_kind"]
    # both clips survive: the clean files of one SNR are the two different sources
    import soundfile as sf

    clean = sorted((out / "clean" / "snr+00").rglob("*.wav"))
    assert len(clean) == 2
    a, b = (sf.read(f)[0] for f in clean)
    assert not torch.allclose(torch.from_numpy(a), torch.from_numpy(b))


def test_a_test_set_whose_clean_file_changed_is_refused_before_scoring(tmp_path, capsys,
                                                                      monkeypatch):
    import soundfile as sf

    from utils.evaluate import main as evaluate_main
    from utils.tasks import enhance

    out = tmp_path / "test_set"
    assert _make_set(_same_named_clips(tmp_path), out) == 0
    changed = sorted((out / "clean").rglob("*.wav"))[1]
    original = changed.read_bytes()
    y, sr = sf.read(changed)
    sf.write(changed, 0.5 * y, sr)
    monkeypatch.setattr(enhance, "score_pairs",
                        lambda *a, **k: pytest.fail("a stale test set was scored"))
    ckpt = ROOT / "data" / "pretrained" / "enhance_mag_s0.pt"
    capsys.readouterr()
    argv = ["enhance", str(ckpt), str(out / "noisy"), "--clean", str(out / "clean")]
    assert evaluate_main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith(f"error: {changed}: changed since")
    # an incomplete set (a listed noisy file gone) is refused too
    changed.write_bytes(original)
    gone = sorted((out / "noisy").rglob("*.wav"))[0]
    gone.unlink()
    assert evaluate_main(argv) == 2
    assert capsys.readouterr().err.startswith(f"error: {gone}: listed in ")


def test_the_readme_make_test_set_command_works_where_the_training_folders_are_absent(
        tmp_path, capsys, monkeypatch):
    """A fresh clone has no ``../shared``: the shipped enhancer names folders from there."""
    from utils.evaluate import main as evaluate_main
    from utils.tasks import enhance

    folders = _same_named_clips(tmp_path)
    stored = {"data": [str(folders[0]), str(tmp_path / "absent_speech")],
              "noise": [str(tmp_path / "absent_noise")]}
    real_load = enhance.load_checkpoint
    monkeypatch.setattr(enhance, "load_checkpoint",
                        lambda path, kind: {**real_load(path, kind), **stored})
    ckpt = ROOT / "data" / "pretrained" / "enhance_dcunet10.pt"
    out = tmp_path / "test_set"
    capsys.readouterr()
    assert evaluate_main(["enhance", str(ckpt), "--make-test-set", str(out)]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "absent_speech" in err and "absent_noise" in err and "not on this machine" in err
    assert (out / "manifest.json").is_file() and any((out / "noisy").rglob("*.wav"))
    # named explicitly, a missing folder is still refused
    assert evaluate_main(["enhance", str(ckpt), "--make-test-set", str(tmp_path / "t2"),
                          "--data", str(tmp_path / "absent_speech")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_a_test_set_written_before_manifests_is_scored_with_a_warning(tmp_path, capsys,
                                                                     monkeypatch):
    from utils.tasks import enhance

    out = tmp_path / "test_set"
    assert _make_set(_same_named_clips(tmp_path), out) == 0
    (out / "manifest.json").unlink()  # what sets made by older versions look like
    with pytest.warns(UserWarning, match="before manifests.*--make-test-set"):
        assert enhance.check_manifest(out / "noisy") is None


# ------------------------------------------------------------------ faults in a real process

_DYING_RUN = r"""
import os, signal, sys
import torch
from utils.tasks import vocoder as task
from utils.train import main

# as in a terminal: a test runner started in the background inherits SIGINT ignored
signal.signal(signal.SIGINT, signal.default_int_handler)
fault, at = sys.argv[1], int(sys.argv[2])
calls = {"save": 0, "loss": 0}
real_save, real_loss = torch.save, task.VocoderTask.loss

def save(obj, f, *args, **kwargs):
    calls["save"] += 1
    if calls["save"] == at and fault == "kill_in_write":
        f.write(b"PK\x03\x04 half a checkpoint")
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    if calls["save"] == at and fault == "int_in_write":
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C arrives while the file is being written
    return real_save(obj, f, *args, **kwargs)

def loss(self, model, batch):
    calls["loss"] += 1
    if calls["loss"] == at and fault == "kill_in_step":
        os.kill(os.getpid(), signal.SIGKILL)
    return real_loss(self, model, batch)

torch.save, task.VocoderTask.loss = save, loss
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.parametrize("fault,at,exit_code", [("kill_in_step", 3, -signal.SIGKILL),
                                                ("kill_in_write", 2, -signal.SIGKILL),
                                                ("int_in_write", 2, 130)])
def test_a_run_killed_or_interrupted_mid_step_or_mid_write_resumes_exactly(
        voiced_words, tmp_path, fault, at, exit_code):
    """SIGKILL during a step or during the write of ``last.pt``, and Ctrl-C during the write:
    the previous ``last.pt`` (or the one being written) stays whole, the stale lock and the
    half-written temporary file are cleaned up, and the resumed run ends with the weights of a
    run that was never stopped."""
    args = ["vocoder", "--data", str(voiced_words), "--batch-size", "2", "--crop-frames", "16",
            "--val-every", "4", "--save-every", "2", "--log-every", "1", "--warmup", "1",
            "--threads", "1", "--no-progress", "--set", "channels=8", "--set", "blocks=1",
            "--steps", "6"]
    assert train_main([*args, "--out", str(tmp_path / "full")]) == 0
    out = tmp_path / "cut"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", _DYING_RUN, fault, str(at), *args, "--out",
                          str(out)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == exit_code, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    if fault == "kill_in_write":  # the half-written file is there; last.pt is the one before
        assert [p.name for p in out.glob(".*.partial")], sorted(p.name for p in out.iterdir())
        assert (out / LOCK_NAME).exists()
    saved = load_checkpoint(out / "last.pt")  # whole and verified, whatever the fault
    assert 1 <= saved["step"] < 6
    resumed = subprocess.run([sys.executable, "-m", "utils.train", *args, "--out", str(out),
                              "--resume"], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert not list(out.glob("*.partial")) and not list(out.glob(".*.partial"))
    assert not (out / LOCK_NAME).exists()
    a = load_checkpoint(tmp_path / "full" / "last.pt")["model"]
    b = load_checkpoint(out / "last.pt")["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_refusal_on_rank_0_under_torchrun_ends_every_process(voiced_words, tmp_path):
    """The refusal (here: a folder that holds a run) is said once and no rank waits forever
    for rank 0 in a collective."""
    args = ["vocoder", "--data", str(voiced_words), "--batch-size", "2", "--crop-frames", "16",
            "--val-every", "4", "--save-every", "2", "--log-every", "1", "--warmup", "1",
            "--no-progress", "--set", "channels=8", "--set", "blocks=1", "--steps", "2",
            "--out", str(tmp_path / "run")]
    assert train_main([*args, "--threads", "1"]) == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                        "--nproc_per_node", "2", "-m", "utils.train", *args], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "error: --out:" in r.stderr and "holds a run already" in r.stderr


def test_a_requested_word_that_the_folder_lacks_is_one_clear_error(capsys):
    from utils.evaluate import main as evaluate_main

    ckpt = ROOT / "data" / "pretrained" / "words_lenet_complex_s0.pt"
    assert evaluate_main(["words", str(ckpt), str(ROOT / "data" / "speech_words"),
                          "--words", "yes", "nope"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "no folder for word(s) nope" in err
