"""The torch port of MusiCNN (``MSD_musicnn``) against TensorFlow, and the checkpoint reader.

The references (``tests/fixtures/musicnn_reference.npz``) were made by TensorFlow running
musicnn 0.1.0's own graph on the clips of ``tests/fixtures/musicnn_clips.py``
(``tests/fixtures/make_musicnn_reference.py``, not run here: no TensorFlow in this project).
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from songsim.models import musicnn as mn
from songsim.models.tf_bundle import (
    TensorBundle,
    TensorBundleError,
    crc32c,
    read_bundle,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
from musicnn_clips import SR_HZ, make_clips  # noqa: E402

PENULTIMATE_TOLERANCE = 1e-4  # max abs difference to TensorFlow (values up to about 3.4)
TAGS_TOLERANCE = 1e-5  # probabilities
MEL_TOLERANCE = 5e-5  # log10(10000 mel + 1), values up to about 6


@pytest.fixture(scope="module")
def reference():
    with np.load(FIXTURES / "musicnn_reference.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def model():
    return mn.load_msd_musicnn()


@pytest.fixture(scope="module")
def clips():
    return make_clips()


def _run(model, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad(), mn.single_threaded_torch():
        penultimate, tags = model(torch.from_numpy(np.ascontiguousarray(patches)))
    return penultimate.numpy(), tags.numpy()


# --------------------------------------------------------------------------------------------
# the checkpoint reader


def test_crc32c_known_value():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0


def test_the_bundle_reader_reads_what_tensorflow_reads_bit_for_bit(reference):
    prefix = str(mn.musicnn_checkpoint_prefix()) + "/"
    bundle = TensorBundle(prefix)
    assert bundle.n_shards == 1 and len(bundle.names()) == 150  # the network's 64 + Adam state + 2 scalars
    names = [str(n) for n in reference["bundle/names"]]
    assert names == mn.checkpoint_tensor_names()
    values = bundle.read(names)
    for name, digest in zip(names, reference["bundle/sha256"]):
        assert values[name].dtype == np.float32
        assert hashlib.sha256(np.ascontiguousarray(values[name]).tobytes()).hexdigest() == str(digest), name
    assert sum(v.size for v in values.values()) == 792_079
    assert values["conv2d/kernel"].shape == (7, 38, 1, 204) and values["dense/kernel"].shape == (1506, 200)
    np.testing.assert_array_equal(values["conv2d/kernel"][:2, :3, 0, :4], reference["bundle/conv2d_kernel_corner"])
    np.testing.assert_array_equal(values["dense_1/bias"], reference["bundle/dense_1_bias"])
    np.testing.assert_array_equal(
        values["batch_normalization/moving_variance"], reference["bundle/batch_normalization_moving_variance"]
    )


def _copy_checkpoint(tmp_path: Path) -> str:
    source = mn.musicnn_checkpoint_prefix()
    target = tmp_path / "ckpt"
    target.mkdir()
    for name in (".index", ".data-00000-of-00001"):
        shutil.copy(source / name, target / name)
    return str(target) + "/"


def test_a_missing_checkpoint_names_the_file_and_the_fix(tmp_path):
    with pytest.raises(TensorBundleError, match=r"nothing\.index: cannot read.*requirements-models\.txt"):
        TensorBundle(tmp_path / "nothing")


def test_a_damaged_index_is_refused(tmp_path):
    prefix = _copy_checkpoint(tmp_path)
    index = Path(prefix + ".index")
    data = bytearray(index.read_bytes())
    index.write_bytes(bytes(data[:-10]))  # truncated: no magic number
    with pytest.raises(TensorBundleError, match="magic number"):
        TensorBundle(prefix)
    data[100] ^= 0xFF  # one flipped byte inside a block
    index.write_bytes(bytes(data))
    with pytest.raises(TensorBundleError, match="CRC-32C"):
        TensorBundle(prefix)
    index.write_bytes(b"")
    with pytest.raises(TensorBundleError, match="shorter than an SSTable footer"):
        TensorBundle(prefix)


def test_damaged_or_truncated_data_is_refused(tmp_path):
    prefix = _copy_checkpoint(tmp_path)
    data_path = Path(prefix + ".data-00000-of-00001")
    data = bytearray(data_path.read_bytes())
    entry = TensorBundle(prefix).entries["dense/kernel"]
    data[entry.offset + 17] ^= 0x01
    data_path.write_bytes(bytes(data))
    with pytest.raises(TensorBundleError, match="'dense/kernel' fails its CRC-32C check"):
        read_bundle(prefix, ["dense/kernel"])
    assert read_bundle(prefix, ["dense/bias"])["dense/bias"].shape == (200,)  # the others still read
    data_path.write_bytes(bytes(data[: entry.offset]))
    with pytest.raises(TensorBundleError, match="past the end.*truncated"):
        read_bundle(prefix, ["dense/kernel"])
    with pytest.raises(TensorBundleError, match="no tensor 'nope'"):
        read_bundle(prefix, ["nope"])
    data_path.unlink()
    with pytest.raises(TensorBundleError, match="cannot read the checkpoint data"):
        read_bundle(prefix, ["dense/bias"])


def test_without_the_musicnn_package_the_error_says_what_to_install(monkeypatch):
    import importlib.resources

    def missing(name):
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr(importlib.resources, "files", missing)
    with pytest.raises(mn.MusicnnNotInstalledError, match=r"pip install --no-deps -r requirements-models\.txt"):
        mn.musicnn_checkpoint_prefix()


def test_nothing_imports_tensorflow_or_the_musicnn_modules(model):
    assert "tensorflow" not in sys.modules
    assert not any(name.startswith("musicnn.") for name in sys.modules)  # only the empty package itself


# --------------------------------------------------------------------------------------------
# the input pipeline


def test_the_tags_are_the_50_msd_tags():
    tags = mn.msd_tags()
    assert len(tags) == 50 and tags[:3] == ("rock", "pop", "alternative") and tags[-1] == "happy"


def test_the_log_mel_patches_match_musicnns_in_float32(reference, clips):
    for name, clip in clips.items():
        patches = mn.musicnn_patches(mn.musicnn_log_mel(clip, sr_hz=SR_HZ))
        expected = reference[f"{name}/patches"]
        assert patches.shape == expected.shape and patches.dtype == np.float32, name
        assert np.abs(patches - expected).max() <= MEL_TOLERANCE, name
        # musicnn's float16 log overflows on these loud clips; the float32 one never does
        assert int(reference[f"{name}/n_inf_float16"]) > 0 and np.isfinite(patches).all()


def test_patching_follows_musicnn():
    thirty_s = np.random.default_rng(0).standard_normal(30 * 22_050).astype(np.float32) * 0.1
    log_mel = mn.musicnn_log_mel(thirty_s, sr_hz=22_050)
    assert log_mel.shape == (1 + 30 * 16_000 // 256, 96)  # 1 876 frames
    assert mn.musicnn_patches(log_mel).shape == (10, 187, 96)  # the remainder of 6 frames is dropped
    short = mn.musicnn_patches(log_mel[:100])  # shorter than one patch: repeated to fill it
    assert short.shape == (1, 187, 96)
    np.testing.assert_array_equal(short[0, 100:187], log_mel[:87])
    assert mn.resample_to_16k(thirty_s, sr_hz=22_050).shape == (480_000,)


# --------------------------------------------------------------------------------------------
# the network


def test_the_port_matches_tensorflow_on_tensorflows_input(reference, model):
    for name in map(str, reference["clips"]):
        penultimate, tags = _run(model, reference[f"{name}/patches"])
        assert penultimate.shape == (reference[f"{name}/patches"].shape[0], 200) and tags.shape[1] == 50
        assert np.abs(penultimate - reference[f"{name}/penultimate"]).max() <= PENULTIMATE_TOLERANCE, name
        assert np.abs(tags - reference[f"{name}/tags"]).max() <= TAGS_TOLERANCE, name


def test_the_port_matches_tensorflow_from_the_decoded_clip(reference, model, clips):
    for name, clip in clips.items():
        penultimate, tags = _run(model, mn.musicnn_patches(mn.musicnn_log_mel(clip, sr_hz=SR_HZ)))
        assert np.abs(penultimate - reference[f"{name}/penultimate"]).max() <= PENULTIMATE_TOLERANCE, name
        assert np.abs(tags - reference[f"{name}/tags"]).max() <= TAGS_TOLERANCE, name


def _layer_by_layer(model: mn.MusiCNN, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """musicnn's graph in TensorFlow's order, one layer at a time (conv + bias, ReLU, batch
    norm, then max over frequency), to check the reordered front end of ``MusiCNN.forward``."""
    bn = model._bn
    batch, n_frames, n_mels = patches.shape
    x = bn(model.input_bn, patches.unsqueeze(1))
    padded = F.pad(x, (0, 0, 3, 3))
    front = [bn(b, F.relu(conv(padded))).amax(dim=3) for conv, b in zip(model.timbral, model.timbral_bn)]
    bands = x.permute(0, 3, 1, 2).reshape(batch * n_mels, 1, n_frames)
    for conv, b in zip(model.temporal, model.temporal_bn):
        k = conv.kernel_size[0]
        y = F.relu(conv(F.pad(bands, ((k - 1) // 2, k // 2))))
        front.append(bn(b, y.view(batch, n_mels, -1, n_frames), dim=2).amax(dim=1))
    h = torch.cat(front, dim=1)
    features = [h]
    for i, (conv, b) in enumerate(zip(model.midend, model.midend_bn)):
        y = bn(b, F.relu(conv(F.pad(h, (3, 3)))))
        h = y if i == 0 else y + h
        features.append(h)
    mid = torch.cat(features, dim=1)
    pooled = bn(model.pool_bn, torch.stack([mid.amax(dim=2), mid.mean(dim=2)], dim=2).reshape(batch, -1))
    penultimate = bn(model.dense_bn, F.relu(model.dense(pooled)))
    return penultimate, torch.sigmoid(model.output(penultimate))


def test_pooling_before_the_batch_norm_changes_nothing(reference, model):
    patches = torch.from_numpy(np.concatenate([reference[f"{n}/patches"] for n in map(str, reference["clips"])]))
    with torch.no_grad(), mn.single_threaded_torch():
        fast = model(patches)
        slow = _layer_by_layer(model, patches)
    for a, b in zip(fast, slow):
        assert torch.allclose(a, b, rtol=0, atol=1e-6)


def test_the_model_is_in_eval_mode_and_frozen(model):
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert model.input_bn.eps == 1e-3 and model.dense_bn.eps == 1e-3
    assert sum(p.numel() for p in model.parameters()) + sum(
        b.numel() for name, b in model.named_buffers() if not name.endswith("num_batches_tracked")
    ) == 792_079


def test_single_threaded_torch_restores_the_thread_count():
    before = torch.get_num_threads()
    with mn.single_threaded_torch():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
