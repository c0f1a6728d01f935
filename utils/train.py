"""Train the mel VQ-VAE: ``python -m utils.train --data DIR [--data DIR ...] --out RUN``.

- AdamW, warm-up + cosine learning rate, seeds, ``tqdm`` progress.
- A JSON-lines log (``RUN/log.jsonl``) of losses and codebook usage every ``--log-every``
  steps, and a validation record every ``--val-every`` steps (an "epoch" of the run).
- Best-checkpoint selection on the validation log-mel L1 (``RUN/best.pt``), and the latest
  state (``RUN/last.pt``) saved atomically every ``--save-every`` steps.
- Exact resume (``--resume``): model, optimizer, scheduler, RNG state and step are restored
  and every batch is a pure function of (seed, step), so a run stopped and resumed ends with
  the same weights as one uninterrupted run.
- Data-parallel with the same command under
  ``torchrun --nproc_per_node N -m utils.train ...`` (DistributedDataParallel, gloo on CPU,
  nccl on GPU); each rank takes its share of every global batch.

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor, nn

from utils.audio import FEATURES, log_mel
from utils.checkpoint import CheckpointError, load_checkpoint, save_atomic
from utils.data import SpeechCommands
from utils.models.vqvae import MODEL_KIND, MelVQVAE, VQVAEConfig

__all__ = ["parse_args", "train", "load_log_mels", "make_batch", "main"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments of the training command.

    Notebook: notebooks/02_vq_vae.ipynb
    """
    p = argparse.ArgumentParser(prog="python -m utils.train", description=__doc__.split("\n")[0])
    p.add_argument("--data", action="append", required=True,
                   help="Speech Commands-layout folder (repeatable); its train split is used")
    p.add_argument("--out", required=True, help="run folder (checkpoints and log)")
    p.add_argument("--steps", type=int, default=4000, help="total optimisation steps")
    p.add_argument("--stop-at", type=int, default=None,
                   help="stop (and save) after this step, e.g. to simulate an interruption")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop cleanly (and save) after this wall time")
    p.add_argument("--batch-size", type=int, default=32, help="global batch (all ranks)")
    p.add_argument("--crop-frames", type=int, default=64, help="training crop in mel frames")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--save-every", type=int, default=250)
    p.add_argument("--val-depths", type=int, nargs="*", default=None,
                   help="residual depths validated (default: 1300 bps and all stages)")
    p.add_argument("--resume", action="store_true", help="continue from RUN/last.pt")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--save-rank-states", action="store_true",
                   help="also write RUN/rank<r>_final.pt on every rank (for DDP checks)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="model hyper-parameter override, e.g. --set channels=128")
    return p.parse_args(argv)



def _model_config(overrides: list[str]) -> VQVAEConfig:
    types = {f.name: f.type for f in fields(VQVAEConfig)}
    cfg = asdict(VQVAEConfig())
    for item in overrides:
        key, _, value = item.partition("=")
        if key not in types:
            raise SystemExit(f"unknown model setting {key!r}; known: {', '.join(types)}")
        kind = type(cfg[key])
        cfg[key] = (value.lower() in ("1", "true", "yes")) if kind is bool else kind(value)
    return VQVAEConfig(**cfg)


# ------------------------------------------------------------------------------------ data


def load_log_mels(folders: list[str], split: str) -> tuple[list[Tensor], list[str]]:
    """Log-mels of every good clip of ``split`` in each folder (bad files skipped, reported).

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        folders: Speech Commands-layout folders.
        split: ``"train"``, ``"validation"`` or ``"testing"``.

    Returns:
        ``(features [n_mels, T] per clip, one line of report per folder)``.
    """
    feats: list[Tensor] = []
    report = []
    for folder in folders:
        ds = SpeechCommands(folder, split=split, length=None, transform=log_mel, cache=False)
        feats += [ds[i][0].float() for i in range(len(ds))]
        report.append(f"{folder} [{split}]: {len(ds)} clips, {len(ds.failed)} skipped")
    return feats, report


def make_batch(
    feats: list[Tensor], step: int, *, batch_size: int, crop: int, seed: int,
    rank: int = 0, world: int = 1, floor: float = math.log10(FEATURES.log_floor),
) -> tuple[Tensor, Tensor]:
    """The batch of ``step``: a pure function of (seed, step), so resuming is exact.

    Clips are visited in a fresh permutation each pass over the data; each gets a random crop
    of ``crop`` frames (shorter clips are padded with the log floor and masked). Under DDP,
    rank ``r`` takes items ``r, r + world, ...`` of the global batch.

    Notebook: notebooks/02_vq_vae.ipynb

    Returns:
        ``(log-mel [b, n_mels, crop], mask [b, 1, crop])``.
    """
    n = len(feats)
    per_pass = max(1, n // batch_size)
    epoch, pos = divmod(step, per_pass)
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g)
    idx = perm[pos * batch_size : (pos + 1) * batch_size]
    if len(idx) < batch_size:  # fewer clips than a batch: wrap around
        idx = perm[torch.arange(pos * batch_size, (pos + 1) * batch_size) % n]
    g_crop = torch.Generator().manual_seed(seed * 7_919 + step)
    starts = torch.rand(batch_size, generator=g_crop)
    n_mels = feats[0].shape[0]
    x = torch.full((batch_size, n_mels, crop), floor)
    mask = torch.zeros(batch_size, 1, crop)
    for j, i in enumerate(idx.tolist()):
        f = feats[i]
        t = f.shape[1]
        s = int(starts[j] * max(0, t - crop + 1))
        piece = f[:, s : s + crop]
        x[j, :, : piece.shape[1]] = piece
        mask[j, :, : piece.shape[1]] = 1.0
    return x[rank::world], mask[rank::world]


# ------------------------------------------------------------------------------------ loop


def _lr_lambda(warmup: int, total: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))

    return f


@torch.no_grad()
def validate(model: MelVQVAE, feats: list[Tensor], depths: list[int]) -> dict:
    """Mean log-mel L1 of whole validation clips at each depth, and codebook usage.

    Notebook: notebooks/02_vq_vae.ipynb
    """
    was = model.training
    model.eval()
    out: dict = {}
    try:
        for d in depths:
            model.quantizer.reset_usage()
            tot = cnt = 0.0
            for f in feats:
                y, _ = model(f[None], n_q=d)
                tot += float((y[0] - f).abs().sum())
                cnt += f.numel()
            out[f"val_l1@{d}"] = tot / max(cnt, 1)
            usage = model.quantizer.usage()
            out[f"val_used@{d}"] = [round(u["used_fraction"], 4) for u in usage[:d]]
            out[f"val_ppl@{d}"] = [round(u["perplexity"], 1) for u in usage[:d]]
        out["val_score"] = sum(out[f"val_l1@{d}"] for d in depths) / len(depths)
    finally:
        model.quantizer.reset_usage()
        model.train(was)
    return out


def _setup_distributed() -> tuple[int, int, torch.device]:
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        rank, world = dist.get_rank(), dist.get_world_size()
        if backend == "nccl":
            local = int(os.environ.get("LOCAL_RANK", 0))
            torch.cuda.set_device(local)
            return rank, world, torch.device("cuda", local)
        return rank, world, torch.device("cpu")
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return 0, 1, dev


def train(args: argparse.Namespace) -> dict:
    """Run (or resume) a training run; returns the final record.

    Notebook: notebooks/02_vq_vae.ipynb
    """
    from tqdm.auto import tqdm

    if args.threads:
        torch.set_num_threads(args.threads)
    rank, world, device = _setup_distributed()
    out = Path(args.out)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    last, best = out / "last.pt", out / "best.pt"

    torch.manual_seed(args.seed)
    cfg = _model_config(args.set)
    model = MelVQVAE(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(args.warmup, args.steps))
    step, best_score, elapsed_before = 0, math.inf, 0.0

    if args.resume and last.exists():
        ckpt = load_checkpoint(last, MODEL_KIND)
        if ckpt["config"] != asdict(cfg):
            raise CheckpointError(last, "model settings differ from this command's (--set ...)")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        torch.set_rng_state(ckpt["rng"][rank] if rank < len(ckpt["rng"]) else ckpt["rng"][0])
        step, best_score = int(ckpt["step"]), float(ckpt["best_score"])
        elapsed_before = float(ckpt.get("elapsed_s", 0.0))
        if rank == 0:
            print(f"resumed from {last} at step {step}", file=sys.stderr)
    elif args.resume and rank == 0:
        print(f"no {last} yet: starting from scratch", file=sys.stderr)

    train_feats, report = load_log_mels(args.data, "train")
    val_feats, vreport = load_log_mels(args.data, "validation")
    if not train_feats:
        raise SystemExit(f"no training clips found in {args.data}")
    if rank == 0:
        for line in report + vreport:
            print(line, file=sys.stderr)
    ddp = (
        nn.parallel.DistributedDataParallel(model, broadcast_buffers=False)
        if world > 1 else model
    )
    depths = args.val_depths or sorted({model.depth_for_bitrate(1300), cfg.num_quantizers})
    log = open(out / "log.jsonl", "a") if rank == 0 else None  # noqa: SIM115
    stop = min(args.steps, args.stop_at if args.stop_at is not None else args.steps)
    t0 = time.time()
    record: dict = {}

    def state(extra_rng: list[Tensor]) -> dict:
        return model.checkpoint(
            optimizer=opt.state_dict(), scheduler=sched.state_dict(), rng=extra_rng, step=step,
            best_score=best_score, args=vars(args), elapsed_s=elapsed_before + time.time() - t0,
        )

    def gather_rng() -> list[Tensor]:
        r = torch.get_rng_state()
        if world == 1:
            return [r]
        got = [torch.empty_like(r) for _ in range(world)]
        dist.all_gather(got, r)
        return got

    bar = tqdm(total=stop, initial=step, disable=args.no_progress or rank != 0, desc="train")
    model.train()
    while step < stop:
        x, mask = make_batch(train_feats, step, batch_size=args.batch_size,
                             crop=args.crop_frames, seed=args.seed, rank=rank, world=world)
        x, mask = x.to(device), mask.to(device)
        y, vq = ddp(x)
        recon = ((y - x).abs() * mask).sum() / (mask.sum() * x.shape[1]).clamp_min(1)
        loss = recon + vq.loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if args.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        sched.step()
        step += 1
        bar.update(1)
        if not math.isfinite(float(loss.detach())):
            msg = f"loss became {float(loss.detach())} at step {step}; last good state: {last}"
            raise FloatingPointError(msg)
        if log and (step % args.log_every == 0 or step == stop):
            record = {
                "step": step, "loss": float(loss.detach()), "recon_l1": float(recon.detach()),
                "commitment": float(vq.commitment_loss.detach()),
                "depth": int(vq.indices.shape[-1]),
                "perplexity": [round(float(p), 1) for p in vq.perplexity[:4]],
                "lr": sched.get_last_lr()[0], "time_s": round(time.time() - t0, 1),
            }
            log.write(json.dumps(record) + "\n")
            log.flush()
            bar.set_postfix(l1=f"{record['recon_l1']:.3f}", ppl=f"{record['perplexity'][0]:.0f}")
        do_val = step % args.val_every == 0 or step == stop
        if do_val and val_feats:
            vrec = validate(model, val_feats, depths) if rank == 0 else {}
            if rank == 0:
                vrec["step"] = step
                log.write(json.dumps(vrec) + "\n")
                log.flush()
                record.update(vrec)
                if vrec["val_score"] < best_score:
                    best_score = vrec["val_score"]
                    save_atomic(model.checkpoint(step=step, val=vrec, args=vars(args)), best)
        timed_out = bool(args.max_minutes) and (time.time() - t0) > 60 * args.max_minutes
        if args.max_minutes and world > 1:  # every rank must agree to stop at the same step
            flag = torch.tensor([1.0 if timed_out else 0.0])
            dist.all_reduce(flag)
            timed_out = bool(flag.item())
        if step % args.save_every == 0 or step == stop or timed_out:
            rng = gather_rng()
            if rank == 0:
                save_atomic(state(rng), last)
        if timed_out:
            if rank == 0:
                print(f"stopping at step {step}: --max-minutes reached", file=sys.stderr)
            break
    bar.close()
    if not val_feats and rank == 0:  # no validation split: the last state is the best
        save_atomic(model.checkpoint(step=step, args=vars(args)), best)
    if args.save_rank_states:
        save_atomic(model.checkpoint(step=step), out / f"rank{rank}_final.pt")
    if log:
        log.close()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    record["step"] = step
    record["elapsed_s"] = round(elapsed_before + time.time() - t0, 1)
    return record


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m utils.train``.

    Notebook: notebooks/02_vq_vae.ipynb
    """
    args = parse_args(argv)
    rec = train(args)
    if int(os.environ.get("RANK", 0)) == 0:
        print(json.dumps(rec))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
