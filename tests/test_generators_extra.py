"""node and linear generators: the dynamics they integrate, checked where the answer is exact."""

import torch

from dsid.registry import GENERATORS


def test_node_rk4_matches_the_exact_flow_of_a_linear_field():
    torch.manual_seed(0)
    gen = GENERATORS.build(
        {
            "name": "node",
            "n_layers": 0,
            "dt": 0.5,
            "substeps": 8,
            "dropout": 0.0,
            "hidden_size": 3,
            "clip": 100.0,
        },
        ic_size=2,
        co_size=0,
        factor_size=2,
    )
    lin = gen.field.net[0]  # n_layers=0: dz/dt = W z + b
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[-0.2, 1.0, 0.0], [-1.0, -0.2, 0.0], [0.0, 0.0, -0.5]]))
        lin.bias.zero_()
    state = gen.initial_state(torch.randn(4, 2))
    z0 = state["g"]
    for _ in range(5):
        state, _ = gen.step(state)
    exact = z0 @ torch.linalg.matrix_exp(lin.weight * 0.5 * 5).T
    torch.testing.assert_close(state["g"], exact, rtol=1e-5, atol=1e-5)


def test_linear_generator_without_inputs_is_a_matrix_power():
    torch.manual_seed(0)
    gen = GENERATORS.build(
        {"name": "linear", "dropout": 0.0, "hidden_size": 5, "clip": 100.0},
        ic_size=3,
        co_size=0,
        factor_size=4,
    )
    ic = torch.randn(2, 3)
    out = gen(ic, n_steps=6)
    z = gen.ic_to_state(ic)
    A, b = gen.dynamics.weight, gen.dynamics.bias
    for _ in range(6):
        z = z @ A.T + b
    torch.testing.assert_close(out.states[:, -1], z)
    assert torch.linalg.eigvals(A).abs().max() < 1.0  # starts stable
    assert gen.recurrent_weights() == []  # no inputs, no controller: nothing to shrink


def test_step_api_matches_forward_and_forward_prediction_gets_no_input():
    for name in ("node", "linear"):
        torch.manual_seed(0)
        gen = GENERATORS.build(
            {"name": name, "dropout": 0.0},
            ic_size=3,
            co_size=2,
            factor_size=4,
            ci_input_size=5,
            ext_input_size=1,
        )
        ic, ci, ext = torch.randn(2, 3), torch.randn(2, 6, 5), torch.randn(2, 6, 1)
        out = gen(ic, ci=ci, ext=ext, n_steps=8, sample=False)
        state, fs = gen.initial_state(ic), []
        for t in range(8):
            state, o = gen.step(
                state, ci[:, t] if t < 6 else None, ext[:, t] if t < 6 else None, sample=False
            )
            fs.append(o["f"])
        torch.testing.assert_close(out.factors, torch.stack(fs, 1))
        assert torch.all(out.co_mean[:, 6:] == 0)  # past the data: the prior mean
