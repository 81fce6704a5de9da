"""Edge-oriented blocks fold into one 3x3 conv that gives the same output, borders included."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from vsr.models.catalogue import get_spec, new_network  # noqa: E402
from vsr.models.ecb import EdgeConvBlock, fold_edge_blocks  # noqa: E402


def _randomise(net: torch.nn.Module) -> None:
    """Every parameter random and of order 1 (the init keeps the edge branches near zero)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)


@pytest.mark.parametrize(("cin", "cout"), [(1, 16), (16, 16), (16, 4)])
def test_one_block_folds_exactly(cin, cout):
    block = EdgeConvBlock(cin, cout)
    _randomise(block)
    x = torch.rand(2, cin, 11, 17)
    with torch.no_grad():
        want = block(x)
        got = block.fold()(x)
    assert got.shape == want.shape == (2, cout, 11, 17)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # the edge branches really contribute: the plain 3x3 branch alone is far from the block
    assert (block.conv3(x) - want).abs().max() > 0.1


def test_training_net_folds_into_the_catalogue_network():
    spec = get_spec("fast-x2")
    train_net = new_network(spec.arch, spec.scale, training=True)
    _randomise(train_net)
    x = torch.rand(1, 1, 20, 24)
    with torch.no_grad():
        want = train_net(x)
        shipped = new_network(spec.arch, spec.scale)
        shipped.load_state_dict(fold_edge_blocks(train_net).state_dict())  # same keys, plain convs
        got = shipped(x)
    assert got.shape == (1, 1, 40, 48)
    # float32 sums in another order through six layers: equal to ~1e-6 of the output's range
    assert (got - want).abs().max() <= 1e-5 * want.abs().max()
    assert not any(isinstance(m, EdgeConvBlock) for m in train_net.modules())
