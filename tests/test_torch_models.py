"""songsim.models: tensor shapes, and the triplet losses on hand-computed cases."""

import pytest
import torch
from torch.nn import functional as F

from songsim.models import (
    AutoencoderConfig,
    CNNConfig,
    DenseAutoencoder,
    EmbeddingNet,
    EmbeddingNetConfig,
    MelCNN,
    batch_triplet_loss,
    triplet_margin_loss,
)
from songsim.models.metric import pairwise_distances


def test_mel_cnn_shapes_for_crops_and_longer_clips():
    model = MelCNN(CNNConfig(n_classes=(4, 8), channels=(8, 16, 32), embedding_dim=24)).eval()
    crops = torch.randn(3, 64, 128) * 10 - 40
    assert model.embed(crops).shape == (3, 24)
    logits = model(crops)
    assert [tuple(t.shape) for t in logits] == [(3, 4), (3, 8)]
    assert model.embed(torch.randn(2, 64, 300)).shape == (2, 24)  # fully convolutional
    assert (model.embed(crops) >= 0).all()  # after a ReLU


def test_mel_cnn_input_stats_are_buffers_in_the_state_dict():
    model = MelCNN(CNNConfig())
    model.set_input_stats(torch.full((64,), -40.0), torch.full((64,), 0.0))
    state = model.state_dict()
    assert torch.equal(state["band_mean"], torch.full((64,), -40.0))
    assert state["band_std"].min() > 0  # clamped: no division by zero


def test_autoencoder_shapes_and_mirrored_decoder():
    model = DenseAutoencoder(AutoencoderConfig(input_dim=523, hidden=(248, 128), code_dim=64))
    x = torch.randn(5, 523)
    reconstruction, code = model(x)
    assert reconstruction.shape == (5, 523) and code.shape == (5, 64)
    assert torch.equal(model.encode(x), code)
    widths = [m.out_features for m in model.encoder if isinstance(m, torch.nn.Linear)]
    assert widths == [248, 128, 64]
    assert [m.out_features for m in model.decoder if isinstance(m, torch.nn.Linear)] == [128, 248, 523]


def test_embedding_net_gives_unit_vectors():
    net = EmbeddingNet(EmbeddingNetConfig(input_dim=10, hidden=(16,), output_dim=4)).eval()
    out = net(torch.randn(7, 10))
    assert out.shape == (7, 4)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(7))


def test_triplet_margin_loss_by_hand_and_against_torch():
    anchor = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    positive = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    negative = torch.tensor([[2.0, 0.0], [1.2, 0.0]])
    # d_ap = 1; d_an = 2 -> max(1 - 2 + 0.5, 0) = 0; d_an = 1.2 -> 0.3; mean 0.15
    loss = triplet_margin_loss(anchor, positive, negative, margin=0.5)
    assert loss.item() == pytest.approx(0.15, abs=1e-6)
    reference = F.triplet_margin_loss(anchor, positive, negative, margin=0.5, eps=0.0)
    assert loss.item() == pytest.approx(reference.item(), abs=1e-6)


# four songs on a line: x = 0, 1, 1.5, 3; labels a, a, b, b; margin 1
POINTS = torch.tensor([[0.0], [1.0], [1.5], [3.0]])
LABELS = torch.tensor([0, 0, 1, 1])


def test_pairwise_distances():
    expected = torch.tensor([[0, 1, 1.5, 3], [1, 0, 0.5, 2], [1.5, 0.5, 0, 1.5], [3, 2, 1.5, 0]])
    torch.testing.assert_close(pairwise_distances(POINTS), expected)


def test_batch_hard_triplet_loss_by_hand():
    # anchor: hardest positive, closest negative -> max(d_ap - d_an + 1, 0)
    # 0: 1 - 1.5 + 1 = 0.5 · 1: 1 - 0.5 + 1 = 1.5 · 2: 1.5 - 0.5 + 1 = 2 · 3: 1.5 - 2 + 1 = 0.5
    loss = batch_triplet_loss(POINTS, LABELS, margin=1.0, mining="hard")
    assert loss.item() == pytest.approx((0.5 + 1.5 + 2.0 + 0.5) / 4)


def test_semi_hard_triplet_loss_by_hand():
    # (a, p) pairs: the closest negative farther than p, else the farthest negative
    # (0,1): d_ap 1, beyond: 1.5 -> 0.5 · (1,0): d_ap 1, beyond: 2 -> 0
    # (2,3): d_ap 1.5, none beyond (1.5 is not > 1.5) -> farthest 1.5 -> 1 · (3,2): 1.5, beyond 2 -> 0.5
    loss = batch_triplet_loss(POINTS, LABELS, margin=1.0, mining="semi-hard")
    assert loss.item() == pytest.approx((0.5 + 0.0 + 1.0 + 0.5) / 4)


@pytest.mark.parametrize("labels", [torch.tensor([0, 0, 0, 0]), torch.tensor([0, 1, 2, 3])])
def test_triplet_loss_without_valid_triplets_is_zero_and_differentiable(labels):
    points = POINTS.clone().requires_grad_(True)
    loss = batch_triplet_loss(points, labels, margin=1.0)
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(points.grad).all()


def test_triplet_loss_gradient_is_finite_for_identical_rows():
    points = torch.zeros(4, 3, requires_grad=True)
    batch_triplet_loss(points, LABELS, margin=0.2, mining="hard").backward()
    assert torch.isfinite(points.grad).all()


def test_unknown_mining_is_refused():
    with pytest.raises(ValueError, match="mining"):
        batch_triplet_loss(POINTS, LABELS, margin=1.0, mining="easy")
