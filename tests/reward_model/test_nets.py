import torch

from prefrl.reward_model.nets import EnsembleMLP


def test_members_are_independent_mlps():
    torch.manual_seed(0)
    net = EnsembleMLP(num_members=3, in_dim=5, hidden_sizes=(8,))
    x = torch.randn(7, 5)
    out = net(x)
    assert out.shape == (3, 7)
    for e in range(3):  # member e is a plain MLP with its own slice of the weights
        h = torch.nn.functional.leaky_relu(x @ net.hidden[0].weight[e] + net.hidden[0].bias[e], 0.01)
        torch.testing.assert_close(out[e], (h @ net.out.weight[e] + net.out.bias[e]).squeeze(-1))
    assert not torch.allclose(out[0], out[1])  # independently initialised


def test_per_member_inputs_and_gradients_stay_in_their_member():
    net = EnsembleMLP(num_members=2, in_dim=3)
    x = torch.randn(2, 4, 3)
    out = net(x)
    torch.testing.assert_close(out[1], net(x[1])[1])
    out[0].sum().backward()
    assert net.out.weight.grad[1].abs().sum() == 0 and net.out.weight.grad[0].abs().sum() > 0
    assert net.weight_norms().shape == (2,)
