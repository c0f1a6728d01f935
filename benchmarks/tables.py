"""The README's measured tables, written from the stored results (never typed by hand).

``python benchmarks/tables.py`` prints the tables of ``benchmarks/results/yardstick.json``:
every system with its 95 % intervals, and the paired comparisons (the per-clip differences on
the same clips, :func:`utils.stats.paired_bootstrap`) with the verdict each score supports.
The README holds them verbatim and ``tests/test_readme_numbers.py`` checks that it still does.

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils.stats import paired_bootstrap  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "yardstick.json"
PER_CLIP = ROOT / "benchmarks" / "results" / "yardstick"

#: key → label, in the order of the table.
LABELS = {
    "codec_1250_gl": "VQ-VAE 5 stages + Griffin-Lim",
    "codec_1250_vocoder": "VQ-VAE 5 stages + vocoder",
    "codec2_1300": "Codec 2 1300",
    "codec_6000_gl": "VQ-VAE 24 stages + Griffin-Lim",
    "codec_6000_vocoder": "VQ-VAE 24 stages + vocoder",
    "codec_1250_melgl32": "VQ-VAE 5 stages + mel-consistent GL 32",
    "codec_1250_melgl128": "VQ-VAE 5 stages + mel-consistent GL 128",
    "codec_1250_melgl256": "VQ-VAE 5 stages + mel-consistent GL 256",
    "codec_1250_vocoder_adv": "VQ-VAE 5 stages + adversarial vocoder",
    "codec_6000_melgl32": "VQ-VAE 24 stages + mel-consistent GL 32",
    "codec_6000_vocoder_adv": "VQ-VAE 24 stages + adversarial vocoder",
    "opus_6": "Opus 6 kbps (constant rate)",
    "opus_12": "Opus 12 kbps (constant rate)",
    "codec2_3200": "Codec 2 3200",
    "griffinlim_32": "Griffin-Lim 32 it., true mel",
    "griffinlim_8": "Griffin-Lim 8 it., true mel",
    "vocoder_true_mel": "shipped vocoder, true mel",
    "pghi_32": "PGHI + 32 it., true mel",
    "melgl_32": "mel-consistent GL 32 it., true mel",
    "melgl_128": "mel-consistent GL 128 it., true mel",
    "vocoder_ft_both": "vocoder fine-tuned with MPD + MRD, true mel",
    "vocoder_ft_none": "vocoder fine-tuned without discriminator, true mel",
}

#: (A, B): is A better than B? Compared on the same clips.
PAIRS = [
    ("codec_1250_gl", "codec2_1300"),
    ("codec_6000_gl", "opus_6"),
    ("codec_1250_vocoder", "codec_1250_gl"),
    ("codec_6000_vocoder", "codec_6000_gl"),
    ("vocoder_true_mel", "griffinlim_32"),
    ("griffinlim_8", "griffinlim_32"),
    ("pghi_32", "griffinlim_32"),
    ("melgl_32", "griffinlim_32"),
    ("melgl_128", "melgl_32"),
    ("vocoder_ft_both", "vocoder_ft_none"),
    ("codec_1250_melgl32", "codec_1250_gl"),
    ("codec_6000_melgl32", "codec_6000_gl"),
    ("codec_1250_melgl128", "codec2_1300"),
    ("codec_6000_melgl32", "opus_6"),
]

#: The past-Griffin-Lim table: key → label (Deep Griffin-Lim rows pool their three seeds).
RECONSTRUCTIONS = {
    "griffinlim_32": ("Griffin-Lim 32 it. (random start)", "fgla_random:32"),
    "pghi_32": ("PGHI + 32 it.", "fgla_pghi:32"),
    "melgl_32": ("mel-consistent GL 32 it. (from PGHI)", "melgl_pghi:32"),
    "melgl_128": ("mel-consistent GL 128 it. (from PGHI)", "melgl_pghi:128"),
    "degli_complex": ("Deep GL, complex denoiser (16 + 4 it., 3 seeds)", "degli_complex_s0"),
    "degli_real": ("Deep GL, real twin (16 + 4 it., 3 seeds)", "degli_real_s0"),
    "degli_mag": ("Deep GL, magnitude-only denoiser (16 + 4 it., 3 seeds)", "degli_mag_s0"),
    "vocoder_true_mel": ("shipped vocoder", "vocoder"),
    "vocoder_ft_none": ("vocoder + 800 steps, no discriminator (control)", "vocoder"),
    "vocoder_ft_mpd": ("vocoder + 800 steps + MPD", "vocoder"),
    "vocoder_ft_mrd": ("vocoder + 800 steps + MRD", "vocoder"),
    "vocoder_ft_both": ("vocoder + 800 steps + MPD + MRD", "vocoder"),
}


def _ci(s: dict, key: str, digits: int) -> str:
    v = s.get(key)
    lo, hi = s.get(f"{key}_ci95", [None, None])
    if v is None or lo is None:
        return "—"
    return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _rate(s: dict) -> str:
    nominal, measured = s.get("bitrate_bps"), s.get("bitrate_bps_measured")
    if nominal is None:
        return "—"
    return f"{nominal:.0f} / {measured:.0f}" if measured is not None else f"{nominal:.0f}"


def systems_table(data: dict) -> str:
    """Every system: bit rate (nominal / measured), PESQ-WB, ViSQOL, log-mel L1, DNSMOS OVRL."""
    systems = data["systems"]
    lines = ["| system | bit/s (nominal / sent) | PESQ-WB | ViSQOL | log-mel L1 | DNSMOS OVRL |",
             "|---|---|---|---|---|---|"]
    first = next(s for s in systems.values() if s.get("dnsmos_ovrl_original") is not None)
    lines.append(f"| original recordings | — | — | — | — | "
                 f"{_ci(first, 'dnsmos_ovrl_original', 2)} |")
    for key, label in LABELS.items():
        if key not in systems:
            continue
        s = systems[key]
        lines.append(f"| {label} | {_rate(s)} | {_ci(s, 'pesq_wb', 2)} | {_ci(s, 'visqol', 2)} | "
                     f"{_ci(s, 'logmel_l1', 3)} | {_ci(s, 'dnsmos_ovrl', 2)} |")
    return "\n".join(lines)


def _rows(key: str) -> dict[str, dict]:
    return {r["file"]: r for r in json.loads((PER_CLIP / f"{key}.json").read_text())}


def paired(a: str, b: str, metric: str) -> tuple[float, float, float, int]:
    """Mean per-clip difference ``a − b`` of ``metric`` with its paired 95 % interval."""
    ra, rb = _rows(a), _rows(b)
    common = sorted(set(ra) & set(rb))

    def value(r: dict) -> float:
        v = r.get(metric)
        return math.nan if v is None else float(v)

    ci = paired_bootstrap([value(ra[f]) for f in common], [value(rb[f]) for f in common])
    return ci.mean, ci.lo, ci.hi, ci.n


def _word(lo: float, hi: float, a: str, b: str) -> str:
    if lo > 0:
        return a
    if hi < 0:
        return b
    return "neither"


def verdicts_table(data: dict) -> str:
    """Paired differences A − B of PESQ-WB and ViSQOL, and the verdict both support."""
    lines = ["| A vs B (same clips) | Δ PESQ-WB [95 %] | Δ ViSQOL [95 %] | verdict |",
             "|---|---|---|---|"]
    for a, b in PAIRS:
        if a not in data["systems"] or b not in data["systems"]:
            continue
        cells, words = [], []
        for metric in ("pesq_wb", "visqol"):
            m, lo, hi, _ = paired(a, b, metric)
            cells.append(f"{m:+.2f} [{lo:+.2f}, {hi:+.2f}]")
            words.append(_word(lo, hi, "A", "B"))
        if words[0] == words[1] != "neither":
            verdict = f"{LABELS[a] if words[0] == 'A' else LABELS[b]} better (both agree)"
        elif words[0] == words[1]:
            verdict = "no verdict (both intervals contain 0)"
        else:
            verdict = f"scores disagree (PESQ: {words[0]}, ViSQOL: {words[1]}): listen"
        lines.append(f"| {LABELS[a]} vs {LABELS[b]} | {cells[0]} | {cells[1]} | {verdict} |")
    return "\n".join(lines)


def vae_table() -> str:
    """The VAE β-sweep against the VQ-VAE ladder (``data/pretrained/vae_rd.json``)."""
    rd = json.loads((ROOT / "data" / "pretrained" / "vae_rd.json").read_text())
    lines = ["| model | bit/s | PESQ-WB [95 %] | ViSQOL [95 %] | log-mel L1 |",
             "|---|---|---|---|---|"]
    for r in sorted(rd["vae"], key=lambda r: r["bitrate_bps"]):
        lines.append(f"| VAE β = {r['beta']:g} (posterior mean) | {r['bitrate_bps']:.0f} (KL) | "
                     f"{_ci(r, 'pesq_wb', 2)} | {_ci(r, 'visqol', 2)} | {r['logmel_l1']:.3f} |")
    for r in rd["vqvae_ladder"]:
        if r["bitrate_bps"] in (250, 500, 750, 1250, 1500, 2500):
            lines.append(f"| VQ-VAE {r['depth']} stage{'s' if r['depth'] > 1 else ''} | "
                         f"{r['bitrate_bps']:.0f} | {_ci(r, 'pesq_wb', 2)} | "
                         f"{_ci(r, 'visqol', 2)} | {r['logmel_l1']:.3f} |")
    return "\n".join(lines)


def enhance_table() -> str:
    """The shipped enhancers on real speech only (``data/pretrained/enhance_real_speech.json``)."""
    er = json.loads((ROOT / "data" / "pretrained" / "enhance_real_speech.json").read_text())
    lines = ["| model (real speech only) | SI-SDRi dB [95 %] | PESQ-WB out [95 %] | "
             "ViSQOL out [95 %] | DCUNet − it at −5 dB: Δ SI-SDR, Δ PESQ-WB [95 %] |",
             "|---|---|---|---|---|"]
    for name, s in er["summaries"].items():
        if name == "complex DCUNet":
            gap = "—"
        else:
            parts = []
            for key in ("si_sdr_out", "pesq_wb_out"):
                v = er["paired"][f"complex DCUNet − {name} | -5.0 | {key}"]
                parts.append(f"{v['mean']:+.2f} [{v['ci95'][0]:+.2f}, {v['ci95'][1]:+.2f}]")
            gap = ", ".join(parts)
        lines.append(f"| {name} | {_ci(s, 'si_sdri', 2)} | {_ci(s, 'pesq_wb_out', 2)} | "
                     f"{_ci(s, 'visqol_out', 2)} | {gap} |")
    return "\n".join(lines)


def _pooled(data: dict, kind: str, metric: str) -> tuple[float, float, float]:
    """Mean of a Deep Griffin-Lim kind over its three seeds, and the seeds' min and max."""
    values = [data["systems"][f"degli_{kind}_s{s}"][metric] for s in range(3)]
    return sum(values) / 3, min(values), max(values)


def reconstruction_table(data: dict) -> str:
    """Every way back from the true mel: quality with intervals (seed range for Deep
    Griffin-Lim), DNSMOS, and CPU seconds per second of audio (``phase_ladder.json``)."""
    ladder = json.loads((ROOT / "data" / "pretrained" / "phase_ladder.json").read_text())
    cpu = {**{k: v["cpu_s_per_s"] for k, v in ladder["points"].items()},
           **ladder["learned_cpu_s_per_s"]}
    lines = ["| from the true mel | PESQ-WB [95 %] | ViSQOL [95 %] | DNSMOS OVRL | "
             "CPU s per s (1 thread) |", "|---|---|---|---|---|"]
    for key, (label, timing) in RECONSTRUCTIONS.items():
        t = f"{cpu[timing]:.3f}" if timing in cpu else "—"
        if key.startswith("degli_"):
            kind = key.split("_")[1]
            if f"degli_{kind}_s2" not in data["systems"]:
                continue
            cells = []
            for metric, digits in (("pesq_wb", 3), ("visqol", 3), ("dnsmos_ovrl", 2)):
                m, lo, hi = _pooled(data, kind, metric)
                cells.append(f"{m:.{digits}f} (seeds {lo:.{digits}f}–{hi:.{digits}f})")
            lines.append(f"| {label} | {cells[0]} | {cells[1]} | {cells[2]} | {t} |")
            continue
        if key not in data["systems"]:
            continue
        s = data["systems"][key]
        lines.append(f"| {label} | {_ci(s, 'pesq_wb', 3)} | {_ci(s, 'visqol', 3)} | "
                     f"{_ci(s, 'dnsmos_ovrl', 2)} | {t} |")
    return "\n".join(lines)


def kinds_compared(a: str = "complex", b: str = "real",
                   ) -> dict[str, tuple[float, float, float, int]]:
    """Deep Griffin-Lim, denoiser kind ``a`` − kind ``b`` (``complex``, ``real`` = the [Re, Im]
    twin, ``mag`` = magnitude-only): per clip the mean over each kind's three seeds, then the
    paired bootstrap over clips (PESQ-WB and ViSQOL)."""
    rows = {k: [_rows(f"degli_{k}_s{s}") for s in range(3)] for k in (a, b)}
    common = sorted(set.intersection(*[set(r) for rs in rows.values() for r in rs]))

    def mean(kind: str, f: str, metric: str) -> float:
        vals = [r[f].get(metric) for r in rows[kind]]
        vals = [float(v) for v in vals if v is not None]
        return sum(vals) / len(vals) if vals else math.nan

    out = {}
    for metric in ("pesq_wb", "visqol"):
        ci = paired_bootstrap([mean(a, f, metric) for f in common],
                              [mean(b, f, metric) for f in common])
        out[metric] = (ci.mean, ci.lo, ci.hi, ci.n)
    return out


def complex_vs_real(data: dict) -> dict[str, tuple[float, float, float, int]]:
    """Deep Griffin-Lim, complex − real [Re, Im] denoiser (:func:`kinds_compared`)."""
    return kinds_compared("complex", "real")


def stored_tables(data: dict | None = None) -> str:
    """The tables of the other stored results the README quotes."""
    data = data if data is not None else json.loads(RESULTS.read_text())
    parts = [vae_table(), enhance_table()]
    if (ROOT / "data" / "pretrained" / "phase_ladder.json").is_file():
        parts.insert(0, reconstruction_table(data))
    return "\n\n".join(parts)


def main() -> None:
    data = json.loads(RESULTS.read_text())
    print(systems_table(data))
    print()
    print(verdicts_table(data))
    print()
    print(stored_tables(data))


if __name__ == "__main__":
    main()
