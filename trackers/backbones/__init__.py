"""Vision-only backbones of the baselines (ResNet-50 in :mod:`trackers.backbones.resnet`)."""
