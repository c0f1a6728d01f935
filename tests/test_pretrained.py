"""Every shipped checkpoint still loads and gives the outputs it gave when it was shipped.

``tests/data/pretrained_fingerprints.json`` holds, for a fixed input, each codec's indices and
decoded log-mel at 5 and 24 stages (``vqvae_speech.pt`` and the three ``front_end_*.pt``),
each word classifier's logits, each VAE's posterior mean and decoded log-mel, the code prior's
logits, each enhancer's, vocoder's, Deep Griffin-Lim's and WaveNet's output, written when each
file was shipped (the word classifiers' before the training loop, the task modules and the model
folder were reorganised). A refactoring that changes a
layer's maths, a parameter name or the loading path fails here. A newly shipped checkpoint
gets its entry with ``PYTHONPATH=. python tests/test_pretrained.py --update NAME.pt`` (and
only then).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from utils.models.dcunet import SpeechEnhancer
from utils.models.degli import DeepGriffinLim
from utils.models.prior import CodePrior
from utils.models.vae import MelVAE
from utils.models.vocoder import MelVocoder
from utils.models.vqvae import MelVQVAE
from utils.models.wavenet import WaveNet
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


def test_every_shipped_checkpoint_has_a_fingerprint():
    assert sorted(FINGERPRINTS) == sorted(p.name for p in PRETRAINED.glob("*.pt"))
    assert len(FINGERPRINTS) == 42


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


def vae_fingerprint(path: Path) -> dict:
    """Posterior mean and decoded log-mel of a fixed input."""
    model = MelVAE.from_checkpoint(path).eval()
    x = -2.5 + 1.2 * torch.randn(1, 80, 48, generator=torch.Generator().manual_seed(1234))
    with torch.no_grad():
        y, out = model(x)
    return {"mu": out.mu.flatten()[::37].tolist(), "sum": float(y.sum()),
            "sample": y.flatten()[::97].tolist()}


def prior_fingerprint(path: Path) -> dict:
    """Logits of a fixed code sequence, with and without a word."""
    model = CodePrior.from_checkpoint(path).eval()
    g = torch.Generator().manual_seed(1234)
    codes = torch.randint(model.config.num_codes, (2, 16), generator=g)
    with torch.no_grad():
        logits = model(codes, torch.tensor([0, model.no_label]))
    return {"sample": logits.flatten()[::61].tolist(), "sum": float(logits.sum())}


def waveform_fingerprint(path: Path) -> dict:
    """Output of an enhancer (fixed noisy waveform), a vocoder (fixed log-mel) or a WaveNet
    (logits of fixed classes and log-mel)."""
    g = torch.Generator().manual_seed(1234)
    x = -2.5 + 1.2 * torch.randn(1, 80, 24, generator=g)
    with torch.no_grad():
        if path.name.startswith("enhance_"):
            y = SpeechEnhancer.from_checkpoint(path)(0.1 * torch.randn(1, 8000, generator=g))
        elif path.name.startswith("vocoder"):
            y = MelVocoder.from_checkpoint(path)(x)
        elif path.name.startswith("degli"):
            A = torch.rand(1, 513, 24, generator=g)
            start = torch.polar(A, 6.283 * torch.rand(1, 513, 24, generator=g))
            y = torch.view_as_real(DeepGriffinLim.from_checkpoint(path)(A, start, 10.0 ** x))
        else:
            y = WaveNet.from_checkpoint(path)(torch.randint(256, (1, 600), generator=g), x)
    return {"sample": y.flatten()[::61].tolist(), "sum": float(y.sum())}


def fingerprint(name: str) -> dict:
    """The fingerprint of a shipped file, by its kind."""
    if name.startswith(("enhance_", "vocoder", "wavenet", "degli")):
        return waveform_fingerprint(PRETRAINED / name)
    if name.startswith("vae_"):
        return vae_fingerprint(PRETRAINED / name)
    if name.startswith("prior_"):
        return prior_fingerprint(PRETRAINED / name)
    if name.startswith("words_"):
        return {"logits": words_logits(PRETRAINED / name).tolist()}
    return codec_fingerprint(PRETRAINED / name)


@pytest.mark.parametrize("name", sorted(n for n in FINGERPRINTS
                                        if n.startswith(("vqvae_", "front_end_"))))
def test_codec_gives_the_shipped_indices_and_log_mel(name):
    got = codec_fingerprint(PRETRAINED / name)
    for n_q, ref in FINGERPRINTS[name].items():
        assert got[n_q]["indices"] == ref["indices"]
        np.testing.assert_allclose(got[n_q]["sum"], ref["sum"], rtol=1e-5)
        np.testing.assert_allclose(got[n_q]["abs_sum"], ref["abs_sum"], rtol=1e-5)
        np.testing.assert_allclose(got[n_q]["sample"], ref["sample"], atol=1e-4)


@pytest.mark.parametrize("name", sorted(n for n in FINGERPRINTS if n.startswith(
    ("vae_", "prior_", "enhance_", "vocoder", "wavenet", "degli"))))
def test_vae_prior_enhancers_and_vocoders_give_the_shipped_outputs(name):
    got, ref = fingerprint(name), FINGERPRINTS[name]
    assert sorted(got) == sorted(ref)
    for key in ref:
        np.testing.assert_allclose(got[key], ref[key], rtol=1e-5, atol=1e-4)


def words_logits(path: Path) -> np.ndarray:
    """A word classifier's logits on a fixed complex input (as its kind sees it)."""
    model, ckpt = W.load_model(path)
    model.eval()
    g = torch.Generator().manual_seed(4321)
    re = torch.randn(2, 1, 129, 63, generator=g)
    im = torch.randn(2, 1, 129, 63, generator=g)
    z = torch.complex(re, im) * 0.3
    with torch.no_grad():
        return model(W.model_input(z, ckpt["config"]["kind"])).numpy()


@pytest.mark.parametrize("name", sorted(n for n in FINGERPRINTS if n.startswith("words_")))
def test_word_classifier_gives_the_shipped_logits(name):
    np.testing.assert_allclose(words_logits(PRETRAINED / name), FINGERPRINTS[name]["logits"],
                               atol=1e-4)


if __name__ == "__main__":  # PYTHONPATH=. python tests/test_pretrained.py --update NAME.pt ...
    import sys

    names = sys.argv[2:]
    fixed = [n for n in names if n.startswith("words_") and n in FINGERPRINTS]
    if sys.argv[1:2] != ["--update"] or not names or fixed:
        raise SystemExit("usage: python tests/test_pretrained.py --update NAME.pt ... "
                         "(the 12 original word classifiers' entries are fixed)")
    torch.set_num_threads(1)
    for n in names:
        FINGERPRINTS[n] = fingerprint(n)
    (Path(__file__).parent / "data" / "pretrained_fingerprints.json").write_text(
        json.dumps(FINGERPRINTS, indent=0) + "\n")
