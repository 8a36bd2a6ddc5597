"""The literature's spaces (spectrogram-pca/-l2, wavenet, chroma-lstm, ali): their models'
shapes and losses on hand-computed cases, the chroma feature, and the spaces as built by
``build`` on the small test catalogue (the session's ``trained_catalogue``, which builds every
space its labels allow, one epoch each): shapes, uploads, checkpoints, determinism, skips."""

import json
import math
import pickle
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from catalogues import assert_upload_path_gives_catalogue_vectors
from songsim.build import build
from songsim.catalogue import load_catalogue
from songsim.errors import SongsimError
from songsim.features import N_CHROMA, chromagram, extract_features
from songsim.models import (
    ALI,
    ALIConfig,
    ChromaLSTM,
    ChromaLSTMConfig,
    WaveNetConfig,
    WaveNetEncoder,
    lambda_ndcg_loss,
    lsgan_losses,
    pairwise_hinge_loss,
    similarity,
)
from songsim.plots import loss_curves
from songsim.spaces.base import space_names
from songsim.spaces.inputs import space_inputs
from songsim.spaces.learned import TrainConfig, training_summary
from songsim.spaces.literature import (
    ALISpace,
    ALISpaceConfig,
    ChromaLSTMSpace,
    ChromaLSTMSpaceConfig,
    SpectrogramPCASpace,
    WaveNetSpace,
    WaveNetSpaceConfig,
    flatten_spectrogram,
    ranking_loss,
)
from songsim.spaces.store import features_cache_dir, load_built_space

LITERATURE_SPACES = space_names(family="literature")
from songsim.train import load_checkpoint, save_checkpoint

TORCH_SPACES = ("wavenet", "chroma-lstm", "ali")
N_TRACKS = 24  # tests/catalogues.py: 4 genres × 6 songs of 6 s


# ============================================================================================
# models and losses


def test_wavenet_shapes_and_causality():
    model = WaveNetEncoder(WaveNetConfig(channels=8, skip_channels=8, n_stacks=2, layers_per_stack=3, hidden=16, embedding_dim=10)).eval()
    assert model(torch.randn(3, 64, 40)).shape == (3, 10)
    assert model(torch.randn(2, 64, 300)).shape == (2, 10)  # any length: global pooling
    assert model.min_frames == 2
    layer = model.stacks[0][2]  # dilation 4
    x = torch.randn(1, 8, 30)
    changed = x.clone()
    changed[..., 20] += 1.0
    with torch.no_grad():
        (a, a_skip), (b, b_skip) = layer(x), layer(changed)
    assert torch.equal(a[..., :20], b[..., :20]) and torch.equal(a_skip[..., :20], b_skip[..., :20])  # no look-ahead
    assert not torch.equal(b_skip[..., 24], a_skip[..., 24])  # frame 20 reaches 20 + 4


def test_pairwise_hinge_loss_by_hand():
    q, near, far = torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 1.0]])
    # d(q, m+) = 5, d(q, m-) = 1: max(0, 1 - 1 + 5) = 5
    assert pairwise_hinge_loss(similarity(q, near), similarity(q, far)).item() == pytest.approx(5.0)
    # d(q, m+) = 0.5, d(q, m-) = 3: satisfied beyond the margin, 0
    good = pairwise_hinge_loss(similarity(q, torch.tensor([[0.0, 0.5]])), similarity(q, torch.tensor([[3.0, 0.0]])))
    assert good.item() == 0.0
    lists = torch.tensor([[[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]], [[0.0, 0.0], [0.0, 0.5], [3.0, 0.0]]])
    assert ranking_loss(lists, WaveNetSpaceConfig()).item() == pytest.approx(2.5)  # mean of 5 and 0
    cosine = similarity(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]]), "cosine")
    assert cosine.item() == pytest.approx(0.0, abs=1e-7)


def test_lambda_ndcg_loss_by_hand_and_its_gradient_pushes_relevant_items_up():
    # two items, relevant one ranked first: ranks (1, 2), delta = 1/log2(2) - 1/log2(3),
    # gains (1, 0) / IDCG 1, loss = -delta * log2(sigmoid(1 - 0))
    delta = 1.0 - 1.0 / math.log2(3.0)
    expected = -delta * math.log2(1.0 / (1.0 + math.exp(-1.0)))
    assert lambda_ndcg_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0]])).item() == pytest.approx(expected)

    scores = torch.tensor([[0.2, 0.5, 0.1, 0.9, 0.3, 0.4]], requires_grad=True)
    relevance = torch.tensor([[1.0, 1.0, 1.0, 0.0, 0.0, 0.0]])
    lambda_ndcg_loss(scores, relevance).backward()
    assert (scores.grad[0, :3] < 0).all()  # gradient descent raises the 3 similar songs' scores
    assert (scores.grad[0, 3:] > 0).all()  # and lowers the 3 dissimilar ones'
    good = lambda_ndcg_loss(torch.tensor([[0.9, 0.8, 0.7, 0.3, 0.2, 0.1]]), relevance)
    bad = lambda_ndcg_loss(torch.tensor([[0.1, 0.2, 0.3, 0.7, 0.8, 0.9]]), relevance)
    assert 0 < good < bad
    assert lambda_ndcg_loss(scores.detach(), torch.zeros_like(relevance)).item() == 0.0  # nothing relevant


def test_chroma_lstm_predicts_every_next_frame_and_rebuilds_its_cell_states():
    model = ChromaLSTM(ChromaLSTMConfig(hidden=5)).eval()
    chroma = torch.rand(2, 12, 30)
    assert model(chroma).shape == (2, 12, 30)
    states = model.states(chroma)
    assert states.shape == (2, 30, 10)
    state = None
    with torch.no_grad():
        for t in range(30):  # the reference: one LSTM call per frame
            _, state = model.lstm(chroma[:, :, t : t + 1].transpose(1, 2), state)
            torch.testing.assert_close(states[:, t], torch.cat([state[0][0], state[1][0]], dim=1), rtol=1e-5, atol=1e-6)


def test_ali_shapes_and_lsgan_losses_by_hand():
    model = ALI(ALIConfig(hidden=(32, 16), latent_dim=6)).eval()
    mel = torch.randn(3, 64, 216) * 10 - 40
    x = model.prepare(mel)
    assert x.shape == (3, 16 * 27)
    assert model.encode(mel).shape == (3, 6)
    assert model.decode(torch.randn(4, 6)).shape == (4, 16 * 27)
    assert model.discriminate(x, torch.randn(3, 6)).shape == (3,)
    names = {id(p) for p in model.generator_parameters}
    assert not names & {id(p) for p in model.discriminator_parameters}
    assert len(names) + len(model.discriminator_parameters) == len(list(model.parameters()))
    # a perfect discriminator: no loss for it, 0.5·0.9² + 0.5·1² for the generators
    d, g = lsgan_losses(torch.tensor([0.9]), torch.tensor([0.0]))
    assert d.item() == pytest.approx(0.0) and g.item() == pytest.approx(0.905)
    d, g = lsgan_losses(torch.tensor([0.45]), torch.tensor([0.45]))  # cannot tell the pairs apart
    assert d.item() == pytest.approx(0.2025)


def test_loss_curves_show_every_series_of_a_history():
    history = {"train_loss": [0.4, 0.3], "val_loss": [], "train_loss_name": "generator", "extra_losses": {"discriminator": [0.2, 0.25]}}
    curves = loss_curves({"history": history})
    assert list(curves.columns) == ["generator", "discriminator"] and list(curves.index) == [1, 2]
    plain = loss_curves({"history": {"train_loss": [1.0], "val_loss": [0.9]}})  # a history saved before the extra fields
    assert list(plain.columns) == ["training", "validation"]


def test_chromagram_feature_is_cached_per_track(tone_wav, tmp_path):
    clip = np.sin(2 * np.pi * 440.0 * np.arange(22_050 * 2) / 22_050).astype(np.float32)
    chroma = chromagram(clip)
    assert chroma.shape == (N_CHROMA, 1 + clip.size // 512) and chroma.dtype == np.float32
    assert chroma.min() >= 0 and np.allclose(chroma.max(axis=0), 1.0)
    assert np.argmax(chroma.mean(axis=1)) == 9  # A
    (cached,) = extract_features([tone_wav], ["tone"], kind="chroma", cache_dir=tmp_path, mmap_mode="r")
    assert cached.shape[0] == N_CHROMA and np.argmax(cached.mean(axis=1)) == 9  # 220 Hz is an A too
    assert list((tmp_path).glob("chroma-*/tone.npy"))


def test_flattened_spectrogram_is_fixed_size():
    short = np.full((64, 259), -30.0, dtype=np.float32)
    short[:, 0] = -90.0
    flat = flatten_spectrogram(short)
    assert flat.shape == (64 * 323,)
    assert flat.reshape(64, 323)[0, -1] == -90.0  # padded with the clip's quietest level
    assert flatten_spectrogram(np.zeros((64, 2000), dtype=np.float32)).shape == (64 * 323,)  # longer: cut


# ============================================================================================
# the spaces on the built test catalogue


def test_every_literature_space_is_built_with_its_shape(trained_catalogue):
    catalogue = load_catalogue(trained_catalogue)
    dims = {"spectrogram-pca": N_TRACKS, "spectrogram-l2": 64 * 323, "wavenet": 64, "chroma-lstm": 64, "ali": 64}
    for name in LITERATURE_SPACES:
        space = load_built_space(catalogue, name)
        assert space.vectors_.shape == (N_TRACKS, dims[name]), name  # PCA: at most one component per song
        assert space.vectors_.dtype == np.float32 and np.isfinite(space.vectors_).all(), name
    for name in TORCH_SPACES:
        genre = load_built_space(catalogue, "genre-cnn")
        assert np.array_equal(load_built_space(catalogue, name).test_rows_, genre.test_rows_), name  # the shared split


@pytest.mark.parametrize("name", LITERATURE_SPACES)
def test_catalogue_song_through_the_upload_path_gets_its_catalogue_vector(trained_catalogue, name):
    assert_upload_path_gives_catalogue_vectors(trained_catalogue, name, atol=1e-5)


@pytest.mark.parametrize("name", TORCH_SPACES)
def test_checkpoint_round_trip_on_cpu(trained_catalogue, tmp_path, name):
    catalogue = load_catalogue(trained_catalogue)
    space = load_built_space(catalogue, name)
    checkpoint = space.checkpoint(map_location="cpu")
    assert checkpoint.catalogue_fingerprint == catalogue.fingerprint()
    assert checkpoint.history.device == "cpu" and checkpoint.test_metrics["n"] == len(space.test_rows_)
    save_checkpoint(checkpoint, tmp_path / "model.pt")
    loaded = load_checkpoint(tmp_path / "model.pt", map_location="cpu")
    assert loaded.config == checkpoint.config and loaded.feature_settings == checkpoint.feature_settings
    assert loaded.history == checkpoint.history
    for key, value in checkpoint.state_dict.items():
        assert torch.equal(loaded.state_dict[key], value), key
    clone = pickle.loads(pickle.dumps(space))  # rebuilds its module from the checkpoint bytes
    inputs = space_inputs(
        type(space), catalogue, paths=catalogue.tracks["path"].tolist()[:3], fingerprints=catalogue.audio_fingerprints()[:3],
        keys=catalogue.track_ids[:3], dependency_vectors=None,
    )  # fmt: skip
    np.testing.assert_allclose(clone.transform(inputs), space.vectors_[:3], rtol=1e-5, atol=1e-5)
    summary = json.loads(json.dumps(training_summary(space)))
    assert summary["dim"] == 64 and summary["history"]["train_loss"]


def test_each_model_records_what_its_page_shows(trained_catalogue):
    catalogue = load_catalogue(trained_catalogue)
    wavenet = load_built_space(catalogue, "wavenet").checkpoint()
    assert wavenet.feature_settings["loss"] == "pairwise" and wavenet.feature_settings["similarity"] == "euclidean"
    assert {"ranking_loss", "genre_p@5_euclidean", "genre_p@5_cosine"} <= set(wavenet.test_metrics)
    lstm = load_built_space(catalogue, "chroma-lstm")
    metrics = lstm.checkpoint().test_metrics
    assert metrics["reduction"] == lstm.reduction_ in ("mean", "max", "last")
    assert set(metrics["val_genre_p@5_by_reduction"]) == {"mean", "max", "last"}
    assert metrics["next_frame_l1"] > 0 and metrics["repeat_previous_frame_l1"] >= 0
    ali = load_built_space(catalogue, "ali").checkpoint()
    history = ali.history
    assert history.train_loss_name == "generator" and history.best_epoch == len(history.train_loss)
    assert len(history.extra_losses["discriminator"]) == len(history.train_loss)
    assert len(history.extra_losses["validation reconstruction (MSE)"]) == len(history.train_loss)
    assert isinstance(ali.test_metrics["converged"], bool)


def _inputs(catalogue, cls):
    return space_inputs(
        cls, catalogue, paths=catalogue.tracks["path"].tolist(), fingerprints=catalogue.audio_fingerprints(),
        keys=catalogue.track_ids, dependency_vectors=None,
    )  # fmt: skip


TINY = {
    WaveNetSpace: lambda loss: WaveNetSpace(
        config=WaveNetSpaceConfig(
            crop_frames=32, loss=loss, train=TrainConfig(max_epochs=1, batch_size=8),
            network=WaveNetConfig(channels=8, skip_channels=8, n_stacks=2, layers_per_stack=2, hidden=16, embedding_dim=8),
        )
    ),
    ChromaLSTMSpace: lambda _: ChromaLSTMSpace(config=ChromaLSTMSpaceConfig(section_frames=64, hidden=4, train=TrainConfig(max_epochs=1))),
    ALISpace: lambda _: ALISpace(
        config=ALISpaceConfig(network=ALIConfig(hidden=(16,), latent_dim=4), segments_per_song=1, max_epochs=1)
    ),
}  # fmt: skip


@pytest.mark.parametrize(("cls", "loss"), [(WaveNetSpace, "pairwise"), (WaveNetSpace, "listwise"), (ChromaLSTMSpace, None), (ALISpace, None)])
def test_torch_spaces_are_deterministic_for_a_seed(trained_catalogue, cls, loss):
    catalogue = load_catalogue(trained_catalogue)  # its mel and chroma features are cached
    labels = {c: catalogue.labels(c) for c in catalogue.tracks.columns}
    inputs = _inputs(catalogue, cls)
    a = TINY[cls](loss).fit(inputs, labels=labels, seed=0)
    b = TINY[cls](loss).fit(inputs, labels=labels, seed=0)
    c = TINY[cls](loss).fit(inputs, labels=labels, seed=1)
    np.testing.assert_array_equal(a.vectors_, b.vectors_)
    assert not np.array_equal(a.vectors_, c.vectors_)
    assert a.vectors_.shape[0] == N_TRACKS


def test_spectrogram_pca_is_deterministic_and_refuses_what_memory_cannot_hold(trained_catalogue, monkeypatch):
    catalogue = load_catalogue(trained_catalogue)
    labels = {c: catalogue.labels(c) for c in catalogue.tracks.columns}
    inputs = _inputs(catalogue, SpectrogramPCASpace)
    a = SpectrogramPCASpace(n_components=5).fit(inputs, labels=labels, seed=0)
    np.testing.assert_array_equal(a.vectors_, SpectrogramPCASpace(n_components=5).fit(inputs, labels=labels, seed=0).vectors_)
    assert a.vectors_.shape == (N_TRACKS, 5)
    monkeypatch.setattr("songsim.spaces.literature.MAX_SPECTROGRAM_BYTES", 1000)
    with pytest.raises(SongsimError, match="over the 0 GiB limit of the spectrogram spaces"):
        SpectrogramPCASpace().fit(inputs, labels=labels)


def test_wavenet_is_skipped_without_genres_and_the_others_need_no_labels(built_catalogue, tmp_path):
    root = tmp_path / "no-genres"
    shutil.copytree(built_catalogue, root, ignore=shutil.ignore_patterns(".songsim"))
    tracks = pd.read_csv(root / "tracks.csv")
    tracks.drop(columns=["genre"]).to_csv(root / "tracks.csv", index=False)
    report = build(root, spaces=["wavenet", "spectrogram-pca"], map_methods=(), n_jobs=1)
    assert report.skipped == {"wavenet": "the catalogue has no genre labels"}
    assert report.built == ["spectrogram-pca"]
    assert all(cls.required_labels == () for cls in (ChromaLSTMSpace, ALISpace, SpectrogramPCASpace))


def test_chroma_inputs_come_from_the_feature_cache(trained_catalogue):
    catalogue = load_catalogue(trained_catalogue)
    chromas = _inputs(catalogue, ChromaLSTMSpace)["chroma"]
    assert len(chromas) == N_TRACKS and all(c.shape[0] == N_CHROMA for c in chromas)
    assert list(features_cache_dir(catalogue).glob("chroma-*"))
