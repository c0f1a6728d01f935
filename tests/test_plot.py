"""utils.plot and utils.players: figures return what they drew; player tables normalise jointly."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from utils import players, plot


def test_waveform_and_spectrogram_accept_ax_and_label_physical_axes(voiced):
    fig, ax = plt.subplots()
    f2, a2, _ = plot.waveform(voiced, ax=ax, title="w")
    assert f2 is fig and a2 is ax and ax.get_xlabel() == "Time (s)"
    S = np.random.default_rng(0).standard_normal((80, 63))
    _, ax3, img = plot.spectrogram(S, 16000, 256, y_axis="mel")
    assert ax3.get_ylabel() == "Hz" and ax3.get_xlabel() == "Time (s)"  # unit on every time axis
    assert img.get_array().size == S.size
    assert len(ax3.figure.axes) == 2  # colour bar
    plt.close("all")


def test_player_table_joint_normalisation_keeps_relative_loudness(voiced):
    html = players.player_table({"loud": voiced, "quiet": 0.1 * voiced}).data
    assert html.count("<audio") == 2 and "loud" in html and "quiet" in html
    rows = players.player_table({"a": {"x": voiced, "y": voiced}, "b": {"x": voiced, "y": voiced}})
    assert rows.data.count("<audio") == 4
    # normalize=False would raise in IPython if a joint gain pushed a signal above 1
    players.player_table({"big": 3 * voiced, "small": voiced})


def test_spectrogram_rows_share_colour_scale(voiced):
    fig, axes, images = plot.spectrogram_rows({"a": voiced, "b": 0.5 * voiced})
    assert len(axes) == 2
    assert images[0].get_clim() == images[1].get_clim()
    plt.close(fig)


def test_feature_explorer_callback(voiced):
    fig, player = players.feature_explorer(voiced, 16000, 512, 128, 40, n_iter=2)
    assert len(fig.axes) == 4 and player.data.count("<audio") == 2
    plt.close(fig)
    with pytest.raises(ValueError, match="gaps"):
        players.feature_explorer(voiced, 16000, 256, 512, 40)


def test_table_formats_floats_and_nan():
    html = players.table([{"system": "x", "pesq": 2.5, "l1": float("nan")}]).data
    assert "2.500" in html and "n/a" in html


def test_figure_png_renders_and_closes(voiced):
    fig, _, _ = plot.waveform(voiced)
    png = players.figure_png(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    assert not plt.fignum_exists(fig.number)


def test_reconstruction_explorer_callback(voiced):
    png, html = players.reconstruction_explorer(voiced, lambda x: 0.5 * x, "half")
    assert png[:4] == b"\x89PNG" and html.count("<audio") == 2 and "half" in html
