"""ModaMixer (Eq. 1): f_m = Block_mixer(Linear(f_l) ⊙ f_v) + Block_last(f_v)."""
import pytest
import torch

from asearch.errors import ArchitectureError
from supernets import ChoiceLayer, ModaMixer


def set_linear(mixer, bias):
    with torch.no_grad():
        mixer.linear.weight.zero_()
        mixer.linear.bias.copy_(torch.tensor(bias))


def test_hand_case_pass_through_channels():
    # A ShuffleNetV2 block without projection passes the even input channels through unchanged into its first C/2
    # output channels. With Linear(f_l) = bias = [2, 3, 4, 5] and f_v = [1, 2, 3, 4] (1×1 map), Block_last = 0:
    # f_m[:2] = [2·1, 4·3] = [2, 12].
    mixer = ModaMixer(4, 3).eval()
    set_linear(mixer, [2.0, 3.0, 4.0, 5.0])
    f_l = torch.randn(1, 3)
    f_v = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 4, 1, 1)
    selector = mixer.project(f_l)
    assert selector.tolist() == [[2.0, 3.0, 4.0, 5.0]]
    for choice in range(4):
        out = mixer(f_v, selector, torch.zeros(1, 4, 1, 1), choice)
        assert out[0, :2, 0, 0].tolist() == [2.0, 12.0]
        # the residual is added as is
        out2 = mixer(f_v, selector, torch.full((1, 4, 1, 1), 0.5), choice)
        assert torch.equal(out2, out + 0.5)


def test_zero_language_gives_block_last_only():
    # Linear(f_l) = 0 -> the mixer block sees a zero map; with fresh BN statistics (mean 0) in eval mode every conv
    # and BN of the block maps 0 to 0, so f_m = Block_last(f_v) exactly.
    mixer = ModaMixer(8, 5).eval()
    set_linear(mixer, [0.0] * 8)
    f_v, last = torch.randn(2, 8, 3, 3), torch.randn(2, 8, 3, 3)
    for choice in range(4):
        assert torch.equal(mixer(f_v, mixer.project(torch.randn(2, 5)), last, choice), last)


def test_matches_explicit_formula_with_spatial_broadcast():
    torch.manual_seed(0)
    mixer = ModaMixer(8, 6).eval()
    f_l, f_v, last = torch.randn(2, 6), torch.randn(2, 8, 5, 4), torch.randn(2, 8, 5, 4)
    for choice in range(4):
        sel = f_l @ mixer.linear.weight.t() + mixer.linear.bias  # Linear(f_l), B×C
        mixed = torch.empty_like(f_v)
        for y in range(5):  # the language vector reweights every spatial position
            for x in range(4):
                mixed[:, :, y, x] = sel * f_v[:, :, y, x]
        expected = mixer.blocks[str(choice)](mixed) + last
        assert torch.allclose(mixer(f_v, mixer.project(f_l), last, choice), expected, atol=1e-6)


def test_choice_layer_names_and_missing_choice():
    layer = ChoiceLayer(8, 8, choices=[2])
    assert layer.choices == (2,)
    assert all(k.startswith("2.branch_main.") for k in layer.state_dict())
    with pytest.raises(ArchitectureError, match="choice 1 is not available"):
        layer(torch.randn(1, 8, 2, 2), 1)
    with pytest.raises(ValueError, match="selector must be B×8"):
        ModaMixer(8, 3)(torch.randn(1, 8, 2, 2), torch.randn(1, 4), torch.randn(1, 8, 2, 2), 0)


def test_channel_shuffle_layouts_and_to_channels_last():
    """Both splits take the even channels to the pass-through half and the odd ones to the main branch; the
    layout-keeping one returns views of a channels-last input; to_channels_last switches every choice block."""
    from supernets.blocks import channel_shuffle, to_channels_last

    x = torch.arange(2 * 8 * 3 * 3, dtype=torch.float32).reshape(2, 8, 3, 3)
    for inp in (x, x.to(memory_format=torch.channels_last)):
        for keep in (False, True):
            even, odd = channel_shuffle(inp, keep)
            assert torch.equal(even, x[:, [0, 2, 4, 6]]) and torch.equal(odd, x[:, [1, 3, 5, 7]])
    cl = x.to(memory_format=torch.channels_last)
    even, odd = channel_shuffle(cl, keep_layout=True)
    assert even.data_ptr() == cl.data_ptr() and odd.stride(1) == 2  # views, no copy
    even, odd = channel_shuffle(cl)  # the official split copies into the NCHW order (W innermost)
    assert even.data_ptr() != cl.data_ptr() and odd.stride(-1) == 1 and cl.stride(-1) == 8

    torch.manual_seed(0)
    layer = ChoiceLayer(16, 16).eval()
    inp = torch.randn(2, 16, 8, 8)
    ref = [layer(inp, c) for c in layer.choices]
    assert not any(b.keep_layout for b in layer.values())
    assert to_channels_last(layer) is layer and all(b.keep_layout for b in layer.values())
    for c, r in zip(layer.choices, ref):
        out = layer(inp.to(memory_format=torch.channels_last), c)
        assert out.is_contiguous(memory_format=torch.channels_last)
        assert torch.allclose(out, r, atol=1e-5), c


def test_normalise_is_layout_independent():
    """The supernet's input normalisation gives bit-identical values for NCHW and channels-last crops (the
    channels-last one stays channels-last)."""
    from supernets.vlt import build_supernet

    net = build_supernet(width_mult=0.25, language_dim=8, template_size=63, search_size=127)
    x = torch.rand(2, 3, 5, 7) * 255
    cl = x.to(memory_format=torch.channels_last)
    out = net.normalise(cl)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out, net.normalise(x)) and torch.equal(out, (x - net.pixels.mean) / net.pixels.std)
