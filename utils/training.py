"""The one training loop of the collection, for every model that trains.

A *task* (:class:`Task`; the codec, the word classifiers, ...) says what differs from one
model to the next: how to build the model, the batch of a step, the loss, a validation that
returns metrics and which metric picks the best checkpoint. :func:`train` owns everything
else, once, and reads top to bottom like the story of a run:

1. **check** every option before anything loads (a bad value fails in a second, not after
   the data has loaded), and the output folder (writable; temporary files of a killed save
   removed);
2. **processes and device**: one process, or several under ``torchrun`` (gloo on CPU, nccl
   on CUDA); ``--device auto`` is CUDA when present;
3. **data**: the task loads its clips (bad files are skipped and reported);
4. **model, optimizer, schedule**: AdamW, linear warm-up then a cosine decay to
   ``min_lr_ratio`` of the peak (:func:`warmup_cosine`, the one schedule);
5. **resume**: model, optimizer, schedule, random state and step come back from
   ``last.pt``, so a run stopped and resumed ends with the same weights, bit for bit, as one
   that ran through (same thread count: floating-point sums depend on it);
6. **the loop**: batch → loss → backward → clip → step; a JSON line per ``log_every`` steps;
   validation every ``val_every`` steps keeps the best weights in ``best.pt``; ``last.pt`` is
   saved atomically every ``save_every`` steps and when ``max_minutes`` is up;
7. **finish**: the last record, the run folder, the trained model.

Checkpoints are plain dicts (``kind``, ``format_version``, the model's configuration dataclass,
weights, and for ``last.pt`` the training state) that load with ``weights_only=True``.

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from utils import distributed
from utils.checkpoint import load_checkpoint, remove_stale_temps, save_atomic, writable_folder
from utils.errors import OptionError

__all__ = [
    "TrainConfig",
    "Task",
    "TrainResult",
    "warmup_cosine",
    "override",
    "train",
]


# --------------------------------------------------------------------------------------------
# What a run is told
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainConfig:
    """Settings of a training run that do not depend on the model (stored in ``last.pt``).

    Notebook: notebooks/02_vq_vae.ipynb

    Attributes:
        out: Run folder: ``last.pt``, ``best.pt`` and ``log.jsonl``.
        steps: Total optimisation steps (the schedule's length).
        batch_size: Global batch (all processes together).
        lr: Peak learning rate of AdamW.
        weight_decay: AdamW weight decay.
        warmup: Steps of linear warm-up.
        min_lr_ratio: Learning rate at the end of the cosine, as a share of ``lr``.
        grad_clip: Clip the gradient norm to this value (0: no clipping).
        seed: Seed of the initial weights and of every batch.
        log_every: Steps between JSON log lines.
        val_every: Steps between validations.
        save_every: Steps between saves of ``last.pt``.
        max_minutes: Stop cleanly (and save) after this wall time; ``None``: no limit.
        stop_at: Stop (and save) after this step, e.g. to test an interruption.
        resume: Continue from ``out/last.pt``.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        amp: Mixed precision (bfloat16 autocast) on CUDA.
        threads: torch intra-op threads (``None``: torch's default).
        progress: Show a ``tqdm`` progress bar.
        save_rank_states: Also write ``rank<r>_final.pt`` on every process (for DDP checks).
    """

    out: str = "runs/run"
    steps: int = 4000
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: int = 200
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0
    log_every: int = 25
    val_every: int = 500
    save_every: int = 250
    max_minutes: float | None = None
    stop_at: int | None = None
    resume: bool = False
    device: str = "auto"
    amp: bool = False
    threads: int | None = None
    progress: bool = True
    save_rank_states: bool = False

    def __post_init__(self) -> None:
        positive = ("steps", "batch_size", "log_every", "val_every", "save_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise OptionError(_flag(name), f"must be at least 1, got {getattr(self, name)}")
        for name in ("lr", "max_minutes"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise OptionError(_flag(name), f"must be positive, got {value}")
        for name in ("weight_decay", "warmup", "grad_clip"):
            if getattr(self, name) < 0:
                raise OptionError(_flag(name), f"must not be negative, got {getattr(self, name)}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise OptionError("--min-lr-ratio", f"must be in [0, 1], got {self.min_lr_ratio}")
        if self.stop_at is not None and self.stop_at < 1:
            raise OptionError("--stop-at", f"must be at least 1, got {self.stop_at}")
        if self.threads is not None and self.threads < 1:
            raise OptionError("--threads", f"must be at least 1, got {self.threads}")
        if self.device.split(":")[0] not in distributed.DEVICES:
            raise OptionError("--device", f"must be one of {distributed.DEVICES}, "
                                          f"got {self.device!r}")


#: Settings that must match the run being resumed (others, such as ``steps``, may change).
_RESUME_MUST_MATCH = ("batch_size", "lr", "weight_decay", "warmup", "min_lr_ratio", "grad_clip",
                      "seed")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def override(config: Any, items: list[str], option: str = "--set") -> Any:
    """A copy of a configuration dataclass with ``KEY=VALUE`` strings applied (typed, checked).

    Each value is converted to the type of the field's current value (``int``, ``float``,
    ``bool``: 1/0/true/false/yes/no, ``str``; an optional field that is ``None`` takes its
    declared type, or ``none``); the dataclass's own checks then run, so an
    unknown key, a value of the wrong type or an out-of-range value is one clear error naming
    the option.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        config: A dataclass instance (e.g. :class:`utils.models.vqvae.VQVAEConfig`).
        items: ``["channels=128", ...]``.
        option: The option name, for messages.

    Returns:
        The new configuration.

    Raises:
        OptionError: Malformed item, unknown key, wrong type or invalid value.
    """
    current = asdict(config)
    changes: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep:
            raise OptionError(f"{option} {item}", "expected KEY=VALUE")
        if key not in current:
            raise OptionError(f"{option} {item}", f"unknown key; known: {', '.join(current)}")
        kind = type(current[key])
        declared = str({f.name: f.type for f in dataclasses.fields(config)}[key])
        if "None" in declared:  # an optional field ("int | None")
            if text.strip().lower() == "none":
                changes[key] = None
                continue
            kind = next((t for t in (int, float, str) if declared.startswith(t.__name__)), str)
        try:
            if kind is bool:
                low = text.strip().lower()
                if low not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(text)
                changes[key] = low in ("1", "true", "yes")
            else:
                changes[key] = kind(text)
        except ValueError:
            raise OptionError(f"{option} {item}", f"{key} takes a {kind.__name__}") from None
    try:
        return dataclasses.replace(config, **changes)
    except OptionError:
        raise
    except (ValueError, TypeError) as exc:
        raise OptionError(f"{option} {' '.join(items)}", str(exc)) from None


# --------------------------------------------------------------------------------------------
# What a task brings
# --------------------------------------------------------------------------------------------


class Task:
    """What differs from one model to the next; :func:`train` does the rest.

    Subclasses set the class attributes and implement the methods. ``batch`` must be a pure
    function of ``(seed, step)``, so that resuming is exact and every process of a
    data-parallel run takes its own share of the same global batch.

    Notebook: notebooks/02_vq_vae.ipynb

    Attributes:
        name: Task name on the command line (``"codec"``).
        kind: ``kind`` of its checkpoints (``"mel-vqvae"``); another kind is refused.
        best_metric: Key of :meth:`validate`'s result that picks ``best.pt``.
        best_mode: ``"min"`` or ``"max"``: whether a lower or a higher value is better.
    """

    name: str = ""
    kind: str = ""
    best_metric: str = "val_loss"
    best_mode: str = "min"

    def load_data(self) -> list[str]:
        """Load the training and validation data; returns lines of report for the log."""
        raise NotImplementedError

    def build_model(self) -> nn.Module:
        """A freshly initialised model (under the run's seed)."""
        raise NotImplementedError

    def model_config(self) -> dict[str, Any]:
        """The model's configuration as stored in checkpoints (a resume must match it).

        Default: the task's dataclass ``self.config`` as a dict."""
        config = getattr(self, "config", None)
        if dataclasses.is_dataclass(config) and not isinstance(config, type):
            return dataclasses.asdict(config)
        raise NotImplementedError

    def same_config(self, stored: dict[str, Any]) -> bool:
        """Whether a checkpoint's stored ``config`` describes the model this task builds
        (``--resume`` refuses otherwise). Tasks whose configuration is a dataclass
        (``self.config``) compare after filling the fields an older checkpoint lacks with their
        defaults; a stored configuration the dataclass refuses is not the same."""
        config = getattr(self, "config", None)
        if dataclasses.is_dataclass(config) and not isinstance(config, type):
            try:
                return type(config)(**stored) == config
            except (TypeError, ValueError):  # unknown field, or refused (OptionError)
                return False
        return stored == self.model_config()

    def batch(self, step: int, *, seed: int, batch_size: int, rank: int = 0,
              world: int = 1) -> tuple[Tensor, ...]:
        """This process's share of the global batch of ``step``."""
        raise NotImplementedError

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...]) -> tuple[Tensor, dict[str, Any]]:
        """The loss to minimise and a dict of numbers for the log."""
        raise NotImplementedError

    def validate(self, model: nn.Module, device: torch.device) -> dict[str, Any]:
        """Validation metrics (``{}`` when there is no validation data)."""
        raise NotImplementedError

    def checkpoint(self, model: nn.Module) -> dict[str, Any]:
        """The model's checkpoint dict: ``kind``, ``format_version``, ``config``, ``model``..."""
        raise NotImplementedError


# --------------------------------------------------------------------------------------------
# The schedule
# --------------------------------------------------------------------------------------------


def warmup_cosine(step: int, *, warmup: int, total: int, floor: float = 0.0) -> float:
    """Learning-rate factor: linear warm-up over ``warmup`` steps, then a cosine to ``floor``.

    ``(step + 1) / warmup`` during the warm-up, then
    ``floor + (1 - floor) · ½ (1 + cos(π · progress))`` with ``progress`` going from 0 at the
    end of the warm-up to 1 at ``total`` (and staying there).

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        step: Steps taken so far.
        warmup: Warm-up steps (0: none).
        total: Steps of the whole run.
        floor: Factor at the end, as a share of the peak.

    Returns:
        The factor that multiplies the peak learning rate.
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    """What a run leaves: the trained model (last weights), where its files are, its log.

    Notebook: notebooks/02_vq_vae.ipynb

    Attributes:
        model: The model with the last weights (``out/best.pt`` holds the best).
        out: The run folder.
        step: Steps done.
        best_score: Best value of the task's ``best_metric`` (``nan`` without validation).
        elapsed_s: Wall time of the run, resumed parts included.
        records: Every log record of this call (training steps and validations).
    """

    model: nn.Module
    out: Path
    step: int
    best_score: float
    elapsed_s: float
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def last(self) -> dict[str, Any]:
        """The last training record merged with the last validation record."""
        merged: dict[str, Any] = {}
        for r in self.records:
            merged.update(r)
        return {**merged, "step": self.step, "elapsed_s": round(self.elapsed_s, 1)}


def _better(score: float, best: float, mode: str) -> bool:
    return score < best if mode == "min" else score > best


def _say(procs: distributed.Processes, text: str) -> None:
    if procs.is_main:
        print(text, file=sys.stderr, flush=True)


def train(task: Task, cfg: TrainConfig) -> TrainResult:
    """Train (or resume) one model of ``task`` with the settings ``cfg``.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        task: What differs per model (:class:`Task`).
        cfg: The run's settings (checked when it was built).

    Returns:
        A :class:`TrainResult`.

    Raises:
        OptionError: An option that cannot work here (``--amp`` without CUDA, an output folder
            holding a run without ``--resume``, settings that differ from the resumed run).
        ProjectError: Unwritable output folder, unusable checkpoint.
        FloatingPointError: The loss became NaN or infinite (``last.pt`` holds the last good
            state).
    """
    from tqdm.auto import tqdm

    # ---- 1. Check what can be checked before anything loads ---------------------------------
    procs = distributed.setup(cfg.device)
    if cfg.amp and procs.device.type != "cuda":
        raise OptionError("--amp", "mixed precision needs a CUDA device")
    out = Path(cfg.out)
    last, best = out / "last.pt", out / "best.pt"
    if procs.is_main:
        writable_folder(out)
        for tmp in remove_stale_temps(out):
            _say(procs, f"removed {tmp.name}, left by a save that was interrupted")
        if last.exists() and not cfg.resume:
            raise OptionError("--out", f"{out} holds a run already ({last.name}): pass --resume "
                                       "to continue it, or choose another folder")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    # ---- 2. Data ------------------------------------------------------------------------------
    for line in task.load_data():
        _say(procs, line)

    # ---- 3. Model, optimizer, schedule ------------------------------------------------------
    torch.manual_seed(cfg.seed)
    model = task.build_model().to(procs.device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = functools.partial(warmup_cosine, warmup=cfg.warmup, total=cfg.steps,
                                 floor=cfg.min_lr_ratio)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    step, elapsed_before = 0, 0.0
    best_score = math.inf if task.best_mode == "min" else -math.inf

    # ---- 4. Resume ------------------------------------------------------------------------------
    resumed = cfg.resume and last.exists()
    if resumed:
        ckpt = load_checkpoint(last, task.kind)
        if not task.same_config(ckpt["config"]):
            now, stored = task.model_config(), ckpt["config"]
            differ = sorted(k for k in {*now, *stored} if now.get(k) != stored.get(k))
            raise OptionError("--resume", f"{last}: model settings differ from this command's "
                                          f"({', '.join(differ)})")
        before = ckpt.get("train", {})
        changed = [k for k in _RESUME_MUST_MATCH if k in before and before[k] != getattr(cfg, k)]
        if changed:
            diff = ", ".join(f"{_flag(k)} {before[k]} → {getattr(cfg, k)}" for k in changed)
            raise OptionError("--resume", f"{last}: training settings differ ({diff})")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        rank = procs.rank if procs.rank < len(ckpt["rng"]) else 0
        torch.set_rng_state(ckpt["rng"][rank])
        if procs.device.type == "cuda" and ckpt.get("cuda_rng"):
            torch.cuda.set_rng_state(ckpt["cuda_rng"][rank])
        step, best_score = int(ckpt["step"]), float(ckpt["best_score"])
        elapsed_before = float(ckpt.get("elapsed_s", 0.0))
        _say(procs, f"resumed from {last} at step {step}")
    elif cfg.resume:
        _say(procs, f"no {last} yet: starting from scratch")

    # ---- 5. The loop ----------------------------------------------------------------------------
    net = model
    if procs.world > 1:
        ids = [procs.device] if procs.device.type == "cuda" else None
        net = nn.parallel.DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False)
    log = open(out / "log.jsonl", "a") if procs.is_main else None  # noqa: SIM115
    records: list[dict[str, Any]] = []

    def write(record: dict[str, Any]) -> None:
        records.append(record)
        if log is not None:
            log.write(json.dumps(record) + "\n")
            log.flush()

    if resumed:
        write({"event": "resume", "step": step})
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if cfg.amp
                else contextlib.nullcontext())
    stop = min(cfg.steps, cfg.stop_at or cfg.steps)
    has_validation = True
    t0 = time.time()
    bar = tqdm(total=stop, initial=step, desc=f"train {task.name}",
               disable=not cfg.progress or not procs.is_main)
    model.train()
    while step < stop:
        # one optimisation step on this process's share of the global batch
        batch = task.batch(step, seed=cfg.seed, batch_size=cfg.batch_size, rank=procs.rank,
                           world=procs.world)
        batch = tuple(t.to(procs.device, non_blocking=True) for t in batch)
        with autocast:
            loss, stats = task.loss(net, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        step += 1
        bar.update(1)
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"loss became {loss_value} at step {step}; "
                                     f"the last good state is {last}")

        # a log line every log_every steps
        if step % cfg.log_every == 0 or step == stop:
            write({"step": step, "loss": loss_value, **stats, "lr": sched.get_last_lr()[0],
                   "time_s": round(time.time() - t0, 1)})
            bar.set_postfix(loss=f"{loss_value:.4f}")

        # validation keeps the best weights (on the main process)
        if procs.is_main and (step % cfg.val_every == 0 or step == stop):
            metrics = task.validate(model, procs.device)
            model.train()
            has_validation = bool(metrics)
            if metrics:
                write({"step": step, **metrics})
                if _better(float(metrics[task.best_metric]), best_score, task.best_mode):
                    best_score = float(metrics[task.best_metric])
                    save_atomic({**task.checkpoint(model), "step": step, "val": metrics,
                                 "train": asdict(cfg)}, best)

        # save the state now and then, and stop cleanly when the time is up
        late = cfg.max_minutes is not None and time.time() - t0 > 60 * cfg.max_minutes
        late = distributed.any_rank(late, procs.device)
        if step % cfg.save_every == 0 or step == stop or late:
            rng = distributed.all_gather_objects(torch.get_rng_state())
            cuda_rng = (distributed.all_gather_objects(torch.cuda.get_rng_state())
                        if procs.device.type == "cuda" else None)
            if procs.is_main:
                state = {**task.checkpoint(model), "optimizer": opt.state_dict(),
                         "scheduler": sched.state_dict(), "rng": rng, "cuda_rng": cuda_rng,
                         "step": step, "best_score": best_score, "train": asdict(cfg),
                         "elapsed_s": elapsed_before + time.time() - t0}
                save_atomic(state, last)
        if late:
            _say(procs, f"stopping at step {step}: --max-minutes reached")
            break
    bar.close()

    # ---- 6. Finish ------------------------------------------------------------------------------
    if procs.is_main and not has_validation:  # no validation data: the last state is the best
        save_atomic({**task.checkpoint(model), "step": step, "train": asdict(cfg)}, best)
    if cfg.save_rank_states:
        save_atomic({**task.checkpoint(model), "step": step}, out / f"rank{procs.rank}_final.pt")
    if log is not None:
        log.close()
    distributed.cleanup()
    return TrainResult(model=model, out=out, step=step,
                       best_score=best_score if has_validation else math.nan,
                       elapsed_s=elapsed_before + time.time() - t0, records=records)
