"""Task ``prior``: an autoregressive prior over a codec's first-stage codes.

Training (``python -m utils.train prior --codec CODEC.pt --data DIR --out RUN``): every
training clip of the Speech Commands-layout folders (1 s, word folders as labels) is encoded
by the codec, several times with the waveform shifted by a fraction of a latent frame (each
shift gives another, equally valid code sequence); the :class:`utils.models.prior.CodePrior`
learns ``p(k_t | k_<t, word)`` with cross-entropy, the word hidden for a share of the
sequences. Validation: bits per index on the validation clips, with and without the word;
``best.pt`` has the lowest conditional value.

Evaluation (``python -m utils.evaluate prior CHECKPOINT DATA_DIR --codec CODEC.pt``): bits
per index of the clips' codes under the prior (with and without the word), against the
codec's fixed ``log2 K`` and the codes' unigram entropy: what an entropy coder driven by the
prior would save.

Notebook: notebooks/03_vae_vs_vqvae.ipynb
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from utils import options
from utils.audio import log_mel
from utils.data.speech_commands import SpeechCommands
from utils.errors import OptionError
from utils.models.prior import MODEL_KIND, CodePrior, PriorConfig, codebook_fingerprint
from utils.models.vqvae import MelVQVAE
from utils.training import Task, TrainConfig, override, train
from utils.vq.bits import code_entropy

__all__ = ["SUMMARY", "TRAIN_DEFAULTS", "PriorTask", "clip_codes", "load_codes",
           "add_train_arguments", "train_command", "add_eval_arguments", "evaluate_command"]

#: One line for ``--help``.
SUMMARY = "autoregressive GRU prior over a codec's first-stage codes (samples, bits per code)"

#: The prior's defaults of the shared training settings.
TRAIN_DEFAULTS = dict(steps=3000, batch_size=64, lr=2e-3, weight_decay=1e-2, warmup=100,
                      min_lr_ratio=0.05, grad_clip=1.0, log_every=50, val_every=500,
                      save_every=500)

#: Clip length in seconds: every clip is cut or zero-padded to it, so every sequence has the
#: same number of latent frames (32 at the collection's rate).
CLIP_SECONDS = 1.0


@torch.no_grad()
def clip_codes(codec: MelVQVAE, clips: Sequence[np.ndarray], shift: int = 0,
               batch_size: int = 64) -> Tensor:
    """First-stage code sequences of equal-length clips ``[N, T']``.

    Notebook: notebooks/03_vae_vs_vqvae.ipynb

    Args:
        codec: The codec (its first residual stage is used).
        clips: Waveforms of one length, at the codec's sample rate.
        shift: Samples dropped at the start (zeros appended at the end), to see the clip
            through another phase of the latent frame grid.
        batch_size: Clips encoded together.
    """
    out = []
    for i in range(0, len(clips), batch_size):
        part = [np.concatenate([y[shift:], np.zeros(shift, np.float32)]) for y in
                clips[i : i + batch_size]]
        x = torch.stack([torch.from_numpy(log_mel(y, codec.features)) for y in part])
        out.append(codec.encode_indices(x.to(codec.codebook_device), 1)[..., 0].cpu())
    return torch.cat(out) if out else torch.zeros(0, 0, dtype=torch.long)


def load_codes(codec: MelVQVAE, folders: Sequence[str | Path], split: str,
               words: Sequence[str], shifts: Sequence[int] = (0,)
               ) -> tuple[Tensor, Tensor, list[str], list[tuple[Path, str]]]:
    """The codes and word labels of every usable clip of ``split`` in ``folders``.

    Notebook: notebooks/03_vae_vs_vqvae.ipynb

    Args:
        codec: The codec.
        folders: Speech Commands-layout folders.
        split: ``"train"``, ``"validation"`` or ``"testing"``.
        words: The class names; only clips of these words are read.
        shifts: Sample shifts (:func:`clip_codes`); each adds one copy of every clip.

    Returns:
        ``(codes [N·len(shifts), T'], labels [N·len(shifts)], report lines, skipped files
        as (path, reason))``.
    """
    sr = codec.features.sr
    clips, labels, report, failed = [], [], [], []
    for folder in folders:
        present = [w for w in words if (Path(folder) / w).is_dir()]
        if not present:
            report.append(f"{folder} [{split}]: none of the words {list(words)}, skipped")
            continue
        ds = SpeechCommands(folder, words=present, split=split, sr=sr,
                            length=int(CLIP_SECONDS * sr), cache=False)
        for i in range(len(ds)):
            clips.append(ds.audio(i))
            labels.append(list(words).index(ds.words[ds.labels[i]]))
        report.append(f"{folder} [{split}]: {len(ds)} clips, {len(ds.failed)} skipped")
        failed += ds.failed
    if not clips:
        empty = torch.zeros(0, 0, dtype=torch.long)
        return empty, torch.zeros(0, dtype=torch.long), report, failed
    codes = torch.cat([clip_codes(codec, clips, s) for s in shifts])
    return codes, torch.tensor(labels * len(shifts)), report, failed


class PriorTask(Task):
    """The code prior for the training loop: code sequences in, cross-entropy out.

    Notebook: notebooks/03_vae_vs_vqvae.ipynb

    Args:
        codec: Checkpoint of the codec whose codes are modelled.
        data: Speech Commands-layout folders (train and validation splits used).
        config: The prior's configuration; its ``num_codes``, ``words`` and
            ``codec_fingerprint`` are filled in from the codec and the data when empty.
        shifts: Sample shifts of the training clips (:func:`clip_codes`).
    """

    name = "prior"
    kind = MODEL_KIND
    best_metric = "val_bits"
    best_mode = "min"

    def __init__(self, codec: str | Path, data: Sequence[str | Path],
                 config: PriorConfig | None = None, *,
                 shifts: Sequence[int] = (0, 128, 256, 384)) -> None:
        missing = [str(d) for d in data if not Path(d).is_dir()]
        if not data or missing:
            raise OptionError("--data", f"no such folder: {', '.join(missing) or '(none given)'}")
        if not Path(codec).is_file():
            raise OptionError("--codec", f"{codec}: checkpoint file not found")
        if not shifts or any(s < 0 for s in shifts):
            raise OptionError("--shifts", f"must be non-negative sample counts, got {shifts}")
        self.codec_path = str(codec)
        self.data = [str(d) for d in data]
        self.shifts = tuple(int(s) for s in shifts)
        self.config = config or PriorConfig()
        self.train_codes = self.train_labels = self.val_codes = self.val_labels = None

    def load_data(self) -> list[str]:  # noqa: D102
        codec = MelVQVAE.from_checkpoint(self.codec_path)
        # the classes: the words of the first folder (the others add clips of those words)
        words = self.config.words or tuple(
            SpeechCommands(self.data[0], split=None, length=None, cache=False).words)
        self.config = dataclasses.replace(
            self.config, words=words, num_codes=codec.quantizer.codebook_sizes[0],
            codec_fingerprint=codebook_fingerprint(codec))
        self.train_codes, self.train_labels, report, _ = load_codes(
            codec, self.data, "train", words, self.shifts)
        self.val_codes, self.val_labels, vreport, _ = load_codes(codec, self.data,
                                                                 "validation", words)
        if len(self.train_codes) == 0:
            raise OptionError("--data", f"no usable training clip in {', '.join(self.data)}")
        return report + vreport

    def build_model(self) -> CodePrior:  # noqa: D102
        return CodePrior(self.config)

    def batch(self, step: int, *, seed: int, batch_size: int, rank: int = 0,
              world: int = 1) -> tuple[Tensor, Tensor]:  # noqa: D102
        # a pure function of (seed, step): random sequences, labels hidden at random
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        idx = torch.randint(len(self.train_codes), (batch_size,), generator=g)
        labels = self.train_labels[idx].clone()
        hide = torch.rand(batch_size, generator=g) < self.config.label_dropout
        labels[hide] = len(self.config.words)
        return self.train_codes[idx][rank::world], labels[rank::world]

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...]
             ) -> tuple[Tensor, dict[str, Any]]:  # noqa: D102
        codes, labels = batch
        logits = model(codes, labels)
        nats = nn.functional.cross_entropy(logits.transpose(1, 2), codes)
        return nats, {"bits_per_code": float(nats.detach()) / math.log(2)}

    @torch.no_grad()
    def validate(self, model: nn.Module, device: torch.device) -> dict[str, Any]:  # noqa: D102
        if self.val_codes is None or len(self.val_codes) == 0:
            return {}
        was = model.training
        model.eval()
        try:
            codes = self.val_codes.to(device)
            cond = float(model.bits_per_code(codes, self.val_labels.to(device)).mean())
            uncond = float(model.bits_per_code(codes).mean())
        finally:
            model.train(was)
        return {"val_bits": cond, "val_bits_uncond": uncond}

    def checkpoint(self, model: nn.Module) -> dict[str, Any]:  # noqa: D102
        return model.checkpoint(task=self.name, data=self.data, codec=self.codec_path,
                                shifts=list(self.shifts))


# --------------------------------------------------------------------------------------------
# Command lines
# --------------------------------------------------------------------------------------------


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The prior's options of ``python -m utils.train prior``.

    Notebook: notebooks/03_vae_vs_vqvae.ipynb
    """
    p.add_argument("--codec", required=True, help="codec checkpoint whose codes are modelled")
    p.add_argument("--data", action="append", required=True,
                   help="Speech Commands-layout folder (repeatable); word folders are labels")
    p.add_argument("--shifts", type=options.COUNT0, nargs="+", default=[0, 128, 256, 384],
                   help="sample shifts of each training clip (more code sequences per clip)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="model hyper-parameter, e.g. --set hidden=128 --set label_dropout=0.3")


def train_command(args: argparse.Namespace, cfg: TrainConfig) -> dict[str, Any]:
    """Run ``python -m utils.train prior``: every option is checked before the data loads.

    Notebook: notebooks/03_vae_vs_vqvae.ipynb

    Returns:
        The final record.
    """
    config = override(PriorConfig(), args.set)
    task = PriorTask(args.codec, args.data, config, shifts=args.shifts)
    return train(task, cfg).last


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    """The prior's options of ``python -m utils.evaluate prior``.

    Notebook: notebooks/03_vae_vs_vqvae.ipynb
    """
    p.add_argument("checkpoint", help="prior checkpoint (.pt)")
    p.add_argument("data_dir", help="Speech Commands-layout folder")
    p.add_argument("--codec", required=True, help="the codec the prior was trained on")
    p.add_argument("--split", choices=["train", "validation", "testing"], default="testing")
    p.add_argument("--json", action="store_true", help="end with one JSON line")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")


def evaluate_command(a: argparse.Namespace) -> dict[str, Any]:
    """Run ``python -m utils.evaluate prior``: bits per code, printed and returned.

    Notebook: notebooks/03_vae_vs_vqvae.ipynb

    Returns:
        ``bits_conditional``, ``bits_unconditional``, ``bits_unigram`` (entropy of the
        codes' histogram), ``bits_fixed`` (``log2 K``), ``n_clips``, ``n_failed``.
    """
    from utils.distributed import resolve_device

    for path in (a.checkpoint, a.codec):
        if not Path(path).is_file():
            raise OptionError(path, "checkpoint file not found")
    if not Path(a.data_dir).is_dir():
        raise OptionError(a.data_dir, "no such folder")
    device = resolve_device(a.device)
    prior = CodePrior.from_checkpoint(a.checkpoint, map_location=device)
    codec = MelVQVAE.from_checkpoint(a.codec)
    prior.check_codec(codec)
    codes, labels, report, failed = load_codes(codec, [a.data_dir], a.split,
                                               prior.config.words)
    if len(codes) == 0:
        raise OptionError(a.data_dir, f"no clip of the words {list(prior.config.words)} in "
                                      f"split {a.split!r}")
    with torch.no_grad():
        cond = float(prior.bits_per_code(codes.to(device), labels.to(device)).mean())
        uncond = float(prior.bits_per_code(codes.to(device)).mean())
    counts = torch.bincount(codes.flatten(), minlength=prior.config.num_codes)
    unigram = float(code_entropy(counts.float()))
    summary = {"system": "GRU prior over stage-1 codes", "data": f"{a.data_dir} [{a.split}]",
               "bits_conditional": round(cond, 4), "bits_unconditional": round(uncond, 4),
               "bits_unigram": round(unigram, 4),
               "bits_fixed": math.log2(prior.config.num_codes),
               "n_clips": len(codes), "n_failed": len(failed)}
    for line in report:
        print(line)
    for path, reason in failed:
        print(f"  skipped {path}: {reason}")
    print(f"bits per code: fixed {summary['bits_fixed']:.2f} · unigram {unigram:.3f} · "
          f"prior without the word {uncond:.3f} · prior with the word {cond:.3f}")
    return summary
