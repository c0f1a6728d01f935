"""The one training loop of the collection, for every model that trains.

A *task* (:class:`Task`; the codec, the word classifiers, ...) says what differs from one
model to the next: how to build the model, the batch of a step, the loss, a validation that
returns metrics and which metric picks the best checkpoint. :func:`train` owns everything
else, once, and reads top to bottom like the story of a run:

1. **check** every option before anything loads (a bad value fails in a second, not after
   the data has loaded), and the output folder (writable; locked by ``train.lock`` against a
   second training into it; temporary files of a killed save removed; a run already there is
   never overwritten);
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
   saved atomically every ``save_every`` steps, when ``max_minutes`` is up and on Ctrl-C (the
   last completed step; :class:`~utils.errors.TrainingInterrupted`);
7. **finish**: the last record, the run folder, the trained model.

Checkpoints are plain dicts (``kind``, ``format_version``, the model's configuration dataclass,
weights and their SHA-256, and for ``last.pt`` the training state) that load with
``weights_only=True``; a resume verifies the weights' hash and refuses other ``--data``.

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from utils import distributed
from utils.checkpoint import (
    CheckpointError,
    load_checkpoint,
    remove_stale_temps,
    save_atomic,
    writable_folder,
)
from utils.errors import OptionError, TrainingInterrupted
from utils.options import check_size
from utils.runlock import LOCK_NAME, RunLock

__all__ = [
    "TrainConfig",
    "Task",
    "TrainResult",
    "warmup_cosine",
    "override",
    "RunLock",
    "LOCK_NAME",
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
        for f in dataclasses.fields(self):  # NaN and infinity pass every "< 0" test below
            check_size(_flag(f.name), getattr(self, f.name))
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
    for key, value in changes.items():  # no hyper-parameter is NaN, infinite or absurd
        check_size(f"{option} {key}={value}", value)
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


@contextlib.contextmanager
def _interrupt_deferred() -> Iterator[None]:
    """Hold a Ctrl-C back until the block (the optimizer's update) is done, so that the saved
    state is never half-updated. Only where Python's own SIGINT handler is installed."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    caught: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if caught:
        raise KeyboardInterrupt


def _existing_run(out: Path, resume: bool) -> None:
    """Refuse a folder whose run would be overwritten (or cannot be resumed)."""
    last, best = out / "last.pt", out / "best.pt"
    found = [p.name for p in (last, best, out / "log.jsonl") if p.exists()]
    if resume:
        if not last.exists() and best.exists():
            raise OptionError("--resume", f"{out} has no {last.name} to resume from, and "
                                          f"starting over would overwrite {best}: choose "
                                          f"another folder, or move {best.name} away first")
        return
    if last.exists():
        raise OptionError("--out", f"{out} holds a run already ({', '.join(found)}): pass "
                                   "--resume to continue it, or choose another folder")
    if best.exists():
        raise OptionError("--out", f"{out} holds a run already ({', '.join(found)}) that cannot "
                                   f"be resumed (no {last.name}), and a new run would "
                                   f"overwrite {best.name}: choose another folder, or move "
                                   "its files away")
    if found:
        raise OptionError("--out", f"{out} holds a run already ({', '.join(found)}, no "
                                   "checkpoint): pass --resume to start it over in this folder "
                                   "(appending to its log), or choose another folder")


def _as_strings(value: Any) -> list[str]:
    return [str(value)] if isinstance(value, (str, Path)) else [str(v) for v in value]


def _same_inputs(task: Task, ckpt: dict[str, Any], last: Path) -> None:
    """Refuse a resume whose ``--data`` (or augmentation) differs from the run's."""
    if ckpt.get("data") is not None and getattr(task, "data", None) is not None:
        before, now = _as_strings(ckpt["data"]), _as_strings(task.data)
        if before != now:
            raise OptionError("--resume", f"{last}: started with --data {' '.join(before)}, now "
                                          f"{' '.join(now)}")
    if "augment" in ckpt and hasattr(task, "augment"):
        now = task.augment
        if dataclasses.is_dataclass(now) and not isinstance(now, type):
            now = asdict(now)
        if ckpt["augment"] != now:
            def describe(augment: Any) -> str:
                return "no augmentation" if augment is None else f"augmentation {augment}"

            raise OptionError("--resume", f"{last}: started with {describe(ckpt['augment'])}, "
                                          f"now {describe(now)}")


# --------------------------------------------------------------------------------------------
# The run itself
# --------------------------------------------------------------------------------------------


def train(task: Task, cfg: TrainConfig) -> TrainResult:
    """Train (or resume) one model of ``task`` with the settings ``cfg``.

    The run folder is locked (``RUN/train.lock``) for the whole run. Ctrl-C saves ``last.pt``
    for the last completed step and raises :class:`~utils.errors.TrainingInterrupted`; a
    resume from it ends with the same weights as a run that was never interrupted.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        task: What differs per model (:class:`Task`).
        cfg: The run's settings (checked when it was built).

    Returns:
        A :class:`TrainResult`.

    Raises:
        OptionError: An option that cannot work here (``--amp`` without CUDA, an output folder
            holding a run without ``--resume``, a folder another training is using, settings
            or ``--data`` that differ from the resumed run).
        ProjectError: Unwritable output folder, unusable or corrupted checkpoint, a checkpoint
            that cannot be written (full disk: the previous one is kept).
        FloatingPointError: The loss became NaN or infinite (``last.pt`` holds the last good
            state).
        TrainingInterrupted: Ctrl-C; ``last.pt`` holds the last completed step.
    """
    # ---- 1. Check what can be checked before anything loads ---------------------------------
    procs = distributed.setup(cfg.device)
    if cfg.amp and procs.device.type != "cuda":
        raise OptionError("--amp", "mixed precision needs a CUDA device")
    out = Path(cfg.out)
    lock = None
    if procs.is_main:
        writable_folder(out)
        lock = RunLock(out).acquire(lambda text: _say(procs, text))
    try:
        if procs.is_main:
            for tmp in remove_stale_temps(out):
                _say(procs, f"removed {tmp.name}, left by a save that was interrupted")
            _existing_run(out, cfg.resume)
        return _run(task, cfg, procs, out)
    finally:
        if lock is not None:
            lock.release()


def _run(task: Task, cfg: TrainConfig, procs: distributed.Processes, out: Path) -> TrainResult:
    """Steps 3 to 7 of :func:`train`, in a locked and checked run folder."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ckpt = _checkpoint_to_resume(task, cfg, out / "last.pt")  # checked before the data loads
    for line in task.load_data():  # 3. data
        _say(procs, line)
    run = _Run(task, cfg, procs, out)  # 4. model, optimizer, schedule
    run.resume(ckpt)  # 5. resume
    del ckpt
    run.loop()  # 6. the loop
    return run.finish()  # 7. finish


def _checkpoint_to_resume(task: Task, cfg: TrainConfig, last: Path) -> dict[str, Any] | None:
    """``last.pt`` when resuming and it exists (its inputs checked against the task's)."""
    ckpt = load_checkpoint(last, task.kind) if cfg.resume and last.exists() else None
    if ckpt is not None:
        _same_inputs(task, ckpt, last)
    return ckpt


class _Run:
    """One run between its phases: the model, its optimizer and schedule, the step, the best
    score, the log. Built under the run's seed (step 4 of :func:`train`)."""

    def __init__(self, task: Task, cfg: TrainConfig, procs: distributed.Processes,
                 out: Path) -> None:
        self.task, self.cfg, self.procs, self.out = task, cfg, procs, out
        self.last, self.best = out / "last.pt", out / "best.pt"
        torch.manual_seed(cfg.seed)
        self.model = task.build_model().to(procs.device)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr,
                                     weight_decay=cfg.weight_decay)
        schedule = functools.partial(warmup_cosine, warmup=cfg.warmup, total=cfg.steps,
                                     floor=cfg.min_lr_ratio)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, schedule)
        self.step, self.elapsed_before = 0, 0.0
        self.best_score = math.inf if task.best_mode == "min" else -math.inf
        self.resumed = False
        self.pending_validation = False  # the validation of ``step`` is still to run
        self.records: list[dict[str, Any]] = []
        self.has_validation = True
        self.net: nn.Module = self.model  # wrapped for data parallelism by the loop
        self.t0 = time.time()
        self.saved_step: int | None = None  # the step ``last.pt`` holds
        self.log: Any = None  # the open log.jsonl (main process, during the loop)
        # What a Ctrl-C saves: the random state after the last completed step.
        self.resume_rng = self._rng_now()

    # ---- 5. Resume ------------------------------------------------------------------------------
    def resume(self, ckpt: dict[str, Any] | None) -> None:
        """Model, optimizer, schedule, random state and step from ``last.pt``, if resuming."""
        if ckpt is None:
            if self.cfg.resume:
                _say(self.procs, f"no {self.last} yet: starting from scratch")
            return
        self._check_resumable(ckpt)
        self.model.load_state_dict(ckpt["model"])
        self.opt.load_state_dict(ckpt["optimizer"])
        self.sched.load_state_dict(ckpt["scheduler"])
        rank = self.procs.rank if self.procs.rank < len(ckpt["rng"]) else 0
        torch.set_rng_state(ckpt["rng"][rank])
        if self.procs.device.type == "cuda" and ckpt.get("cuda_rng"):
            torch.cuda.set_rng_state(ckpt["cuda_rng"][rank])
        self.step, self.best_score = int(ckpt["step"]), float(ckpt["best_score"])
        self.elapsed_before = float(ckpt.get("elapsed_s", 0.0))
        _say(self.procs, f"resumed from {self.last} at step {self.step}")
        self.resumed = True
        self.pending_validation = bool(ckpt.get("pending_validation"))

    def _check_resumable(self, ckpt: dict[str, Any]) -> None:
        """Refuse a ``last.pt`` of another model, or trained with other settings."""
        task, cfg, last = self.task, self.cfg, self.last
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

    # ---- 6. The loop ----------------------------------------------------------------------------
    def loop(self) -> None:
        """Step until ``steps`` (or ``stop_at``, or ``max_minutes``): log, validate, save."""
        from tqdm.auto import tqdm

        cfg, procs = self.cfg, self.procs
        self.net = self.model
        if procs.world > 1:
            ids = [procs.device] if procs.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids,
                                                           broadcast_buffers=False)
        self.t0 = time.time()
        self.saved_step = self.step if self.resumed and not self.pending_validation else None
        stop = min(cfg.steps, cfg.stop_at or cfg.steps)
        with contextlib.ExitStack() as stack:
            self.log = (stack.enter_context(open(self.out / "log.jsonl", "a"))  # noqa: SIM115
                        if procs.is_main else None)
            bar = stack.enter_context(tqdm(total=stop, initial=self.step,
                                           desc=f"train {self.task.name}",
                                           disable=not cfg.progress or not procs.is_main))
            if self.resumed:
                self._write({"event": "resume", "step": self.step})
            autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if cfg.amp
                        else contextlib.nullcontext())
            self.model.train()
            self.resume_rng = self._rng_now()
            try:
                if self.pending_validation and procs.is_main:  # interrupted in this validation
                    self._validate()
                self.pending_validation = False
                while self.step < stop:
                    loss, stats = self._optimisation_step(autocast, stop)
                    bar.update(1)
                    loss_value = float(loss.detach())
                    if not math.isfinite(loss_value):
                        raise FloatingPointError(f"loss became {loss_value} at step {self.step}; "
                                                 f"the last good state is {self.last}")
                    if self.step % cfg.log_every == 0 or self.step == stop:
                        self._write({"step": self.step, "loss": loss_value, **stats,
                                     "lr": self.sched.get_last_lr()[0],
                                     "time_s": round(time.time() - self.t0, 1)})
                        bar.set_postfix(loss=f"{loss_value:.4f}")
                    if self.pending_validation:  # keeps the best weights (main process)
                        self._validate()
                        self.resume_rng, self.pending_validation = self._rng_now(), False
                    late = self._time_is_up()
                    if self.step % cfg.save_every == 0 or self.step == stop or late:
                        self._save_last()
                    if late:
                        _say(procs, f"stopping at step {self.step}: --max-minutes reached")
                        break
            except KeyboardInterrupt:
                raise _interrupted(procs, self.last, self.step, self.saved_step,
                                   self.pending_validation, self._interrupted_state) from None
            finally:
                self.log = None

    def _optimisation_step(self, autocast: contextlib.AbstractContextManager,
                           stop: int) -> tuple[Tensor, dict[str, Any]]:
        """One step on this process's share of the global batch: batch → loss → backward →
        clip → update; the loss and the task's numbers for the log."""
        task, cfg, procs = self.task, self.cfg, self.procs
        self.resume_rng = self._rng_now()
        batch = task.batch(self.step, seed=cfg.seed, batch_size=cfg.batch_size,
                           rank=procs.rank, world=procs.world)
        batch = tuple(t.to(procs.device, non_blocking=True) for t in batch)
        with autocast:
            loss, stats = task.loss(self.net, batch)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        with _interrupt_deferred():  # never save a half-updated state
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.opt.step()
            self.sched.step()
            self.step += 1
            self.resume_rng = self._rng_now()
            self.pending_validation = procs.is_main and (self.step % cfg.val_every == 0
                                                         or self.step == stop)
        return loss, stats

    def _validate(self) -> None:
        """Validate (main process); a better score saves ``best.pt``."""
        task = self.task
        metrics = task.validate(self.model, self.procs.device)
        self.model.train()
        self.has_validation = bool(metrics)
        if metrics:
            self._write({"step": self.step, **metrics})
            score = float(metrics[task.best_metric])
            if _better(score, self.best_score, task.best_mode):
                save_atomic({**task.checkpoint(self.model), "step": self.step, "val": metrics,
                             "train": asdict(self.cfg)}, self.best)
                self.best_score = score  # only once best.pt holds it

    def _time_is_up(self) -> bool:
        """Whether ``max_minutes`` is up on any process."""
        cfg = self.cfg
        late = cfg.max_minutes is not None and time.time() - self.t0 > 60 * cfg.max_minutes
        return distributed.any_rank(late, self.procs.device)

    def _save_last(self) -> None:
        """Save ``last.pt`` (every process's random state; written by the main process)."""
        procs = self.procs
        rng = distributed.all_gather_objects(torch.get_rng_state())
        cuda_rng = (distributed.all_gather_objects(torch.cuda.get_rng_state())
                    if procs.device.type == "cuda" else None)
        if procs.is_main:
            try:
                save_atomic(self._state(rng, cuda_rng), self.last)
            except CheckpointError as exc:
                raise CheckpointError(exc.path, f"{exc.reason}; training stopped at "
                                                f"step {self.step}: free some space, "
                                                "then continue with --resume") from None
        self.saved_step = self.step

    def _write(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if self.log is not None:
            self.log.write(json.dumps(record) + "\n")
            self.log.flush()

    def _rng_now(self) -> tuple[Tensor, Tensor | None]:
        return (torch.get_rng_state(),
                torch.cuda.get_rng_state() if self.procs.device.type == "cuda" else None)

    def _state(self, rng: list[Tensor], cuda_rng: list[Tensor] | None,
               **extra: Any) -> dict[str, Any]:
        """``last.pt``: the model, optimizer, schedule and random state after ``step``."""
        return {**self.task.checkpoint(self.model), "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(), "rng": rng, "cuda_rng": cuda_rng,
                "step": self.step, "best_score": self.best_score, "train": asdict(self.cfg),
                "elapsed_s": self.elapsed_before + time.time() - self.t0, **extra}

    def _interrupted_state(self) -> dict[str, Any]:
        """``last.pt`` after a Ctrl-C: the random state after the last completed step."""
        rng, cuda_rng = self.resume_rng
        return self._state([rng], None if cuda_rng is None else [cuda_rng],
                           pending_validation=self.pending_validation)

    # ---- 7. Finish ------------------------------------------------------------------------------
    def finish(self) -> TrainResult:
        """The last saves (``best.pt`` without validation data; each rank's state on request)."""
        task, cfg, procs = self.task, self.cfg, self.procs
        if procs.is_main and not self.has_validation:  # no validation data: the last is the best
            save_atomic({**task.checkpoint(self.model), "step": self.step,
                         "train": asdict(cfg)}, self.best)
        if cfg.save_rank_states:
            save_atomic({**task.checkpoint(self.model), "step": self.step},
                        self.out / f"rank{procs.rank}_final.pt")
        distributed.cleanup()
        return TrainResult(model=self.model, out=self.out, step=self.step,
                           best_score=self.best_score if self.has_validation else math.nan,
                           elapsed_s=self.elapsed_before + time.time() - self.t0,
                           records=self.records)


def _interrupted(procs: distributed.Processes, last: Path, step: int, saved_step: int | None,
                 pending_validation: bool, state: Callable[[], dict[str, Any]]
                 ) -> TrainingInterrupted:
    """Save ``last.pt`` for the last completed step after a Ctrl-C; the exception to raise."""
    if procs.world > 1:  # the other processes cannot be asked for their random state now
        if saved_step is None:
            reason = (f"interrupted at step {step}: nothing was saved yet; run the same "
                      "command again to start over")
        else:
            reason = (f"interrupted at step {step}: {last} holds step {saved_step}; continue "
                      "with the same command plus --resume")
        return TrainingInterrupted(last, step, reason)
    saved = "already saved in"
    if saved_step != step or pending_validation:
        if procs.is_main:
            save_atomic(state(), last)
        saved = "saved"
    return TrainingInterrupted(last, step, f"interrupted at step {step}: {saved} {last}; "
                                           "continue with the same command plus --resume")
