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
