"""The SPOS classification supernet reproduces the official checkpoint layout, sizes and get_flops values.

Facts of the official ShuffleNetV2_OneShot (megvii-model/SinglePathOneShot, input 224, 1000 classes), stated here as
literals: 1337 state-dict entries (335 parameter tensors, 1002 BN buffers), 8,388,176 parameters of which 1,679,792
outside the choice blocks, and per-path parameters / FLOPs (MACs of Conv2d + Linear) as printed by the official code.
"""
import re

import pytest
import torch

from asearch.errors import ArchitectureError
from supernets.spos import SPOSClassificationSupernet

PAPER_SEARCHED = [2, 1, 0, 1, 2, 0, 2, 0, 2, 0, 2, 3, 0, 0, 0, 0, 3, 2, 3, 3]
KEY = re.compile(r"^(first_conv\.[01]|conv_last\.[01]|classifier\.0|features\.(1?\d)\.[0-3]\.branch_(main|proj)\.\d+)"
                 r"\.(weight|running_mean|running_var|num_batches_tracked)$")


@pytest.fixture(scope="module")
def net():
    return SPOSClassificationSupernet()


def test_counts(net):
    sd = net.state_dict()
    assert len(sd) == 1337
    assert len(list(net.parameters())) == 335
    assert len(list(net.buffers())) == 1002
    assert sum(p.numel() for p in net.parameters()) == 8_388_176
    assert net.shared_params() == 1_679_792 == 16 * 3 * 9 + 1024 * 640 + 1000 * 1024
    assert all(KEY.match(k) for k in sd)
    assert sum("branch_proj" in k for k in sd) == 128  # 4 stage-first layers x 4 choices x 8 entries


def test_keys_and_shapes(net):
    sd = net.state_dict()
    expected = {
        "first_conv.0.weight": (16, 3, 3, 3),
        "first_conv.1.running_var": (16,),
        "features.0.0.branch_main.0.weight": (32, 16, 1, 1),
        "features.0.0.branch_main.5.weight": (48, 32, 1, 1),
        "features.0.0.branch_proj.0.weight": (16, 1, 3, 3),
        "features.4.3.branch_main.12.weight": (96, 80, 1, 1),
        "features.4.3.branch_proj.2.weight": (64, 64, 1, 1),
        "features.8.1.branch_proj.0.weight": (160, 1, 5, 5),
        "features.9.3.branch_main.0.weight": (160, 1, 3, 3),
        "features.16.3.branch_main.2.weight": (320, 320, 1, 1),
        "features.19.2.branch_main.3.weight": (320, 1, 7, 7),
        "features.19.2.branch_main.5.weight": (320, 320, 1, 1),
        "conv_last.0.weight": (1024, 640, 1, 1),
        "conv_last.1.num_batches_tracked": (),
        "classifier.0.weight": (1000, 1024),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    assert "features.9.0.branch_proj.0.weight" not in sd  # only the first layer of a stage projects
    assert "classifier.0.bias" not in sd and "first_conv.1.weight" not in sd  # no bias, affine=False BN


def test_per_layer_choice_params(net):
    per_layer = [[sum(p.numel() for p in block.parameters()) for block in layer] for layer in net.features]
    assert per_layer[0] == [2736, 3504, 4656, 4192]
    assert per_layer[1] == [2336, 2848, 3616, 3936]
    assert per_layer[4] == [18192, 20496, 23952, 25888]
    assert per_layer[8] == [79680, 84800, 92480, 108160]
    assert per_layer[19] == [207680, 212800, 220480, 315840]


@pytest.mark.parametrize("arch,params,params_affine,flops", [
    ([0] * 20, 3_132_448, 3_154_880, 295_842_496),
    ([3] * 20, 3_830_400, 3_870_816, 358_825_920),
    ([1] * 20, 3_189_536, 3_211_968, 313_654_976),
    (PAPER_SEARCHED, 3_529_312, 3_558_464, 322_918_720),
])
def test_official_paths(net, arch, params, params_affine, flops):
    assert net.path_params(arch) == params
    assert net.path_flops(arch) == flops
    assert SPOSClassificationSupernet(affine=True).path_params(arch) == params_affine


def test_official_shared_flops(net):
    # stem conv at 112x112 + conv_last at 7x7 + classifier: the official lookup's shared 38,555,648
    shared = 16 * 27 * 112 * 112 + 1024 * 640 * 7 * 7 + 1024 * 1000
    assert shared == 38_555_648
    layer_flops = [13_396_992] + [7_325_696] * 3 + [26_304_768] + [10_599_680] * 3 + [30_670_080] + \
        [10_317_440] * 7 + [30_387_840] + [10_176_320] * 3  # official per_layer_choice_flops, choice 0
    assert shared + sum(layer_flops) == net.path_flops([0] * 20)


def test_forward_and_bad_arch(net):
    net.eval()
    with torch.no_grad():
        out = net(torch.zeros(1, 3, 64, 64), PAPER_SEARCHED)
    assert out.shape == (1, 1000)
    with pytest.raises(ArchitectureError, match="gene 3 has value 4"):
        net(torch.zeros(1, 3, 64, 64), [0, 0, 0, 4] + [0] * 16)
    with pytest.raises(ArchitectureError, match="expected 20 genes, got 19"):
        net.path_flops([0] * 19)
