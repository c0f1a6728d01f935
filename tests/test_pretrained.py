"""The 13 shipped checkpoints still load and give the outputs they gave when they were shipped.

``tests/data/pretrained_fingerprints.json`` holds, for a fixed input, the codec's indices and
decoded log-mel at 5 and 24 stages and each word classifier's logits, written when each file
was shipped (the word classifiers' before the training loop, the task modules and the model
folder were reorganised). A refactoring that changes a layer's maths, a parameter name or the
loading path fails here. A newly shipped checkpoint gets its entry with
``PYTHONPATH=. python tests/test_pretrained.py --update vqvae_speech.pt`` (and only then).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from utils.models.vqvae import MelVQVAE
from utils.tasks import words as W

ROOT = Path(__file__).resolve().parents[1]
PRETRAINED = ROOT / "data" / "pretrained"
FINGERPRINTS = json.loads((Path(__file__).parent / "data" / "pretrained_fingerprints.json")
                          .read_text())


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_every_shipped_codec_and_word_classifier_has_a_fingerprint():
    shipped = [*PRETRAINED.glob("vqvae_speech.pt"), *PRETRAINED.glob("words_*.pt")]
    assert sorted(FINGERPRINTS) == sorted(p.name for p in shipped)
    assert len(FINGERPRINTS) == 13


def codec_fingerprint(path: Path) -> dict:
    """Indices and decoded log-mel of a fixed input at 5 and 24 stages."""
    model = MelVQVAE.from_checkpoint(path).eval()
    x = -2.5 + 1.2 * torch.randn(1, 80, 48, generator=torch.Generator().manual_seed(1234))
    out = {}
    for n_q in (5, 24):
        with torch.no_grad():
            idx = model.encode_indices(x, n_q)
            y = model.decode_indices(idx, 48)
        out[str(n_q)] = {"indices": idx.flatten().tolist(), "sum": float(y.sum()),
                         "abs_sum": float(y.abs().sum()), "sample": y.flatten()[::97].tolist()}
    return out


def test_codec_gives_the_shipped_indices_and_log_mel():
    got = codec_fingerprint(PRETRAINED / "vqvae_speech.pt")
    for n_q, ref in FINGERPRINTS["vqvae_speech.pt"].items():
        assert got[n_q]["indices"] == ref["indices"]
        np.testing.assert_allclose(got[n_q]["sum"], ref["sum"], rtol=1e-5)
        np.testing.assert_allclose(got[n_q]["abs_sum"], ref["abs_sum"], rtol=1e-5)
        np.testing.assert_allclose(got[n_q]["sample"], ref["sample"], atol=1e-4)


@pytest.mark.parametrize("name", sorted(n for n in FINGERPRINTS if n.startswith("words_")))
def test_word_classifier_gives_the_shipped_logits(name):
    model, ckpt = W.load_model(PRETRAINED / name)
    model.eval()
    g = torch.Generator().manual_seed(4321)
    re = torch.randn(2, 1, 129, 63, generator=g)
    im = torch.randn(2, 1, 129, 63, generator=g)
    z = torch.complex(re, im) * 0.3
    with torch.no_grad():
        logits = model(W.model_input(z, ckpt["config"]["kind"]))
    np.testing.assert_allclose(logits.numpy(), FINGERPRINTS[name]["logits"], atol=1e-4)


if __name__ == "__main__":  # PYTHONPATH=. python tests/test_pretrained.py --update vqvae_speech.pt
    import sys

    if sys.argv[1:2] != ["--update"] or sys.argv[2:] != ["vqvae_speech.pt"]:
        raise SystemExit("usage: python tests/test_pretrained.py --update vqvae_speech.pt")
    torch.set_num_threads(1)
    FINGERPRINTS["vqvae_speech.pt"] = codec_fingerprint(PRETRAINED / "vqvae_speech.pt")
    (Path(__file__).parent / "data" / "pretrained_fingerprints.json").write_text(
        json.dumps(FINGERPRINTS, indent=0) + "\n")
