"""MusiCNN (Pons & Serra 2019) in torch: the ``MSD_musicnn`` tagger with its trained weights.

Jordi Pons and Xavier Serra, "musicnn: pre-trained convolutional neural networks for music
audio tagging", ISMIR 2019 late-breaking demo. The ``musicnn==0.1.0`` wheel (ISC licence)
ships the TensorFlow-1 checkpoints; this module reads ``MSD_musicnn`` (trained on the Million
Song Dataset's 50 most frequent Last.fm tags) with :mod:`songsim.models.tf_bundle` and runs it
in torch, so **no TensorFlow is needed**. Nothing is imported from the ``musicnn`` package
(its modules import TensorFlow): its files are read through :mod:`importlib.resources` (the
package's ``__init__`` is empty). ``MTT_*`` models are left out on purpose: MagnaTagATune is
built from Magnatune audio, so on a Magnatune-derived collection they would have heard the
songs being judged.

**Input** (:func:`musicnn_log_mel`, as musicnn's ``extractor.batch_data`` with librosa 0.11):
the clip resampled to 16 kHz (soxr "HQ", librosa's ``soxr_hq``), a 512-point STFT (Hann,
centred, zero padding) with hop 256 (16 ms), its power on 96 Slaney mel bands (0–8 kHz), then
``log10(10000 · mel + 1)`` **in float32**. (musicnn's own code computes it on a float16
array: under numpy 2 ``10000 · mel`` overflows float16's 65 504 on loud bins and gives inf, and
the embeddings become near random.) The spectrogram is cut into consecutive, non-overlapping
patches of :data:`PATCH_FRAMES` = 187 frames (3 s); a remainder shorter than a patch is
dropped, as musicnn does (a 30 s clip gives 10 patches).

**Network** (:class:`MusiCNN`, per patch; TensorFlow's layer order and names in brackets):

- batch norm of the input (one channel) [``batch_normalization``];
- *timbral* front end: the input zero-padded by 3 frames in time, two 2-D convolutions with
  204 filters of 7 frames × 38 and × 67 mel bands ('valid'), ReLU, batch norm, max over
  frequency [``conv2d``, ``conv2d_1``; ``batch_normalization_1``–``_2``];
- *temporal* front end: 1-D (time-only) convolutions with 51 filters of 128, 64 and 32 frames
  on every mel band ('same': ``k − 1`` zeros split ``⌊(k−1)/2⌋`` before, the rest after, as
  TensorFlow pads even kernels), ReLU, batch norm, max over frequency [``conv2d_2``–``_4``;
  ``batch_normalization_3``–``_5``];
- the five front-end outputs concatenated: 561 channels per frame;
- mid end: a 7-frame convolution to 64 channels (zero-padded by 3), ReLU, batch norm, then
  two more 64 → 64 with residual connections [``conv2d_5``–``_7``; ``batch_normalization_6``–``_8``];
- the front-end and mid-end outputs concatenated (561 + 3 × 64 = 753 channels), max and mean
  over time, interleaved per channel as TensorFlow flattens them (1 506), batch norm, dense
  1 506 → 200 with ReLU, batch norm: **the penultimate layer** (200-d) [``batch_normalization_9``,
  ``dense``, ``batch_normalization_10``]; dense 200 → 50 and a sigmoid: the 50 tag
  probabilities [``dense_1``].

TensorFlow's batch-norm epsilon is 1e-3 (torch's default is 1e-5); its conv kernels are stored
``(height, width, in, out)`` and dense kernels ``(in, out)``. The port matches TensorFlow 2.21
running musicnn's own graph to 6.3e-6 on the penultimate layer and 5.8e-7 on the tag
probabilities (``tests/test_musicnn.py``; references made by
``tests/fixtures/make_musicnn_reference.py``).
"""

from __future__ import annotations

import ast
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from songsim.errors import MusicnnNotInstalledError

__all__ = [
    "EMBEDDING_DIM",
    "N_TAGS",
    "PATCH_FRAMES",
    "SR_HZ",
    "MusiCNN",
    "MusicnnNotInstalledError",
    "checkpoint_tensor_names",
    "embed_clip",
    "load_msd_musicnn",
    "msd_tags",
    "musicnn_checkpoint_prefix",
    "musicnn_log_mel",
    "musicnn_patches",
    "resample_to_16k",
    "single_threaded_torch",
    "weights_digest",
]

# --- input constants (musicnn/configuration.py) ---------------------------------------------
SR_HZ = 16_000  # sample rate the models were trained at
N_FFT = 512  # STFT size in samples (32 ms)
HOP_LENGTH = 256  # STFT hop in samples (16 ms)
N_MELS = 96  # mel bands, Slaney scale and normalisation, 0 Hz .. SR_HZ / 2
PATCH_FRAMES = 187  # frames per model input: 3 s (librosa.time_to_frames(3, ...) + 1)
LOG_SCALE = 10_000.0  # log10(LOG_SCALE * mel + 1)

# --- network constants (MSD_musicnn) ---------------------------------------------------------
TIMBRAL_FILTERS = 204  # int(1.6 * 128)
TIMBRAL_HEIGHTS = (38, 67)  # int(0.4 * 96), int(0.7 * 96) mel bands
TEMPORAL_FILTERS = 51  # int(1.6 * 32)
TEMPORAL_LENGTHS = (128, 64, 32)  # frames
MIDEND_FILTERS = 64
FRONTEND_CHANNELS = len(TIMBRAL_HEIGHTS) * TIMBRAL_FILTERS + len(TEMPORAL_LENGTHS) * TEMPORAL_FILTERS  # 561
MIDEND_CHANNELS = FRONTEND_CHANNELS + 3 * MIDEND_FILTERS  # 753
EMBEDDING_DIM = 200  # the penultimate layer
N_TAGS = 50
TF_BATCH_NORM_EPSILON = 1e-3  # tf.compat.v1.layers.batch_normalization's default

#: the model's folder inside the musicnn package
MODEL_FOLDER = "MSD_musicnn"


# ============================================================================================
# the package's files


def _package_root():
    """``importlib.resources.files("musicnn")``: imports only the package's empty ``__init__``."""
    import importlib.resources

    try:
        return importlib.resources.files("musicnn")
    except ModuleNotFoundError as error:
        raise MusicnnNotInstalledError(
            "The pretrained MusiCNN space needs the musicnn package's model files, which are not installed: "
            "pip install --no-deps -r requirements-models.txt (TensorFlow is not needed)."
        ) from error


def musicnn_checkpoint_prefix() -> Path:
    """The checkpoint prefix of ``MSD_musicnn``: the folder path with a trailing ``/`` (its
    files are ``.index`` and ``.data-00000-of-00001``; the ``checkpoint`` file beside them
    names its author's home folder and is ignored)."""
    folder = _package_root() / MODEL_FOLDER
    if not folder.is_dir():
        raise MusicnnNotInstalledError(
            f"{folder}: no {MODEL_FOLDER} model in the installed musicnn package; "
            "pip install --no-deps -r requirements-models.txt installs musicnn 0.1.0, which has it."
        )
    return Path(str(folder))


def weights_digest() -> str:
    """SHA-256 (first 16 hex digits) of the checkpoint's index: part of the feature cache
    key, so other weights never reuse cached embeddings."""
    prefix = musicnn_checkpoint_prefix()
    try:
        return hashlib.sha256((prefix / ".index").read_bytes()).hexdigest()[:16]
    except OSError as error:
        raise MusicnnNotInstalledError(
            f"{prefix / '.index'}: cannot read the MusiCNN checkpoint ({error.strerror or error}); "
            "pip install --no-deps --force-reinstall -r requirements-models.txt"
        ) from error


@lru_cache(maxsize=1)
def msd_tags() -> tuple[str, ...]:
    """The 50 MSD tag names in output order, read (as text, never imported) from
    ``musicnn/configuration.py``'s ``MSD_LABELS``."""
    path = _package_root() / "configuration.py"
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError) as error:
        raise MusicnnNotInstalledError(f"{path}: cannot read the MSD tag names ({error}); reinstall musicnn.") from error
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "MSD_LABELS" for t in node.targets):
            tags = tuple(str(tag) for tag in ast.literal_eval(node.value))
            if len(tags) != N_TAGS:
                break
            return tags
    raise MusicnnNotInstalledError(f"{path}: no list of {N_TAGS} MSD_LABELS in it; reinstall musicnn 0.1.0.")


# ============================================================================================
# input


@lru_cache(maxsize=2)
def _mel_basis() -> np.ndarray:
    import librosa  # deferred: slow to import

    return librosa.filters.mel(sr=SR_HZ, n_fft=N_FFT, n_mels=N_MELS, dtype=np.float32)


@lru_cache(maxsize=2)
def _hann() -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def resample_to_16k(clip: np.ndarray, *, sr_hz: int) -> np.ndarray:
    """``clip`` at 16 kHz: soxr "HQ", length ``ceil(n · 16000 / sr_hz)`` (``librosa.resample``
    with its defaults, i.e. what ``librosa.load(path, sr=16000)`` does to a file at ``sr_hz``).

    Returns
    -------
    np.ndarray [shape=(n_samples_16k,), dtype=float32]
    """
    import soxr

    clip = np.asarray(clip, dtype=np.float32)
    if int(sr_hz) == SR_HZ:
        return clip
    out = soxr.resample(clip, int(sr_hz), SR_HZ, quality="soxr_hq").astype(np.float32, copy=False)
    n_out = int(np.ceil(clip.size * SR_HZ / int(sr_hz)))
    if out.size > n_out:
        out = out[:n_out]
    elif out.size < n_out:
        out = np.pad(out, (0, n_out - out.size))
    return out


def musicnn_log_mel(clip: np.ndarray, *, sr_hz: int) -> np.ndarray:
    """MusiCNN's input spectrogram of ``clip``: time first, as the model reads it.

    The clip is resampled to 16 kHz (:func:`resample_to_16k`); then
    ``librosa.feature.melspectrogram(y, sr=16000, n_fft=512, hop_length=256, n_mels=96)``
    (power, Hann, centred with zero padding, Slaney mel) computed with ``scipy.fft``, and
    ``log10(10000 · mel + 1)`` in float32.

    Parameters
    ----------
    clip : np.ndarray [shape=(n_samples,)]
        Mono samples in full-scale units, e.g. from :func:`songsim.audio.load_clip`.
    sr_hz : int
        Sample rate of ``clip`` in hertz.

    Returns
    -------
    np.ndarray [shape=(n_frames, N_MELS), dtype=float32]
        ``n_frames = 1 + n_16k // 256`` (30 s -> 1 876); values ≥ 0 (0 = silence).
    """
    import scipy.fft

    audio = resample_to_16k(clip, sr_hz=sr_hz)
    if audio.ndim != 1 or audio.size == 0:
        raise ValueError(f"clip must be a non-empty 1-D array, got shape {np.shape(clip)}")
    padded = np.pad(audio, N_FFT // 2, mode="constant")
    if padded.size < N_FFT:
        padded = np.pad(padded, (0, N_FFT - padded.size))
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH]
    spectrum = scipy.fft.rfft(frames * _hann(), axis=1)
    power = (np.square(spectrum.real) + np.square(spectrum.imag)).astype(np.float32)  # (n_frames, 257)
    mel = power @ _mel_basis().T  # (n_frames, 96)
    return np.log10(np.float32(LOG_SCALE) * mel + np.float32(1.0)).astype(np.float32, copy=False)


def musicnn_patches(log_mel: np.ndarray) -> np.ndarray:
    """Consecutive non-overlapping :data:`PATCH_FRAMES`-frame patches of ``log_mel``
    (musicnn's ``batch_data`` with ``overlap = n_frames``); a spectrogram shorter than one
    patch is repeated to fill it (musicnn's training-time ``repeat-pad``).

    Parameters
    ----------
    log_mel : np.ndarray [shape=(n_frames, N_MELS)]

    Returns
    -------
    np.ndarray [shape=(max(1, n_frames // 187), 187, N_MELS), dtype=float32]
    """
    log_mel = np.asarray(log_mel, dtype=np.float32)
    n_frames = log_mel.shape[0]
    if n_frames == 0:
        raise ValueError("an empty spectrogram has no patches")
    if n_frames < PATCH_FRAMES:
        log_mel = np.tile(log_mel, (int(np.ceil(PATCH_FRAMES / n_frames)), 1))[:PATCH_FRAMES]
        n_frames = PATCH_FRAMES
    n_patches = n_frames // PATCH_FRAMES
    return np.ascontiguousarray(log_mel[: n_patches * PATCH_FRAMES].reshape(n_patches, PATCH_FRAMES, N_MELS))


# ============================================================================================
# the network


def _batch_norm(channels: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(channels, eps=TF_BATCH_NORM_EPSILON)


class MusiCNN(nn.Module):
    """The ``MSD_musicnn`` network (see the module docstring for its layers).

    Build it with :func:`load_msd_musicnn` (weights from the checkpoint, eval mode);
    ``MusiCNN()`` alone has untrained weights. Batch norms are stored as ``BatchNorm1d``
    over channels (the input's over its single channel).
    """

    def __init__(self) -> None:
        super().__init__()
        self.input_bn = _batch_norm(1)
        self.timbral = nn.ModuleList(nn.Conv2d(1, TIMBRAL_FILTERS, (7, h)) for h in TIMBRAL_HEIGHTS)
        self.timbral_bn = nn.ModuleList(_batch_norm(TIMBRAL_FILTERS) for _ in TIMBRAL_HEIGHTS)
        self.temporal = nn.ModuleList(nn.Conv1d(1, TEMPORAL_FILTERS, k) for k in TEMPORAL_LENGTHS)
        self.temporal_bn = nn.ModuleList(_batch_norm(TEMPORAL_FILTERS) for _ in TEMPORAL_LENGTHS)
        self.midend = nn.ModuleList(
            nn.Conv1d(c, MIDEND_FILTERS, 7) for c in (FRONTEND_CHANNELS, MIDEND_FILTERS, MIDEND_FILTERS)
        )
        self.midend_bn = nn.ModuleList(_batch_norm(MIDEND_FILTERS) for _ in range(3))
        self.pool_bn = _batch_norm(2 * MIDEND_CHANNELS)
        self.dense = nn.Linear(2 * MIDEND_CHANNELS, EMBEDDING_DIM)
        self.dense_bn = _batch_norm(EMBEDDING_DIM)
        self.output = nn.Linear(EMBEDDING_DIM, N_TAGS)

    @staticmethod
    def _affine(bn: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
        """Inference batch norm as ``x · scale + shift`` (the stored statistics, always)."""
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
        return scale, bn.bias - bn.running_mean * scale

    @classmethod
    def _bn(cls, bn: nn.BatchNorm1d, x: torch.Tensor, dim: int = 1) -> torch.Tensor:
        """Inference batch norm of ``x`` over its channel axis ``dim``."""
        scale, shift = cls._affine(bn)
        shape = [1] * x.dim()
        shape[dim] = -1
        return x * scale.view(shape) + shift.view(shape)

    @classmethod
    def _frontend_branch(cls, conv: nn.Module, bn: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
        """``max over frequency of BN(ReLU(conv(x) + bias))``, computed as
        ``BN(ReLU(s · max over frequency of conv_{s·w}(x) + bias))``.

        ``x`` is ``(B, 1, T', F)`` already padded; the result ``(B, C, T)``. ReLU and the
        per-channel affine batch norm are monotone, so the maximum can be taken first, on the
        raw convolution (over 50-96 times fewer values afterwards): where the batch norm's
        scale is negative it turns a maximum into a minimum, so those channels' kernels are
        negated (``s = -1``), their maximum taken and negated back. Negation is exact and
        rounding is monotone, so this gives the same float32 numbers as the layer-by-layer
        order (checked in ``tests/test_musicnn.py``), in about 40 % less time.
        """
        scale, shift = cls._affine(bn)
        sign = torch.where(scale >= 0, 1.0, -1.0).to(x.dtype)
        weight = conv.weight if conv.weight.dim() == 4 else conv.weight.unsqueeze(3)  # temporal: (C, 1, k, 1)
        peak = F.conv2d(x, weight * sign.view(-1, 1, 1, 1)).amax(dim=3)  # (B, C, T)
        pre = sign.view(1, -1, 1) * peak + conv.bias.view(1, -1, 1)
        return F.relu(pre) * scale.view(1, -1, 1) + shift.view(1, -1, 1)

    def forward(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed and tag log-mel patches.

        Parameters
        ----------
        patches : torch.Tensor [shape=(batch, n_frames, N_MELS), float32]
            :func:`musicnn_patches` (``n_frames`` = 187; any length ≥ 1 works).

        Returns
        -------
        penultimate : torch.Tensor [shape=(batch, 200)]
            The penultimate layer, after its batch norm.
        tags : torch.Tensor [shape=(batch, 50)]
            Tag probabilities in ``[0, 1]``, in :func:`msd_tags` order.
        """
        batch = patches.shape[0]
        x = self._bn(self.input_bn, patches.unsqueeze(1))  # (B, 1, T, F)
        padded = F.pad(x, (0, 0, 3, 3))  # 3 zero frames before and after ('valid' conv keeps T)
        front = [self._frontend_branch(conv, bn, padded) for conv, bn in zip(self.timbral, self.timbral_bn)]
        for conv, bn in zip(self.temporal, self.temporal_bn):
            k = conv.kernel_size[0]  # TensorFlow's 'same': (k - 1) // 2 zeros before, the rest after
            front.append(self._frontend_branch(conv, bn, F.pad(x, (0, 0, (k - 1) // 2, k - 1 - (k - 1) // 2))))
        front_end = torch.cat(front, dim=1)  # (B, 561, T): timbral 38, 67; temporal 128, 64, 32
        features = [front_end]
        h = front_end
        for i, (conv, bn) in enumerate(zip(self.midend, self.midend_bn)):
            y = self._bn(bn, F.relu(conv(F.pad(h, (3, 3)))))  # (B, 64, T)
            h = y if i == 0 else y + h  # residual connections after the first
            features.append(h)
        mid = torch.cat(features, dim=1)  # (B, 753, T)
        # max and mean over time, interleaved per channel as TensorFlow flattens (B, 753, 2)
        pooled = torch.stack([mid.amax(dim=2), mid.mean(dim=2)], dim=2).reshape(batch, 2 * MIDEND_CHANNELS)
        pooled = self._bn(self.pool_bn, pooled)
        penultimate = self._bn(self.dense_bn, F.relu(self.dense(pooled)))
        return penultimate, torch.sigmoid(self.output(penultimate))


def _state_dict_from_tf(tensors: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Map the checkpoint's TensorFlow variables onto :class:`MusiCNN`'s parameters."""
    state: dict[str, torch.Tensor] = {}

    def bn(target: str, index: int) -> None:
        source = "batch_normalization" + (f"_{index}" if index else "")
        for tf_name, torch_name in (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"), ("moving_variance", "running_var")):
            state[f"{target}.{torch_name}"] = torch.from_numpy(tensors[f"{source}/{tf_name}"].reshape(-1))
        state[f"{target}.num_batches_tracked"] = torch.tensor(0)

    def conv(target: str, index: int, *, one_d: bool) -> None:
        source = "conv2d" + (f"_{index}" if index else "")
        kernel = tensors[f"{source}/kernel"]  # (height = time, width = frequency, in, out)
        weight = kernel.transpose(3, 2, 0, 1)  # (out, in, time, frequency)
        if one_d:  # kernels spanning all of their input's width: Conv1d over time
            height, width, _, out = kernel.shape
            weight = kernel.transpose(3, 1, 0, 2).reshape(out, width, height) if width > 1 else weight[:, :, :, 0]
        state[f"{target}.weight"] = torch.from_numpy(np.ascontiguousarray(weight))
        state[f"{target}.bias"] = torch.from_numpy(tensors[f"{source}/bias"])

    bn("input_bn", 0)
    for i in range(2):
        conv(f"timbral.{i}", i, one_d=False)
        bn(f"timbral_bn.{i}", 1 + i)
    for i in range(3):
        conv(f"temporal.{i}", 2 + i, one_d=True)
        bn(f"temporal_bn.{i}", 3 + i)
    for i in range(3):
        conv(f"midend.{i}", 5 + i, one_d=True)
        bn(f"midend_bn.{i}", 6 + i)
    bn("pool_bn", 9)
    state["dense.weight"] = torch.from_numpy(np.ascontiguousarray(tensors["dense/kernel"].T))
    state["dense.bias"] = torch.from_numpy(tensors["dense/bias"])
    bn("dense_bn", 10)
    state["output.weight"] = torch.from_numpy(np.ascontiguousarray(tensors["dense_1/kernel"].T))
    state["output.bias"] = torch.from_numpy(tensors["dense_1/bias"])
    return state


def checkpoint_tensor_names() -> list[str]:
    """The 64 TensorFlow variables the network uses (the checkpoint also holds Adam state)."""
    names = []
    for i in range(11):
        source = "batch_normalization" + (f"_{i}" if i else "")
        names += [f"{source}/{n}" for n in ("beta", "gamma", "moving_mean", "moving_variance")]
    for i in range(8):
        source = "conv2d" + (f"_{i}" if i else "")
        names += [f"{source}/bias", f"{source}/kernel"]
    names += ["dense/bias", "dense/kernel", "dense_1/bias", "dense_1/kernel"]
    return sorted(names)


def load_msd_musicnn(device: str | torch.device | None = "cpu") -> MusiCNN:
    """:class:`MusiCNN` with the ``MSD_musicnn`` weights, in eval mode, on ``device``.

    Reads 792 079 float32 values (3.2 MB) from the installed musicnn package, each tensor
    checked against its CRC-32C (about 0.3 s).

    Raises
    ------
    MusicnnNotInstalledError
        musicnn is not installed (``pip install --no-deps -r requirements-models.txt``).
    songsim.models.tf_bundle.TensorBundleError
        The checkpoint is damaged or not the expected one.
    """
    from songsim.models.tf_bundle import TensorBundle, TensorBundleError

    prefix = musicnn_checkpoint_prefix()
    bundle = TensorBundle(str(prefix) + "/")
    tensors = bundle.read(checkpoint_tensor_names())
    model = MusiCNN()
    try:
        model.load_state_dict(_state_dict_from_tf(tensors), strict=True)
    except (RuntimeError, KeyError, ValueError) as error:
        raise TensorBundleError(
            f"{bundle.index_path}: its tensors do not fit MSD_musicnn's layers ({error}); "
            "reinstall musicnn 0.1.0: pip install --no-deps --force-reinstall -r requirements-models.txt"
        ) from error
    model.eval()
    model.requires_grad_(False)
    return model.to(device if device is not None else "cpu")


# ============================================================================================
# determinism

_TORCH_LOCK = threading.RLock()


@contextmanager
def single_threaded_torch() -> Iterator[None]:
    """Run the block with one intra-op torch thread (restored after) and full float32 on
    CUDA (no TF32): the same numbers in every process, whatever its thread count. The
    setting is process-wide, so blocks in one process are serialised by a lock."""
    with _TORCH_LOCK:
        threads = torch.get_num_threads()
        cudnn_tf32 = torch.backends.cudnn.allow_tf32
        torch.set_num_threads(1)
        cudnn_deterministic = torch.backends.cudnn.deterministic
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.deterministic = True
        try:
            yield
        finally:
            torch.set_num_threads(threads)
            torch.backends.cudnn.allow_tf32 = cudnn_tf32
            torch.backends.cudnn.deterministic = cudnn_deterministic


# ============================================================================================
# one clip


@lru_cache(maxsize=4)
def _process_model(device: str) -> MusiCNN:
    """The model on ``device``, loaded once per process (a pool or Dask worker reads the
    checkpoint on its first clip only). Never mutated: callers only run it."""
    return load_msd_musicnn(device)


def embed_clip(
    clip: np.ndarray, *, sr_hz: int, device: str | torch.device | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Embed and tag one clip: the mean over its patches of the penultimate layer and of the
    tag probabilities.

    All of the clip's patches go through the network as one batch, with one torch thread
    (:func:`single_threaded_torch`), so a clip gives the same numbers in every process.

    Parameters
    ----------
    clip : np.ndarray [shape=(n_samples,)]
        Mono samples in full-scale units (e.g. songsim's 30 s excerpt at 22 050 Hz).
    sr_hz : int
        Sample rate of ``clip`` in hertz.
    device : str or torch.device, optional
        Default :func:`songsim.train.choose_device` (CUDA, else MPS, else CPU).

    Returns
    -------
    embedding : np.ndarray [shape=(200,), dtype=float32]
    tags : np.ndarray [shape=(50,), dtype=float32]
        In :func:`msd_tags` order.
    """
    if device is None:
        from songsim.train import choose_device

        device = choose_device()
    model = _process_model(str(device))
    patches = torch.from_numpy(musicnn_patches(musicnn_log_mel(clip, sr_hz=sr_hz)))
    with single_threaded_torch(), torch.no_grad():
        penultimate, tags = model(patches.to(device))
    penultimate, tags = penultimate.cpu().numpy(), tags.cpu().numpy()
    return penultimate.mean(axis=0, dtype=np.float32), tags.mean(axis=0, dtype=np.float32)
