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
    "opus_6": "Opus 6 kbps (constant rate)",
    "opus_12": "Opus 12 kbps (constant rate)",
    "codec2_3200": "Codec 2 3200",
    "griffinlim_32": "Griffin-Lim 32 it., true mel",
    "griffinlim_8": "Griffin-Lim 8 it., true mel",
    "vocoder_true_mel": "shipped vocoder, true mel",
}

#: (A, B): is A better than B? Compared on the same clips.
PAIRS = [
    ("codec_1250_gl", "codec2_1300"),
    ("codec_6000_gl", "opus_6"),
    ("codec_1250_vocoder", "codec_1250_gl"),
    ("codec_6000_vocoder", "codec_6000_gl"),
    ("vocoder_true_mel", "griffinlim_32"),
    ("griffinlim_8", "griffinlim_32"),
]


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


def stored_tables(data: dict | None = None) -> str:
    """The tables of the other stored results the README quotes."""
    return vae_table() + "\n\n" + enhance_table()


def main() -> None:
    data = json.loads(RESULTS.read_text())
    print(systems_table(data))
    print()
    print(verdicts_table(data))
    print()
    print(stored_tables(data))


if __name__ == "__main__":
    main()
