"""utils.data: the Speech Commands-layout dataset, splits, collate, and the verified download."""

from __future__ import annotations

import functools
import hashlib
import io
import shutil
import tarfile
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from utils import data
from utils.audio import SilenceWarning, log_mel
from utils.data import (
    DownloadError,
    SkippedFilesWarning,
    SpeechCommands,
    collate,
    download_speech_commands,
    find_clips,
    speaker_of,
    split_of,
    which_set,
)

SR = 16000
PROJECT = Path(__file__).resolve().parents[1]
BAD_AUDIO = Path(__file__).resolve().parents[2] / "shared" / "bad_audio"

# Speakers of the official Speech Commands lists (validation_list.txt / testing_list.txt of the
# v0.02 release), used as reference values for the hash rule.
OFFICIAL_VALIDATION = ["8b775397", "2643992f", "060cd039", "f5e5e8b0", "dbb40d24", "6a27a9bf"]
OFFICIAL_TESTING = ["2aa787cf", "ffa76c4a", "24ad3ebe", "d7467392", "5828dfa2", "85834399"]
VAL, TEST = OFFICIAL_VALIDATION[0], OFFICIAL_TESTING[0]
TRAIN_A, TRAIN_B = "c0ffee01", "c0ffee02"
WORDS = ["no", "up", "yes"]
SPEAKERS = [VAL, TEST, TRAIN_A, TRAIN_B]


def tone(freq: float, n: int, sr: int = SR, amp: float = 0.3) -> np.ndarray:
    t = np.arange(n) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write(path: Path, y: np.ndarray, sr: int = SR, subtype: str = "FLOAT") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), y, sr, subtype=subtype)
    return path


def clip_len(w: int, s: int) -> int:
    """A different length per clip (0.5 .. 0.9 s) for the variable-length tests."""
    return 8000 + 800 * ((w * len(SPEAKERS) + s) % 6)


def make_clean(root: Path, ext: str = ".wav") -> dict[Path, tuple[str, np.ndarray]]:
    """3 words x 4 speakers of distinct tones (float WAVs load bit-exactly), plus decoys."""
    written = {}
    for w, word in enumerate(WORDS):
        for s, spk in enumerate(SPEAKERS):
            y = tone(200 + 100 * w + 25 * s, clip_len(w, s))
            p = root / word / f"{spk}_nohash_0{ext}"
            write(p, y, subtype="FLOAT" if ext == ".wav" else "PCM_16")
            written[p] = (word, y)
    write(root / "_background_noise_" / "white.wav", tone(50, 4000))  # ignored folder
    (root / "yes" / "notes.txt").write_text("not a clip")  # ignored extension
    write(root / "yes" / ".hidden_nohash_0.wav", tone(50, 4000))  # ignored hidden file
    return written


def make_bad(root: Path) -> dict[str, Path]:
    """The brief's difficult files, each named after what is wrong with it."""
    d = root / "yes"
    d.mkdir(parents=True, exist_ok=True)
    files = {}
    files["garbage"] = d / "badbad01_nohash_0.wav"
    files["garbage"].write_bytes(b"RIFF....WAVEfmt " + b"\x07" * 300)
    files["empty"] = d / "badbad02_nohash_0.flac"
    files["empty"].write_bytes(b"")
    nan = tone(300, 4000)
    nan[100] = np.nan
    files["nan"] = write(d / "badbad03_nohash_0.wav", nan, subtype="FLOAT")
    files["header_only"] = write(d / "badbad04_nohash_0.wav", np.zeros(0, np.float32))
    return files


@pytest.fixture
def corpus(tmp_path) -> tuple[Path, dict]:
    root = tmp_path / "sc"
    return root, make_clean(root)


# ---------------------------------------------------------------- items, labels, words


def test_items_labels_and_waveforms(corpus):
    root, written = corpus
    ds = SpeechCommands(root, split=None)
    assert ds.words == WORDS and ds.word_to_index == {"no": 0, "up": 1, "yes": 2}
    assert len(ds) == len(ds.files) == len(ds.labels) == len(written) == 12
    assert set(ds.files) == set(written)  # no _background_noise_, .txt or hidden file
    assert ds.report() == [] and ds.failed == [] and ds.silent == []
    for i, path in enumerate(ds.files):
        feature, label = ds[i]
        word, y = written[path]
        assert ds.words[label] == word and label == ds.labels[i]
        assert isinstance(feature, torch.Tensor) and feature.dtype == torch.float32
        assert feature.shape == (SR,)  # length=16000: padded with zeros at the end
        np.testing.assert_array_equal(feature[: len(y)].numpy(), y)
        assert torch.all(feature[len(y) :] == 0)
    assert ds[-1][1] == ds.labels[-1]
    with pytest.raises(IndexError):
        ds[len(ds)]
    assert ds.word_counts() == {"no": 4, "up": 4, "yes": 4}


def test_word_filter_sets_label_order(corpus):
    root, written = corpus
    ds = SpeechCommands(root, words=["yes", "no"], split=None)
    assert ds.words == ["yes", "no"]
    assert {p.parent.name for p in ds.files} == {"yes", "no"}
    assert all(ds.words[lab] == p.parent.name for p, lab in zip(ds.files, ds.labels, strict=True))
    assert len(ds) == 8
    with pytest.raises(ValueError, match="sideways"):
        SpeechCommands(root, words=["yes", "sideways"], split=None)
    with pytest.raises(FileNotFoundError):
        SpeechCommands(root / "missing")


def test_speaker_of():
    assert speaker_of("right/0a7c2a8d_nohash_1.wav") == "0a7c2a8d"
    assert speaker_of(Path("/x/yes/ab_cd_nohash_0.flac")) == "ab_cd"
    assert speaker_of("left/recording3.flac") == "recording3"


# ---------------------------------------------------------------- splits


def test_hash_rule_matches_official_lists_and_is_stable():
    """Reference values: speakers of the official v0.02 lists land in the listed split."""
    for spk in OFFICIAL_VALIDATION:
        assert which_set(f"{spk}_nohash_0.wav") == "validation", spk
    for spk in OFFICIAL_TESTING:
        assert which_set(f"{spk}_nohash_0.wav") == "testing", spk
    # only the speaker matters: repetition index, word folder and extension do not
    for spk in OFFICIAL_VALIDATION + OFFICIAL_TESTING + [TRAIN_A, TRAIN_B]:
        names = [f"{spk}_nohash_{n}{ext}" for n in range(3) for ext in (".wav", ".flac")]
        assert len({which_set(n) for n in names} | {which_set(f"go/{names[0]}")}) == 1
    # 10 / 10 / 80 % of speakers (binomial sd 0.2 % for 20000 speakers)
    rng = np.random.default_rng(0)
    spks = [f"{v:08x}" for v in rng.integers(0, 2**32, 20000)]
    got = [which_set(f"{s}_nohash_0.wav") for s in spks]
    shares = {k: got.count(k) / len(got) for k in ("train", "validation", "testing")}
    assert abs(shares["validation"] - 0.1) < 0.01 and abs(shares["testing"] - 0.1) < 0.01
    assert all(which_set(f"{s}_nohash_0.wav", 0, 0) == "train" for s in spks[:200])
    assert all(which_set(f"{s}_nohash_0.wav", 50, 50) != "train" for s in spks[:200])
    with pytest.raises(ValueError):
        which_set("a_nohash_0.wav", 60, 50)


def test_hash_rule_splits_without_lists_keep_speakers_apart(corpus):
    root, written = corpus
    splits = {s: SpeechCommands(root, split=s) for s in ("train", "validation", "testing")}
    files = {s: set(ds.files) for s, ds in splits.items()}
    assert set().union(*files.values()) == set(written)
    assert sum(len(f) for f in files.values()) == len(written)  # disjoint
    spk = {s: set(ds.speakers) for s, ds in splits.items()}
    assert spk["validation"] == {VAL} and spk["testing"] == {TEST}
    assert spk["train"] == {TRAIN_A, TRAIN_B}
    assert SpeechCommands(root, split="training").files == splits["train"].files
    assert SpeechCommands(root, split="test").files == splits["testing"].files
    with pytest.raises(ValueError, match="split"):
        SpeechCommands(root, split="dev")


def test_split_lists_respected_first_entry_kept_seed_iloc_off_by_one(tmp_path):
    """Seed defect (iloc[1:700]): the seed dropped the first listed clip and had no validation
    split. Here a split is exactly its list -- first line included -- and train is the rest.
    The lists name .wav files while the folder holds FLAC copies: they still match."""
    root = tmp_path / "sc"
    written = make_clean(root, ext=".flac")
    # lists that deliberately disagree with the hash rule (TRAIN_A is listed as validation)
    (root / "validation_list.txt").write_text(
        "".join(f"{w}/{TRAIN_A}_nohash_0.wav\n" for w in WORDS) + "\n"
    )
    (root / "testing_list.txt").write_text("".join(f"./{w}/{VAL}_nohash_0.wav\n" for w in WORDS))
    val = SpeechCommands(root, split="validation")
    test = SpeechCommands(root, split="testing")
    train = SpeechCommands(root, split="train")
    assert set(val.speakers) == {TRAIN_A} and len(val) == 3
    assert set(test.speakers) == {VAL} and len(test) == 3
    assert set(train.speakers) == {TEST, TRAIN_B} and len(train) == 6
    assert root / "no" / f"{VAL}_nohash_0.flac" in test.files  # the first listed clip
    assert set(val.files) | set(test.files) | set(train.files) == set(written)
    first = root / "no" / f"{TRAIN_A}_nohash_0.flac"
    assert split_of(first) == "validation"  # root defaults to the grandparent folder
    assert split_of(root / "up" / f"{TEST}_nohash_0.flac", root) == "train"


def test_bundled_data_shares_no_voice_between_splits():
    root = PROJECT / "data" / "speech_words"
    if not root.is_dir():
        pytest.skip("data/speech_words not generated yet")
    by_split: dict[str, set[str]] = {"train": set(), "validation": set(), "testing": set()}
    for path, _ in find_clips(root):
        by_split[split_of(path, root)].add(speaker_of(path))
    assert all(by_split.values()), {k: len(v) for k, v in by_split.items()}
    assert not by_split["train"] & by_split["validation"]
    assert not by_split["train"] & by_split["testing"]
    assert not by_split["validation"] & by_split["testing"]


# ---------------------------------------------------------------- difficult files


def test_bad_files_skipped_with_one_warning_and_reported(corpus):
    root, written = corpus
    bad = make_bad(root)
    silent = write(root / "no" / "5113e7a1_nohash_0.wav", np.zeros(SR, np.float32))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = SpeechCommands(root, split=None)
    skipped = [w for w in caught if issubclass(w.category, SkippedFilesWarning)]
    silence = [w for w in caught if issubclass(w.category, SilenceWarning)]
    assert len(skipped) == 1 and "skipped 4 of 17" in str(skipped[0].message)
    assert len(silence) == 1  # one summary, not one per clip
    reasons = {Path(p): r for p, r in ds.report()}
    assert reasons.keys() == set(bad.values())
    assert "empty" in reasons[bad["empty"]]
    assert "NaN" in reasons[bad["nan"]]
    assert "unsupported" in reasons[bad["garbage"]] or "corrupt" in reasons[bad["garbage"]]
    assert "no samples" in reasons[bad["header_only"]]
    assert ds.silent == [silent] and silent in ds.files  # silent clips load, they are kept
    assert set(ds.files) == set(written) | {silent}
    # a whole epoch through a DataLoader: no crash, and no warning per item
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        n = sum(len(labels) for _, labels in DataLoader(ds, batch_size=5))
    assert n == len(ds) == 13 and not caught


def test_stereo_44k_mixed_down_and_resampled_seed_resampler_never_applied(tmp_path):
    """Seed defect: change_sample_rate built a Resample module and never applied it, so a
    44.1 kHz file went through at the wrong rate. Reference: the analytic 16 kHz signal."""
    root = tmp_path / "sc"
    make_clean(root)
    n44 = 44100  # 1 s of 1 kHz; channels 0.8 and 0.2 -> mono mean 0.5
    t = np.arange(n44) / 44100
    left, right = 0.8 * np.sin(2 * np.pi * 1000 * t), 0.2 * np.sin(2 * np.pi * 1000 * t)
    path = write(root / "up" / "57e4e0a1_nohash_0.wav", np.stack([left, right], 1), 44100)
    assert sf.info(str(path)).channels == 2 and sf.info(str(path)).samplerate == 44100
    for length in (SR, None):
        ds = SpeechCommands(root, words=["up"], split=None, length=length)
        y = ds[ds.files.index(path)][0].numpy().astype(np.float64)
        assert y.shape == (SR,)
        ref = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(SR) / SR)
        assert np.max(np.abs(y[300:-300] - ref[300:-300])) < 2e-3


def test_shared_bad_audio_files_each_reported(tmp_path):
    if not BAD_AUDIO.is_dir() or not any(BAD_AUDIO.glob("*.flac")):
        pytest.skip("../shared/bad_audio not present")
    root = tmp_path / "sc"
    sources = sorted(BAD_AUDIO.glob("*.flac"))
    (root / "alexa").mkdir(parents=True)
    for f in sources:  # copied into tmp_path only, never into the project
        shutil.copyfile(f, root / "alexa" / f.name)
    write(root / "alexa" / "900d0001_nohash_0.wav", tone(440, SR))
    with pytest.warns(SkippedFilesWarning, match=f"skipped {len(sources)} of"):
        ds = SpeechCommands(root, split=None)
    assert len(ds) == 1
    assert sorted(Path(p).name for p, _ in ds.report()) == [f.name for f in sources]
    assert all("corrupt" in reason for _, reason in ds.report())


# ---------------------------------------------------------------- cache and collate


def test_cache_computes_each_feature_once_across_epochs(corpus):
    root, _ = corpus
    calls = []

    def counting_log_mel(y):
        calls.append(1)
        return log_mel(y)

    ds = SpeechCommands(root, split=None, transform=counting_log_mel)
    assert not calls  # nothing computed at construction
    epochs = [
        [x.clone() for batch, _ in DataLoader(ds, batch_size=4, shuffle=True) for x in batch]
        for _ in range(2)
    ]
    assert len(calls) == len(ds) == 12  # once per item, not once per epoch
    assert sum(len(e) for e in epochs) == 24
    fresh = SpeechCommands(root, split=None, transform=log_mel, cache=False)
    torch.testing.assert_close(ds[3][0], fresh[3][0], rtol=0, atol=0)
    assert ds[3][0].shape == (80, SR // 256 + 1)
    calls.clear()
    uncached = SpeechCommands(root, split=None, transform=counting_log_mel, cache=False)
    for _ in range(2):
        list(DataLoader(uncached, batch_size=4))
    assert len(calls) == 2 * len(uncached)
    calls.clear()
    eager = SpeechCommands(root, split=None, transform=counting_log_mel).precompute(progress=False)
    assert len(calls) == len(eager)  # filled before a DataLoader forks its workers
    list(DataLoader(eager, batch_size=4))
    assert len(calls) == len(eager)


def test_collate_pads_variable_length_features(corpus):
    root, written = corpus
    ds = SpeechCommands(root, split=None, length=None, transform=log_mel)
    floor = float(np.log10(1e-5))
    loader = DataLoader(ds, batch_size=5, collate_fn=functools.partial(collate, pad_value=floor))
    seen = 0
    for features, labels, lengths in loader:
        b = len(labels)
        assert features.shape[:2] == (b, 80) and features.shape[2] == int(lengths.max())
        for j in range(b):
            item, label = ds[seen + j]
            n = int(lengths[j])
            assert n == 1 + len(written[ds.files[seen + j]][1]) // 256  # centred frames
            assert labels[j] == label
            torch.testing.assert_close(features[j, :, :n], item, rtol=0, atol=0)
            assert torch.all(features[j, :, n:] == floor)
        seen += b
    assert seen == len(ds)
    # raw waveforms: lengths are the clip lengths
    wav = SpeechCommands(root, split=None, length=None)
    x, _, lengths = collate([wav[0], wav[1]])
    assert lengths.tolist() == [len(written[p][1]) for p in wav.files[:2]]
    assert x.shape == (2, max(lengths.tolist()))
    with pytest.raises(ValueError, match="agree"):
        collate([(torch.zeros(80, 5), 0), (torch.zeros(64, 5), 1)])


# ---------------------------------------------------------------- download


PAYLOAD_PATH = "/speech_commands_test.tar.gz"


def build_archive(tmp_path: Path) -> bytes:
    """A small .tar.gz in the layout of the official archive (files at its top level)."""
    src = tmp_path / "archive_src"
    make_clean(src)
    (src / "validation_list.txt").write_text(f"yes/{VAL}_nohash_0.wav\n")
    (src / "testing_list.txt").write_text(f"yes/{TEST}_nohash_0.wav\n")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for p in sorted(src.rglob("*")):
            tar.add(p, arcname="./" + p.relative_to(src).as_posix(), recursive=False)
    return buf.getvalue()


class RangeServer(ThreadingHTTPServer):
    """Serves one payload; supports ``Range: bytes=N-``; can ignore Range, drop, corrupt."""

    def __init__(self, payload: bytes) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.payload = payload
        self.honour_range = True
        self.drop_after: int | None = None  # first response stops after this many bytes
        self.corrupt = False
        self.requests: list[dict] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{PAYLOAD_PATH}"


class _Handler(BaseHTTPRequestHandler):
    server: RangeServer

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        srv = self.server
        rng = self.headers.get("Range")
        srv.requests.append({"path": self.path, "range": rng})
        if self.path != PAYLOAD_PATH:
            self.send_error(404)
            return
        body = srv.payload
        if srv.corrupt:
            body = bytes(b ^ 0x5A for b in body)
        start = 0
        if rng and srv.honour_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        part = body[start:]
        if srv.drop_after is not None:
            part, srv.drop_after = part[: srv.drop_after], None
        self.wfile.write(part)


@pytest.fixture
def server(tmp_path, monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    srv = RangeServer(build_archive(tmp_path))
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def fetch(srv: RangeServer, cache: Path, **kw) -> Path:
    sha = hashlib.sha256(srv.payload).hexdigest()
    return download_speech_commands(url=srv.url, sha256=sha, cache_dir=cache, progress=False, **kw)


def test_download_extracts_verifies_and_hits_cache(server, tmp_path):
    cache = tmp_path / "cache"
    dest = fetch(server, cache)
    assert dest == cache / "speech_commands_v0.02"
    assert len(server.requests) == 1 and server.requests[0]["range"] is None
    assert (cache / PAYLOAD_PATH.lstrip("/")).read_bytes() == server.payload
    assert not list(cache.glob("*.part"))
    # the extracted folder is a Speech Commands folder: lists, words, noise folder ignored
    ds = SpeechCommands(dest, split="validation")
    assert ds.words == WORDS and [speaker_of(p) for p in ds.files] == [VAL]
    assert len(SpeechCommands(dest, split=None)) == 12
    # second call: no request at all
    assert fetch(server, cache) == dest
    assert len(server.requests) == 1


def test_download_default_cache_dir_from_environment(server, tmp_path, monkeypatch):
    monkeypatch.setenv("SOUND_RECON_CACHE", str(tmp_path / "envcache"))
    assert data.default_cache_dir() == tmp_path / "envcache"
    sha = hashlib.sha256(server.payload).hexdigest()
    dest = download_speech_commands(url=server.url, sha256=sha, progress=False)
    assert dest == tmp_path / "envcache" / "speech_commands_v0.02" and (dest / "yes").is_dir()


def test_download_resumes_partial_file_with_range(server, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    k = len(server.payload) // 3
    (cache / (PAYLOAD_PATH.lstrip("/") + ".part")).write_bytes(server.payload[:k])
    dest = fetch(server, cache)
    assert [r["range"] for r in server.requests] == [f"bytes={k}-"]
    assert (dest / "validation_list.txt").is_file()


def test_download_complete_part_file_gets_416_and_verifies(server, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / (PAYLOAD_PATH.lstrip("/") + ".part")).write_bytes(server.payload)
    assert (fetch(server, cache) / "yes").is_dir()
    assert [r["range"] for r in server.requests] == [f"bytes={len(server.payload)}-"]


def test_download_restarts_cleanly_when_server_ignores_range(server, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    server.honour_range = False
    # a partial file that is NOT a prefix of the payload: appending would break the hash
    (cache / (PAYLOAD_PATH.lstrip("/") + ".part")).write_bytes(b"\0" * 1000)
    dest = fetch(server, cache)
    assert len(server.requests) == 1 and server.requests[0]["range"] == "bytes=1000-"
    assert (dest / "yes").is_dir()


def test_download_dropped_connection_is_resumed(server, tmp_path):
    k = len(server.payload) // 2
    server.drop_after = k
    dest = fetch(server, tmp_path / "cache")
    assert [r["range"] for r in server.requests] == [None, f"bytes={k}-"]
    assert (dest / "testing_list.txt").is_file()


def test_download_checksum_mismatch_deletes_file_and_raises(server, tmp_path):
    cache = tmp_path / "cache"
    server.corrupt = True  # same length, wrong bytes
    with pytest.raises(DownloadError, match="SHA-256 mismatch") as info:
        fetch(server, cache)
    assert "deleted" in str(info.value) and server.url in str(info.value)
    assert list(cache.iterdir()) == []  # neither .part nor archive nor extracted folder
    server.corrupt = False  # the next call downloads again and succeeds
    assert (fetch(server, cache) / "yes").is_dir()
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_speech_commands(
            url=server.url + ".missing", sha256="0" * 64, cache_dir=cache, progress=False
        )


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_download_refuses_archive_escaping_destination(server, tmp_path, kind):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        ok = tarfile.TarInfo("yes/fine.txt")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"ok"))
        if kind == "symlink":
            evil = tarfile.TarInfo("yes/link")
            evil.type, evil.linkname = tarfile.SYMTYPE, "../../outside"
            tar.addfile(evil)
        else:
            evil = tarfile.TarInfo("../evil.txt" if kind == "dotdot" else "/tmp/evil.txt")
            evil.size = 4
            tar.addfile(evil, io.BytesIO(b"evil"))
    server.payload = buf.getvalue()
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match="refusing"):
        fetch(server, cache)
    assert not (cache / "speech_commands_v0.02").exists()
    assert not (cache / "evil.txt").exists() and not (tmp_path / "outside").exists()
    assert not list(cache.glob("*.extracting"))


def test_download_pinned_defaults_and_never_deletes_foreign_folder(server, tmp_path, monkeypatch):
    """The default path (url=None, sha256=None) uses the pinned url, hash and size; a .part
    longer than the pinned size cannot be a prefix and is dropped; an existing folder this
    function did not create is never overwritten."""
    sha = hashlib.sha256(server.payload).hexdigest()
    pinned = data.download._Archive(server.url, sha, len(server.payload))
    monkeypatch.setitem(data.SPEECH_COMMANDS, "v0.02", pinned)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / (PAYLOAD_PATH.lstrip("/") + ".part")).write_bytes(server.payload + b"extra")
    mine = tmp_path / "my_folder"
    (mine / "notes").mkdir(parents=True)
    with pytest.raises(DownloadError, match="not a finished download"):
        download_speech_commands(mine, cache_dir=cache, progress=False)
    assert (mine / "notes").is_dir() and not list(tmp_path.glob("my_folder.*"))
    assert [r["range"] for r in server.requests] == [None]  # the long .part was dropped
    dest = download_speech_commands(cache_dir=cache, progress=False, keep_archive=False)
    assert (dest / "yes").is_dir() and list(cache.iterdir()) == [dest]
    assert len(server.requests) == 1  # the verified archive from the first call was reused
