"""Sparse simulated rows: the projector's first layer is exact without dense rows."""
import numpy as np
import pytest
import torch

from tasu.config import SimulationConfig
from tasu.projector import LinearSiLUProjector
from tasu.simulate import PosteriorSimulator
from tasu.sparse import SparseRows, sparse_layernorm_linear

V = 300


def simulator(**kw):
    units = [f"u{i}" for i in range(V - 2)] + ["<wb>", "<blank>"]
    active = list(range(5, 250))
    return PosteriorSimulator(V, active, units, V - 2, SimulationConfig(**kw))


@pytest.mark.parametrize("competitors", [0, 1, 3])
def test_sparse_rows_equal_the_dense_rows(competitors):
    sim = simulator(competitors=competitors, true_competitor=0.5, sub_smooth_min=0.3, sub_smooth_max=0.6)
    ids = list(np.random.default_rng(0).choice(np.arange(5, 250), size=80))
    # competitors collide with the unit itself now and then: the merge must add them up
    rows = sim.sparse(ids, np.random.default_rng(1))
    dense = sim.rows(ids, np.random.default_rng(1))
    np.testing.assert_allclose(rows.dense().numpy(), dense, atol=1e-7)
    np.testing.assert_allclose(dense.sum(1), 1.0, atol=1e-5)
    assert list(dense.argmax(1)) == ids or competitors > 0
    assert (dense[:, 250:] == 0).all() and (dense[:, :5] == 0).all()  # inactive units get nothing


def test_sparse_first_layer_and_gradients_match_the_dense_path():
    torch.manual_seed(0)
    proj = LinearSiLUProjector(V, 24, hidden=40)
    with torch.no_grad():  # a LayerNorm with non-trivial affine parameters
        proj.net[0].weight.uniform_(0.5, 1.5)
        proj.net[0].bias.uniform_(-0.1, 0.1)
    sim = simulator(competitors=2)
    rng = np.random.default_rng(3)
    feats = [sim(list(rng.choice(np.arange(5, 250), size=n)), rng, sparse=True) for n in (7, 20, 1)]
    for x in feats:
        d = x.dense()
        ref = proj(d)
        out = proj(x)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
        g_ref = torch.autograd.grad(ref.square().sum(), list(proj.parameters()))
        g_out = torch.autograd.grad(out.square().sum(), list(proj.parameters()))
        for a, b in zip(g_out, g_ref):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_hand_made_rows_and_shape_errors():
    x = SparseRows.from_numpy(np.array([[2, 2, -1], [0, 3, 1]]), np.array([[0.5, 0.25, 0.9], [1.0, 1.0, 0.0]]),
                              np.array([0.0, 0.5]), np.array([0, 1, 2]), 4)
    # row 0: id 2 twice (merged, 0.75), a padded slot, no floor; row 1: floor 0.5 on units 0-2
    expected = [[0, 0, 1, 0], [1.5 / 3.5, 0.5 / 3.5, 0.5 / 3.5, 1 / 3.5]]
    np.testing.assert_allclose(x.dense().numpy(), expected, atol=1e-6)
    assert x.ids.tolist()[0] == [2, -1, -1]
    with pytest.raises(ValueError, match="sparse rows over 4 units"):
        sparse_layernorm_linear(x, torch.nn.LayerNorm(5), torch.nn.Linear(5, 2))


def test_speech_llm_loss_is_the_same_for_sparse_and_dense_batches():
    from test_model import V as TV
    from test_model import tiny_model

    m, _ = tiny_model()
    units = [f"u{i}" for i in range(TV - 2)] + ["<wb>", "<blank>"]
    sim = PosteriorSimulator(TV, range(TV - 2), units, TV - 2, SimulationConfig(competitors=2))
    rng = np.random.default_rng(5)
    sparse = [sim(list(rng.integers(0, TV - 2, size=n)), rng, sparse=True) for n in (6, 3, 9)]
    answers = [[7, 8, 2], [9, 2], [5, 6, 7, 2]]
    loss_s, n_s = m(sparse, answers)
    loss_d, n_d = m([x.dense() for x in sparse], answers)
    assert n_s == n_d == 9
    torch.testing.assert_close(loss_s, loss_d, atol=1e-5, rtol=1e-5)


def test_unit_linear_equals_linear_and_loads_its_state_dict():
    from tasu.sparse import UnitLinear, upgrade_optimizer_state, upgrade_state_dict

    torch.manual_seed(0)
    ref = torch.nn.Linear(7, 5)
    torch.manual_seed(0)
    lin = UnitLinear(7, 5)                       # same initial values as nn.Linear
    torch.testing.assert_close(lin.weight, ref.weight, rtol=0, atol=0)
    assert lin.table.shape == (7, 5) and lin.table.is_contiguous()
    x = torch.randn(3, 7)
    torch.testing.assert_close(lin(x), ref(x))
    # weights saved from an nn.Linear (the layout before UnitLinear) load, transposed
    with torch.no_grad():
        ref.weight.mul_(2.0)
    fresh = UnitLinear(7, 5)
    fresh.load_state_dict(ref.state_dict())
    torch.testing.assert_close(fresh(x), ref(x))
    seq = torch.nn.Sequential(torch.nn.LayerNorm(7), UnitLinear(7, 5))
    up = upgrade_state_dict({"0.weight": torch.ones(7), "1.weight": ref.weight, "1.bias": ref.bias}, seq)
    assert set(up) == {"0.weight", "1.table", "1.bias"} and up["1.table"].shape == (7, 5)
    with pytest.raises(ValueError, match=r"1.weight has shape \(4, 7\)"):
        seq.load_state_dict({"0.weight": torch.ones(7), "0.bias": torch.zeros(7),
                             "1.weight": torch.zeros(4, 7), "1.bias": torch.zeros(5)})
    # Adam moments saved for the [H, V] weight are transposed to the table's layout, and only
    # when the checkpoint's weights are in the old layout (a square table stays as it is)
    opt = torch.optim.Adam(fresh.parameters())
    moments = {"exp_avg": torch.zeros(5, 7), "exp_avg_sq": torch.zeros(5, 7), "step": torch.tensor(3.0)}
    opt.state[fresh.table] = dict(moments)
    assert upgrade_optimizer_state(opt, {"table": torch.zeros(7, 5)}, fresh) == 0
    assert upgrade_optimizer_state(opt, ref.state_dict(), fresh) == 2
    assert opt.state[fresh.table]["exp_avg"].shape == (7, 5)


def test_sparse_first_layer_with_plain_linear_and_no_affine_matches_dense():
    """The nn.Linear layout (read through its transpose), no LayerNorm affine, no bias."""
    torch.manual_seed(1)
    norm, lin = torch.nn.LayerNorm(V, elementwise_affine=False), torch.nn.Linear(V, 16, bias=False)
    rng = np.random.default_rng(5)
    x = simulator(competitors=1)(list(rng.choice(np.arange(5, 250), size=12)), rng, sparse=True)
    ref = lin(norm(x.dense()))
    out = sparse_layernorm_linear(x, norm, lin)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    g_ref, = torch.autograd.grad((ref * torch.arange(16.0)).sum(), [lin.weight])
    g_out, = torch.autograd.grad((out * torch.arange(16.0)).sum(), [lin.weight])
    torch.testing.assert_close(g_out, g_ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kind,opts", [("cross_attention", {"heads": 2}), ("lego", {"mapping": "lowrank", "rank": 8}),
                                       ("lego", {"mapping": "shared", "token_ids": list(range(V - 1)) + [-1]})])
def test_embedding_projectors_take_sparse_rows(kind, opts):
    """cross_attention and lego give the same output and gradients from SparseRows as from dense rows."""
    from tasu.projector import build_projector

    torch.manual_seed(0)
    proj = build_projector(kind, V, 12, embedding=torch.randn(V + 20, 12), **opts)
    assert proj.accepts_sparse
    rng = np.random.default_rng(4)
    x = simulator(competitors=2)(list(rng.choice(np.arange(5, 250), size=9)), rng, sparse=True)
    ref, out = proj(x.dense()), proj(x)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    params = [p for p in proj.parameters() if p.requires_grad]
    g_ref = torch.autograd.grad(ref.square().sum(), params, allow_unused=True)
    g_out = torch.autograd.grad(out.square().sum(), params, allow_unused=True)
    for a, b in zip(g_out, g_ref):
        if b is not None:
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_blocked_rows_times_table_equals_the_product():
    from tasu.sparse import rows_times_table

    g = torch.Generator().manual_seed(0)
    S, T = torch.randn(2, 1000, generator=g), torch.randn(1000, 33, generator=g)
    for block in (7, 128, 1000):   # uneven last block, several blocks, one plain product
        torch.testing.assert_close(rows_times_table(S, T, block=block), S @ T, atol=1e-4, rtol=1e-5)
