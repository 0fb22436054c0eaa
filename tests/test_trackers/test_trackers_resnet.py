"""SiamCAR's dilated ResNet-50: strides, widths, torchvision key names and pretrained-weight loading."""
import pytest
import torch

from asearch.errors import CheckpointError, ModelNotFoundError
from trackers.backbones.resnet import ResNet, resnet50


def test_strides_channels_and_sizes():
    net = resnet50(width_mult=0.25).eval()
    assert net.channels == [64, 128, 256, 512] and net.stride == 8
    feats = net(torch.rand(1, 3, 63, 63) * 255)
    # 63 -> conv1 32 -> pool 16 -> layer1 16 -> layer2 8 -> dilated layer3/4 stay 8 ("same" padding)
    assert [tuple(f.shape[1:]) for f in feats] == [(64, 16, 16), (128, 8, 8), (256, 8, 8), (512, 8, 8)]
    sd = net.state_dict()
    assert "layer3.0.downsample.0.weight" in sd and "layer4.2.conv3.weight" in sd and "mean" not in sd
    assert net.layer3[1].conv2.dilation == (2, 2) and net.layer4[0].conv2.dilation == (4, 4)
    full = ResNet()
    assert sum(p.numel() for n, p in full.named_parameters()) == 23_508_032  # torchvision resnet50 minus fc


def test_load_pretrained(tmp_path):
    src = resnet50(width_mult=0.25)
    state = {"module." + k: v for k, v in src.state_dict().items()}
    state["module.fc.weight"] = torch.zeros(10, 2048)
    path = tmp_path / "imagenet.pth"
    torch.save({"state_dict": state}, path)
    dst = resnet50(width_mult=0.25)
    report = dst.load_pretrained(path)
    assert report["skipped"] == ["fc.weight"]
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values()))
    with pytest.raises(ModelNotFoundError, match="nothing.pth"):
        resnet50(pretrained=tmp_path / "nothing.pth")
    with pytest.raises(CheckpointError, match="conv1.weight"):
        resnet50(width_mult=0.5).load_pretrained(path)
    del state["module.layer1.0.conv1.weight"]
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="layer1.0.conv1.weight"):
        resnet50(width_mult=0.25).load_pretrained(path)
