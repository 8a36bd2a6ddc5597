"""Training machinery shared by every learned space: device choice, seeding, the training
loop with early stopping, the stratified split and checkpoints.

Device
    :func:`choose_device`: ``cuda`` if available, else ``mps``, else ``cpu``; an explicit
    choice (``--device``) overrides and is validated. Checkpoints always load with
    ``map_location``, so a model trained on a GPU serves on a laptop.
Seeding
    :func:`seeded` seeds torch's generator inside a forked RNG state (the caller's state is
    restored afterwards); data sampling uses a separate ``numpy.random.Generator``. The same
    seed on the same device gives the same weights.
Loop
    :func:`fit_model`: Adam, one pass over freshly drawn training batches per epoch, the
    validation loss after each epoch, early stopping after ``patience`` epochs without
    improvement, and the weights of the best validation epoch restored at the end. Returns
    a :class:`History` (losses per epoch, best epoch, seconds, device). With a
    :class:`ResumeFile` it saves its whole state after every epoch and a killed run continues
    from the last finished epoch with the same result.
    :func:`fit_adversarial` is the two-player loop of adversarial models (ALI): alternating
    discriminator and generator steps, both losses in the history, no early stopping; it
    resumes the same way.
Checkpoints
    :class:`Checkpoint`: the model's config dataclass, its weights, the feature settings,
    the catalogue fingerprint, the history and the test metrics. :func:`save_checkpoint`
    writes plain types and tensors only, so :func:`load_checkpoint` uses
    ``torch.load(..., map_location=..., weights_only=True)``.
"""

from __future__ import annotations

import io
import math
import os
import time
import warnings
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Any, BinaryIO

import numpy as np
import torch
from torch import nn

from songsim.errors import SongsimError
from songsim.files import atomic_write
from songsim.models import MODEL_TYPES

__all__ = [
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "DEVICES",
    "History",
    "ResumeFile",
    "Split",
    "choose_device",
    "classification_metrics",
    "fit_adversarial",
    "fit_model",
    "load_checkpoint",
    "mean_loss",
    "save_checkpoint",
    "seeded",
    "stratified_folds",
    "stratified_split",
]

CHECKPOINT_FORMAT = "songsim.checkpoint/1"
DEVICES = ("cpu", "cuda", "mps")

Batch = tuple[torch.Tensor, ...]
#: on_epoch(epoch 1-based, max_epochs, train_loss, val_loss or None)
EpochFn = Callable[[int, int, float, "float | None"], None]


# ============================================================================================
# device and seeds


def choose_device(preferred: str | None = None) -> torch.device:
    """The device to train or embed on.

    Parameters
    ----------
    preferred : str, optional
        ``"cpu"``, ``"cuda"`` (or ``"cuda:N"``) or ``"mps"``; ``None`` picks ``cuda`` if
        available, else ``mps``, else ``cpu``.

    Returns
    -------
    torch.device

    Raises
    ------
    SongsimError
        ``preferred`` is unknown or not available on this machine.
    """
    if preferred is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = str(preferred).split(":")[0]
    if kind not in DEVICES:
        raise SongsimError(f"Unknown device {preferred!r}: use one of {', '.join(DEVICES)} (or leave it out to pick one).")
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}[kind]
    if not available:
        raise SongsimError(f"Device {preferred!r} is not available on this machine: use --device cpu, or leave it out.")
    try:
        return torch.device(preferred)
    except RuntimeError as exc:
        raise SongsimError(f"Bad device {preferred!r} ({exc}): use e.g. cuda:0.") from None


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with torch's generators seeded by ``seed``; restore them afterwards.

    Parameters
    ----------
    seed : int
    """
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


# ============================================================================================
# split


@dataclass(frozen=True)
class Split:
    """Row indices of a train/validation/test split (sorted, disjoint, covering every row).

    Attributes
    ----------
    train, val, test : np.ndarray [shape=(n_rows_in_part,), int64]
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0  # 0.618…: the most evenly spread Weyl sequence


def _stratum_order(strata: Sequence[Hashable], rng: np.random.Generator) -> np.ndarray:
    """The rows laid out stratum by stratum, shuffled within each: the layout that
    :func:`stratified_split` and :func:`stratified_folds` walk with their sequences.

    Strata are compared by their ``repr`` (so ``None`` and labels of mixed types sort too) and
    laid end to end in sorted order of it; each stratum's rows are permuted with ``rng``, one
    ``rng.permutation`` per stratum in that order (so the draws that follow are seeded alike).

    Parameters
    ----------
    strata : sequence of hashable [length n_rows]
        Stratum of each row.
    rng : np.random.Generator
        Advanced by the permutations.

    Returns
    -------
    np.ndarray [shape=(n_rows,), int64]
        A permutation of ``0..n_rows-1``: row indices in layout order.
    """
    keys = np.asarray([repr(s) for s in strata], dtype=object)
    order: list[int] = []
    for key in sorted(set(keys.tolist())):
        order.extend(rng.permutation(np.flatnonzero(keys == key)).tolist())
    return np.asarray(order, dtype=np.int64)


def stratified_split(
    strata: Sequence[Hashable], *, val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0
) -> Split:
    """A seeded split keeping each stratum's proportions (80/10/10 by default).

    Rows are shuffled within their stratum and the strata laid end to end; position ``p``
    gets the value ``u_p = frac(offset + p · 0.618…)`` (a low-discrepancy Weyl sequence with
    a seeded offset) and goes to test if ``u_p < test_fraction``, to validation if
    ``u_p < test_fraction + val_fraction``, else to train. Any run of consecutive positions
    (so every stratum) is split close to the fractions, strata of one or two rows included,
    and the totals are within about one row of ``n · fraction``.

    Parameters
    ----------
    strata : sequence of hashable [length n_rows]
        Stratum of each row (e.g. ``"rock|happy"``); any hashable, ``None`` included.
    val_fraction, test_fraction : float
        Shares of the validation and test parts, each in ``[0, 1)``, summing below 1.
    seed : int
        Seed of the shuffle and the offset.

    Returns
    -------
    Split
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"val_fraction {val_fraction} and test_fraction {test_fraction} must be in [0, 1) and sum below 1")
    rng = np.random.default_rng(seed)
    order_array = _stratum_order(strata, rng)
    u = (rng.random() + np.arange(len(order_array)) * _GOLDEN) % 1.0
    test = np.sort(order_array[u < test_fraction])
    val = np.sort(order_array[(u >= test_fraction) & (u < test_fraction + val_fraction)])
    train = np.sort(order_array[u >= test_fraction + val_fraction])
    return Split(train=train, val=val, test=test)


def stratified_folds(strata: Sequence[Hashable], *, k: int, seed: int = 0) -> np.ndarray:
    """A seeded assignment of rows to ``k`` folds keeping each stratum's proportions.

    Rows are shuffled within their stratum and the strata laid end to end (as in
    :func:`stratified_split`); position ``p`` goes to fold ``(offset + p) mod k`` with a seeded
    offset. Any run of consecutive positions (so every stratum) is spread over the folds as
    evenly as possible: a stratum of ``m`` rows puts ``⌊m/k⌋`` or ``⌈m/k⌉`` rows in each fold,
    and the folds' sizes differ by at most one.

    Parameters
    ----------
    strata : sequence of hashable [length n_rows]
        Stratum of each row (e.g. ``"rock|happy"``).
    k : int >= 2
        Folds.
    seed : int
        Seed of the shuffle and the offset; the same strata and seed always give the same folds.

    Returns
    -------
    np.ndarray [shape=(n_rows,), int64]
        Each row's fold, in ``0..k-1``.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise ValueError(f"k must be an integer >= 2; got {k!r}")
    rng = np.random.default_rng(seed)
    order = _stratum_order(strata, rng)
    folds = np.empty(len(order), dtype=np.int64)
    folds[order] = (int(rng.integers(k)) + np.arange(len(order))) % k
    return folds


# ============================================================================================
# the training loop


@dataclass
class History:
    """What a training run did.

    Attributes
    ----------
    train_loss, val_loss : list of float
        Mean loss per epoch (``val_loss`` is empty when there was no validation data, and the
        training loss then decides the best epoch).
    best_epoch : int
        1-based epoch whose weights were kept.
    stopped_early : bool
        Whether patience ran out before ``max_epochs``.
    seconds : float
        Wall-clock training time.
    device : str
        Where it trained.
    train_loss_name : str
        What ``train_loss`` is, for plots (``"training"``; ``"generator"`` for an adversarial
        model).
    extra_losses : dict of str to list of float
        Further per-epoch series by name (e.g. ``"discriminator"``), each as long as
        ``train_loss``.
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    seconds: float = 0.0
    device: str = "cpu"
    train_loss_name: str = "training"
    extra_losses: dict[str, list[float]] = field(default_factory=dict)


def _to(batch: Batch, device: torch.device) -> Batch:
    return tuple(t.to(device, non_blocking=True) for t in batch)


def mean_loss(
    model: nn.Module, loss_fn: Callable[[nn.Module, Batch], torch.Tensor], batches: Iterable[Batch], device: torch.device
) -> float:
    """Loss over ``batches`` in eval mode without gradients, weighted by batch length."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            batch = _to(batch, device)
            total += float(loss_fn(model, batch)) * len(batch[0])
            count += len(batch[0])
    return total / count if count else math.nan


@dataclass(frozen=True)
class ResumeFile:
    """Where :func:`fit_model` keeps the state of an unfinished training after every epoch, so
    that a killed run continues from its last finished epoch with the same result.

    Attributes
    ----------
    path : path-like
        The file, written atomically after each epoch. The caller deletes it once the trained
        model is stored: until then a killed run resumes from it (from the end, if training
        had finished), instead of training again.
    key : str
        What is being trained (e.g. the space's fit key); a file with another key, or for a
        model of another shape, is stale and ignored.
    """

    path: os.PathLike | str
    key: str


def _model_signature(model: nn.Module) -> str:
    return type(model).__name__ + ":" + ",".join(f"{k}{tuple(v.shape)}" for k, v in model.state_dict().items())


def _generator_states(rng: np.random.Generator | None) -> dict[str, Any]:
    """The random generators a training draws from, for its saved state."""
    return {
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy_rng": None if rng is None else rng.bit_generator.state,
    }


def _restore_generators(saved: dict[str, Any], rng: np.random.Generator | None) -> None:
    torch.set_rng_state(saved["torch_rng"].cpu())
    if saved["cuda_rng"]:
        torch.cuda.set_rng_state_all([state.cpu() for state in saved["cuda_rng"]])
    if rng is not None:
        rng.bit_generator.state = saved["numpy_rng"]


def _save_training_state(resume: ResumeFile, state: dict[str, Any]) -> bool:
    """Write the state atomically; ``False`` (with a warning) when it cannot be written, e.g. a
    full disk: training goes on, only without the chance to resume."""
    try:
        with atomic_write(resume.path) as handle:
            torch.save(state, handle)
    except OSError as error:
        warnings.warn(
            f"cannot save the training state to {resume.path} ({error.strerror or error}); training goes on, "
            "but a killed build will restart it from the first epoch",
            stacklevel=3,
        )
        return False
    return True


def _load_training_state(resume: ResumeFile, signature: str, device: torch.device) -> dict[str, Any] | None:
    """The saved state of this training (with ``"history"`` as a :class:`History`), or ``None``
    when there is none, or it is of another fit, model shape or device, or unreadable."""
    try:
        state = torch.load(resume.path, map_location=device, weights_only=True)
        if (state.get("key"), state.get("signature"), state.get("device")) != (resume.key, signature, str(device)):
            return None
        state["history"] = History(**state["history"])
        n_cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if len(state["cuda_rng"]) not in (0, n_cuda):
            return None
        return state
    except Exception:  # noqa: BLE001 - missing, foreign or from another songsim: as good as none
        return None


def fit_model(
    model: nn.Module,
    *,
    loss_fn: Callable[[nn.Module, Batch], torch.Tensor],
    train_batches: Callable[[], Iterable[Batch]],
    val_batches: Sequence[Batch],
    max_epochs: int,
    patience: int,
    learning_rate: float,
    weight_decay: float,
    device: torch.device,
    on_epoch: EpochFn | None = None,
    resume: ResumeFile | None = None,
    rng: np.random.Generator | None = None,
) -> History:
    """Train ``model`` with Adam and early stopping on the validation loss.

    Parameters
    ----------
    model : torch.nn.Module
        Moved to ``device``; on return it holds the weights of the best epoch, in eval mode.
    loss_fn : callable
        ``loss_fn(model, batch) -> scalar tensor``; ``batch`` is a tuple of tensors already on
        ``device`` whose first item has one row per example.
    train_batches : callable
        Returns the batches of one epoch (called once per epoch, so crops and shuffles are
        drawn afresh), as tuples of CPU tensors.
    val_batches : sequence of tuples of tensors
        Fixed validation batches; empty to select on the training loss.
    max_epochs : int
        Upper bound on epochs.
    patience : int
        Stop after this many epochs without a lower monitored loss.
    learning_rate, weight_decay : float
        Adam's step size and L2 penalty.
    device : torch.device
    on_epoch : callable, optional
        ``on_epoch(epoch, max_epochs, train_loss, val_loss)`` after every epoch.
    resume : ResumeFile, optional
        Save the training state (weights, optimiser, best weights, history, and the torch and
        ``rng`` generator states) there after every epoch, and start from it when it holds an
        unfinished run of the same key: a killed training then ends exactly as an
        uninterrupted one would.
    rng : numpy.random.Generator, optional
        The generator ``train_batches`` draws from, saved and restored with ``resume``.

    Returns
    -------
    History
    """
    started = time.perf_counter()
    model.to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    history = History(device=str(device))
    best_loss, best_state, first_epoch, seconds_before = math.inf, None, 1, 0.0
    signature = _model_signature(model)
    saved = _load_training_state(resume, signature, device) if resume is not None else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimiser.load_state_dict(saved["optimiser"])
        best_loss, best_state, first_epoch = saved["best_loss"], saved["best_state"], saved["epoch"] + 1
        history = saved["history"]
        seconds_before = history.seconds
        _restore_generators(saved, rng)
        if saved["epoch"] - history.best_epoch >= patience:  # it was killed as patience ran out
            history.stopped_early, first_epoch = saved["epoch"] < max_epochs, max_epochs + 1
    for epoch in range(first_epoch, max_epochs + 1):
        model.train()
        total, count = 0.0, 0
        for batch in train_batches():
            batch = _to(batch, device)
            loss = loss_fn(model, batch)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(batch[0])
            count += len(batch[0])
        train_loss = total / max(count, 1)
        history.train_loss.append(train_loss)
        val_loss = mean_loss(model, loss_fn, val_batches, device) if val_batches else None
        if val_loss is not None:
            history.val_loss.append(val_loss)
        monitored = train_loss if val_loss is None else val_loss
        if monitored < best_loss:
            best_loss, history.best_epoch = monitored, epoch
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        history.seconds = seconds_before + time.perf_counter() - started
        if resume is not None and not _save_training_state(resume, {
                "key": resume.key, "signature": signature, "device": str(device), "epoch": epoch, "model": model.state_dict(),
                "optimiser": optimiser.state_dict(), "best_loss": best_loss, "best_state": best_state,
                "history": asdict(history), **_generator_states(rng),
            }):  # fmt: skip
            resume = None  # could not save (warned): go on without
        if on_epoch is not None:
            on_epoch(epoch, max_epochs, train_loss, val_loss)
        if epoch - history.best_epoch >= patience and epoch < max_epochs:
            history.stopped_early = True
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    history.seconds = seconds_before + time.perf_counter() - started
    return history


def fit_adversarial(
    model: nn.Module,
    *,
    discriminator_loss: Callable[[nn.Module, Batch, float], torch.Tensor],
    generator_loss: Callable[[nn.Module, Batch, float], torch.Tensor],
    discriminator_parameters: Iterable[nn.Parameter],
    generator_parameters: Iterable[nn.Parameter],
    train_batches: Callable[[], Iterable[Batch]],
    max_epochs: int,
    generator_steps: int,
    learning_rate: float,
    betas: tuple[float, float],
    device: torch.device,
    monitor: Callable[[nn.Module], dict[str, float]] | None = None,
    on_epoch: EpochFn | None = None,
    resume: ResumeFile | None = None,
    rng: np.random.Generator | None = None,
) -> History:
    """Train a two-player (adversarial) model: per batch one discriminator step, then
    ``generator_steps`` generator steps, each player with its own Adam.

    Adversarial losses do not measure quality (each player's loss depends on the other), so
    there is no early stopping: the weights of the last epoch are kept.

    Parameters
    ----------
    model : torch.nn.Module
        Holds both players; moved to ``device``, in eval mode on return.
    discriminator_loss, generator_loss : callable
        ``loss(model, batch, progress) -> scalar tensor``; ``batch`` is a tuple of tensors on
        ``device``, ``progress = (epoch - 1) / max_epochs`` in ``[0, 1)`` (for annealed
        settings, e.g. noise on the discriminator's inputs).
    discriminator_parameters, generator_parameters : iterable of parameters
        What each player's optimiser updates (disjoint).
    train_batches : callable
        Returns the batches of one epoch (tuples of CPU tensors).
    max_epochs : int
    generator_steps : int >= 1
        Generator updates per discriminator update (on the same batch).
    learning_rate : float
    betas : (float, float)
        Adam's moment decays (GANs usually take ``(0.5, 0.999)``).
    device : torch.device
    monitor : callable, optional
        ``monitor(model) -> {name: value}`` after every epoch, in eval mode without
        gradients (e.g. a validation reconstruction error); each name becomes a series of
        :attr:`History.extra_losses`.
    on_epoch : callable, optional
        ``on_epoch(epoch, max_epochs, generator_loss, None)`` after every epoch.
    resume, rng : optional
        As in :func:`fit_model`: the state (both players' optimisers included) is saved after
        every epoch and a killed run continues from its last finished epoch.

    Returns
    -------
    History
        ``train_loss``: the generator's mean loss per epoch (``train_loss_name`` =
        ``"generator"``); ``extra_losses["discriminator"]`` and the monitored series;
        ``val_loss`` empty; ``best_epoch`` the last epoch.
    """
    started = time.perf_counter()
    model.to(device)
    optimise_d = torch.optim.Adam(list(discriminator_parameters), lr=learning_rate, betas=betas)
    optimise_g = torch.optim.Adam(list(generator_parameters), lr=learning_rate, betas=betas)
    history = History(device=str(device), train_loss_name="generator", extra_losses={"discriminator": []})
    first_epoch, seconds_before = 1, 0.0
    signature = _model_signature(model)
    saved = _load_training_state(resume, signature, device) if resume is not None else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimise_d.load_state_dict(saved["optimisers"][0])
        optimise_g.load_state_dict(saved["optimisers"][1])
        history, first_epoch = saved["history"], saved["epoch"] + 1
        seconds_before = history.seconds
        _restore_generators(saved, rng)
    for epoch in range(first_epoch, max_epochs + 1):
        progress = (epoch - 1) / max_epochs
        model.train()
        totals, count = {"generator": 0.0, "discriminator": 0.0}, 0
        for batch in train_batches():
            batch = _to(batch, device)
            loss_d = discriminator_loss(model, batch, progress)
            optimise_d.zero_grad(set_to_none=True)
            loss_d.backward()
            optimise_d.step()
            loss_g = torch.zeros(())
            for _ in range(generator_steps):
                loss_g = generator_loss(model, batch, progress)
                optimise_g.zero_grad(set_to_none=True)
                loss_g.backward()
                optimise_g.step()
            totals["discriminator"] += float(loss_d.detach()) * len(batch[0])
            totals["generator"] += float(loss_g.detach()) * len(batch[0])
            count += len(batch[0])
        history.train_loss.append(totals["generator"] / max(count, 1))
        history.extra_losses["discriminator"].append(totals["discriminator"] / max(count, 1))
        if monitor is not None:
            model.eval()
            with torch.no_grad():
                for name, value in monitor(model).items():
                    history.extra_losses.setdefault(name, []).append(float(value))
        history.best_epoch = epoch
        history.seconds = seconds_before + time.perf_counter() - started
        if resume is not None and not _save_training_state(resume, {
                "key": resume.key, "signature": signature, "device": str(device), "epoch": epoch, "model": model.state_dict(),
                "optimisers": [optimise_d.state_dict(), optimise_g.state_dict()], "history": asdict(history),
                **_generator_states(rng),
            }):  # fmt: skip
            resume = None  # could not save (warned): go on without
        if on_epoch is not None:
            on_epoch(epoch, max_epochs, history.train_loss[-1], None)
    model.eval()
    history.seconds = seconds_before + time.perf_counter() - started
    return history


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, *, classes: Sequence[str]) -> dict[str, Any]:
    """Accuracy and confusion matrix of class indices.

    Parameters
    ----------
    y_true, y_pred : np.ndarray [shape=(n,), int]
        Indices into ``classes``.
    classes : sequence of str

    Returns
    -------
    dict
        ``{"accuracy": float (NaN when n = 0), "confusion_matrix": list of lists [true][pred],
        "classes": list, "n": int}`` — plain types, ready for a checkpoint or JSON.
    """
    from sklearn.metrics import confusion_matrix

    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    matrix = confusion_matrix(y_true, y_pred, labels=np.arange(len(classes))) if len(y_true) else np.zeros((len(classes),) * 2)
    return {
        "accuracy": float(np.mean(y_true == y_pred)) if len(y_true) else math.nan,
        "confusion_matrix": matrix.astype(int).tolist(),
        "classes": list(classes),
        "n": int(len(y_true)),
    }


# ============================================================================================
# checkpoints


@dataclass
class Checkpoint:
    """A trained model and what it was trained on.

    Attributes
    ----------
    config : dataclass
        The model's config (:class:`~songsim.models.CNNConfig`, ...): rebuilds the module.
    state_dict : dict of str to torch.Tensor
        The weights (and buffers).
    feature_settings : dict
        What the input was (e.g. mel settings and crop length, or the input spaces).
    catalogue_fingerprint : str
        :meth:`songsim.catalogue.Catalogue.fingerprint` of the training catalogue.
    history : History
    test_metrics : dict
        Plain types (e.g. :func:`classification_metrics`).
    """

    config: Any
    state_dict: dict[str, torch.Tensor]
    feature_settings: dict[str, Any]
    catalogue_fingerprint: str
    history: History
    test_metrics: dict[str, Any]

    @property
    def model_name(self) -> str:
        """Key of :data:`songsim.models.MODEL_TYPES` for this config."""
        for name, (_, config_type) in MODEL_TYPES.items():
            if isinstance(self.config, config_type):
                return name
        raise SongsimError(f"No model type uses {type(self.config).__name__}.")

    def build_module(self, device: torch.device | str = "cpu") -> nn.Module:
        """The module with these weights, on ``device``, in eval mode."""
        module_type, _ = MODEL_TYPES[self.model_name]
        module = module_type(self.config)
        module.load_state_dict(self.state_dict)
        return module.to(device).eval()


def save_checkpoint(checkpoint: Checkpoint, target: str | os.PathLike | BinaryIO) -> None:
    """Write ``checkpoint`` (plain types and tensors only: loadable with ``weights_only=True``).

    Parameters
    ----------
    checkpoint : Checkpoint
    target : path or binary file
        A path is written atomically.
    """
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": checkpoint.model_name,
        "config": asdict(checkpoint.config),
        "state_dict": {k: v.detach().cpu() for k, v in checkpoint.state_dict.items()},
        "feature_settings": checkpoint.feature_settings,
        "catalogue_fingerprint": checkpoint.catalogue_fingerprint,
        "history": asdict(checkpoint.history),
        "test_metrics": checkpoint.test_metrics,
    }
    if isinstance(target, (str, os.PathLike)):
        with atomic_write(target) as handle:
            torch.save(payload, handle)
    else:
        torch.save(payload, target)


def load_checkpoint(source: str | os.PathLike | BinaryIO | bytes, *, map_location: torch.device | str = "cpu") -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`, tensors on ``map_location``.

    Parameters
    ----------
    source : path, binary file or bytes
    map_location : torch.device or str
        Where the tensors land (a GPU-trained checkpoint loads on ``"cpu"``).

    Returns
    -------
    Checkpoint

    Raises
    ------
    SongsimError
        Not a songsim checkpoint, or damaged.
    """
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        payload = torch.load(stream, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated, foreign or unsafe file
        raise SongsimError(f"Cannot read the model checkpoint ({exc}): delete it and train again.") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT or payload.get("model") not in MODEL_TYPES:
        raise SongsimError("Not a songsim model checkpoint: delete it and train again.")
    _, config_type = MODEL_TYPES[payload["model"]]
    names = {f.name for f in fields(config_type)}
    config = config_type(**{k: tuple(v) if isinstance(v, list) else v for k, v in payload["config"].items() if k in names})
    return Checkpoint(
        config=config,
        state_dict=payload["state_dict"],
        feature_settings=payload["feature_settings"],
        catalogue_fingerprint=payload["catalogue_fingerprint"],
        history=History(**payload["history"]),
        test_metrics=payload["test_metrics"],
    )
