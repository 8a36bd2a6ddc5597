"""songsim.train: device choice, split, the early-stopping loop, determinism, checkpoints."""

import io

import numpy as np
import pytest
import torch
from torch import nn

from songsim.errors import SongsimError
from songsim.models import AutoencoderConfig, CNNConfig, DenseAutoencoder, MelCNN
from songsim.train import (
    Checkpoint,
    History,
    ResumeFile,
    choose_device,
    classification_metrics,
    fit_adversarial,
    fit_model,
    load_checkpoint,
    save_checkpoint,
    seeded,
    stratified_split,
)


def test_choose_device_default_and_override():
    assert choose_device().type in ("cuda", "mps", "cpu")
    assert choose_device("cpu") == torch.device("cpu")
    with pytest.raises(SongsimError, match="Unknown device 'tpu'"):
        choose_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_an_unavailable_device_is_a_clear_error():
    with pytest.raises(SongsimError, match="not available"):
        choose_device("cuda")


def test_stratified_split_is_80_10_10_per_stratum_and_seeded():
    strata = np.repeat([f"g{i}" for i in range(8)], 30)
    split = stratified_split(strata, seed=0)
    parts = [split.train, split.val, split.test]
    assert sorted(np.concatenate(parts).tolist()) == list(range(240))
    assert [len(p) for p in parts] == pytest.approx([192, 24, 24], abs=2)
    for stratum in set(strata):
        members = np.flatnonzero(strata == stratum)
        assert 2 <= np.isin(members, split.test).sum() <= 4
        assert 2 <= np.isin(members, split.val).sum() <= 4
    again = stratified_split(strata, seed=0)
    assert np.array_equal(again.test, split.test)
    assert not np.array_equal(stratified_split(strata, seed=1).test, split.test)


def test_stratified_split_handles_tiny_strata_and_none():
    strata = ["a", "b", None, "c", "c", "a"] * 4
    split = stratified_split(strata, seed=3)
    assert len(split.train) + len(split.val) + len(split.test) == 24
    assert len(split.test) >= 1 and len(split.val) >= 1
    with pytest.raises(ValueError):
        stratified_split(strata, val_fraction=0.6, test_fraction=0.5)


def _regression_problem():
    """Training pulls w towards 2, validation prefers w = 0.5: validation loss falls, then rises."""
    x = torch.linspace(-1, 1, 32)[:, None]
    train = [(x, 2.0 * x)]
    val = [(x, 0.5 * x)]

    def loss_fn(model, batch):
        return nn.functional.mse_loss(model(batch[0]), batch[1])

    return train, val, loss_fn


def test_fit_model_stops_early_and_keeps_the_best_epoch():
    train, val, loss_fn = _regression_problem()
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)
    epochs = []
    history = fit_model(
        model, loss_fn=loss_fn, train_batches=lambda: train, val_batches=val, max_epochs=200, patience=5,
        learning_rate=0.05, weight_decay=0.0, device=torch.device("cpu"), on_epoch=lambda *a: epochs.append(a),
    )  # fmt: skip
    assert history.stopped_early and len(history.val_loss) < 200
    assert history.best_epoch == int(np.argmin(history.val_loss)) + 1
    assert len(history.val_loss) == history.best_epoch + 5  # patience epochs after the best
    with torch.no_grad():
        restored = loss_fn(model, val[0]).item()
    assert restored == pytest.approx(min(history.val_loss))
    assert epochs[0][:2] == (1, 200) and len(epochs) == len(history.train_loss)
    assert not model.training


def test_fit_model_without_validation_selects_on_training_loss():
    train, _, loss_fn = _regression_problem()
    model = nn.Linear(1, 1, bias=False)
    history = fit_model(
        model, loss_fn=loss_fn, train_batches=lambda: train, val_batches=[], max_epochs=5, patience=5,
        learning_rate=0.05, weight_decay=0.0, device=torch.device("cpu"),
    )  # fmt: skip
    assert history.val_loss == [] and history.best_epoch == int(np.argmin(history.train_loss)) + 1


def _fit_regression(resume=None, on_epoch=None):
    train, val, loss_fn = _regression_problem()
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)
    history = fit_model(
        model, loss_fn=loss_fn, train_batches=lambda: train, val_batches=val, max_epochs=200, patience=5,
        learning_rate=0.05, weight_decay=0.0, device=torch.device("cpu"), on_epoch=on_epoch, resume=resume,
    )  # fmt: skip
    return model, history


def test_a_finished_training_state_resumes_at_its_end_without_training_again(tmp_path):
    """Killed after training but before the model was stored: the state finishes it at once."""
    resume = ResumeFile(tmp_path / "state.pt", "fit-1")
    first, history = _fit_regression(resume)
    assert history.stopped_early and (tmp_path / "state.pt").is_file()  # the caller deletes it once stored
    epochs = []
    again, resumed = _fit_regression(resume, on_epoch=lambda *a: epochs.append(a))
    assert epochs == []
    assert torch.equal(again.weight, first.weight)
    assert (resumed.train_loss, resumed.best_epoch, resumed.stopped_early) == (history.train_loss, history.best_epoch, True)

    _, other = _fit_regression(ResumeFile(tmp_path / "state.pt", "fit-2"), on_epoch=lambda *a: epochs.append(a))
    assert epochs and len(other.train_loss) == len(history.train_loss)  # another fit's state: trained afresh


def test_an_unwritable_training_state_warns_and_training_goes_on(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the state's folder should be")
    with pytest.warns(UserWarning, match="cannot save the training state"):
        _, history = _fit_regression(ResumeFile(blocker / "state.pt", "fit"))
    assert history.stopped_early and history.best_epoch > 0


class _TwoPlayers(nn.Module):
    """A toy adversarial pair: the generator maps noise to points, the discriminator scores them."""

    def __init__(self) -> None:
        super().__init__()
        self.g, self.d = nn.Linear(2, 2), nn.Linear(2, 1)


def _fit_two_players(resume=None, stop_after=None):
    """fit_adversarial on the toy pair for 4 epochs, drawing batches from a numpy generator and
    noise from torch's; ``stop_after`` raises after that epoch (a kill once its state is saved)."""
    rng = np.random.default_rng(0)
    data = torch.randn(64, 2, generator=torch.Generator().manual_seed(1)) + 3.0

    def batches():
        order = rng.permutation(64)
        return [(data[order[i : i + 16]],) for i in range(0, 64, 16)]

    def d_loss(model, batch, progress):
        fake = model.g(torch.randn_like(batch[0]))
        return model.d(fake.detach()).mean() - model.d(batch[0]).mean()

    def g_loss(model, batch, progress):
        return -model.d(model.g(torch.randn_like(batch[0]))).mean()

    def on_epoch(epoch, *rest):
        if epoch == stop_after:
            raise KeyboardInterrupt

    with seeded(0):
        model = _TwoPlayers()
        history = fit_adversarial(
            model, discriminator_loss=d_loss, generator_loss=g_loss, discriminator_parameters=model.d.parameters(),
            generator_parameters=model.g.parameters(), train_batches=batches, max_epochs=4, generator_steps=2,
            learning_rate=0.01, betas=(0.5, 0.999), device=torch.device("cpu"), on_epoch=on_epoch, resume=resume, rng=rng,
        )  # fmt: skip
    return model, history


def test_an_interrupted_adversarial_training_resumes_to_the_same_weights(tmp_path):
    reference, expected = _fit_two_players()
    resume = ResumeFile(tmp_path / "state.pt", "ali")
    with pytest.raises(KeyboardInterrupt):
        _fit_two_players(resume, stop_after=2)
    resumed, history = _fit_two_players(resume)
    for name, value in reference.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], value), name
    assert history.train_loss == expected.train_loss and history.extra_losses == expected.extra_losses


def _train_tiny_cnn(seed: int) -> MelCNN:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(16, 64, 32, generator=generator)
    y = torch.arange(16) % 2

    def loss_fn(model, batch):
        return nn.functional.cross_entropy(model(batch[0])[0], batch[1])

    with seeded(seed):
        model = MelCNN(CNNConfig(n_classes=(2,), channels=(4, 8), embedding_dim=8))
        fit_model(
            model, loss_fn=loss_fn, train_batches=lambda: [(x[:8], y[:8]), (x[8:], y[8:])], val_batches=[(x, y)],
            max_epochs=3, patience=3, learning_rate=1e-2, weight_decay=0.0, device=torch.device("cpu"),
        )  # fmt: skip
    return model


def test_training_is_deterministic_for_a_seed():
    a, b, c = _train_tiny_cnn(0), _train_tiny_cnn(0), _train_tiny_cnn(1)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    assert any(not torch.equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())


def test_seeded_restores_the_callers_generator():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    with seeded(0):
        torch.rand(5)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("target", ["file", "bytes"])
def test_checkpoint_round_trip_on_cpu(tmp_path, target):
    with seeded(0):
        model = DenseAutoencoder(AutoencoderConfig(input_dim=12, hidden=(8,), code_dim=3)).eval()
    checkpoint = Checkpoint(
        config=model.config,
        state_dict=model.state_dict(),
        feature_settings={"inputs": ["a", "b"]},
        catalogue_fingerprint="abc123",
        history=History(train_loss=[1.0, 0.5], val_loss=[1.1, 0.7], best_epoch=2, seconds=0.1, device="cuda:0"),
        test_metrics={"reconstruction_mse": 0.25, "n": 3},
    )
    if target == "file":
        save_checkpoint(checkpoint, tmp_path / "model.pt")
        loaded = load_checkpoint(tmp_path / "model.pt", map_location="cpu")
    else:
        buffer = io.BytesIO()
        save_checkpoint(checkpoint, buffer)
        loaded = load_checkpoint(buffer.getvalue(), map_location=torch.device("cpu"))
    assert loaded.config == model.config and isinstance(loaded.config.hidden, tuple)
    assert loaded.history == checkpoint.history and loaded.test_metrics == checkpoint.test_metrics
    assert loaded.catalogue_fingerprint == "abc123" and loaded.feature_settings == {"inputs": ["a", "b"]}
    x = torch.randn(4, 12)
    with torch.no_grad():
        torch.testing.assert_close(loaded.build_module("cpu")(x)[1], model(x)[1], rtol=0, atol=0)


def test_a_foreign_file_is_not_a_checkpoint(tmp_path):
    torch.save({"hello": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(SongsimError, match="Not a songsim model checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SongsimError, match="Cannot read"):
        load_checkpoint(tmp_path / "garbage.pt")


def test_classification_metrics():
    metrics = classification_metrics(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), classes=["a", "b", "c"])
    assert metrics["accuracy"] == 0.75 and metrics["n"] == 4
    assert metrics["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    empty = classification_metrics(np.array([], dtype=int), np.array([], dtype=int), classes=["a"])
    assert np.isnan(empty["accuracy"]) and empty["n"] == 0
