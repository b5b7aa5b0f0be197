"""Gated PixelCNN checked against the paper (van den Oord et al. 2016, Figure 2), property by property."""

import torch

from pixelcnn.models import PixelCNNConfig, build_model
from pixelcnn.models.gated import GatedLayer
from pixelcnn.models.layers import gate

CONFIG = PixelCNNConfig(kind="gated", hidden=8, n_blocks=3, image_size=10)


def test_the_gate_is_tanh_of_one_half_times_sigmoid_of_the_other():
    x = torch.randn(2, 6, 3, 3)
    assert torch.allclose(gate(x), torch.tanh(x[:, :3]) * torch.sigmoid(x[:, 3:]))


def test_the_vertical_stack_sees_only_the_rows_above():
    torch.manual_seed(0)
    model = build_model(CONFIG).double()
    x = torch.randn(1, 3, 10, 10, dtype=torch.double, requires_grad=True)
    v = h = model.scale_input(x)
    for layer in model.layers:
        v, h = layer(v, h)
        for row in (0, 4, 9):
            (grad,) = torch.autograd.grad(v[0, :, row].sum(), x, retain_graph=True)
            assert grad[0, :, row:].abs().max() == 0  # not its own row, nothing below
            if row:
                assert grad[0, :, :row].abs().max() > 0


def test_the_rows_above_reach_the_horizontal_stack_only_through_the_1x1_link():
    torch.manual_seed(0)
    model = build_model(CONFIG).double()
    with torch.no_grad():
        for layer in model.layers:
            layer.v_to_h.weight.zero_()
            layer.v_to_h.bias.zero_()
    x = torch.randn(1, 3, 10, 10, dtype=torch.double, requires_grad=True)
    (grad,) = torch.autograd.grad(model(x)[0, :, :, 6, 5].sum(), x)
    assert grad[0, :, :6].abs().max() == 0 and grad[0, :, 6, :5].abs().max() > 0


def test_the_horizontal_stack_is_residual_after_the_first_layer():
    layer = GatedLayer(4, 4, 3, first=False)
    with torch.no_grad():
        layer.h_out.weight.zero_()
        layer.h_out.bias.zero_()
    v, h = torch.randn(1, 4, 5, 5), torch.randn(1, 4, 5, 5)
    assert torch.equal(layer(v, h)[1], h)
    first = GatedLayer(3, 4, 7, first=True)
    with torch.no_grad():
        first.h_out.weight.zero_()
        first.h_out.bias.zero_()
    assert first(torch.randn(1, 3, 5, 5), torch.randn(1, 3, 5, 5))[1].abs().max() == 0  # no skip from the image


def test_the_first_layer_hides_the_current_pixel():
    torch.manual_seed(1)
    model = build_model(CONFIG).double()
    x = torch.randn(1, 3, 10, 10, dtype=torch.double, requires_grad=True)
    (grad,) = torch.autograd.grad(model(x)[0, :, :, 4, 4].sum(), x)
    assert grad[0, :, 4, 4].abs().max() == 0 and grad[0, :, 4, 3].abs().max() > 0
