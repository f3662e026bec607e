"""A tiny EfficientNet-Lite0 for unit tests of the image encoder code: the real architecture, random weights.

The network is built for 64×64 inputs (it is fully convolutional, so only the static "same" paddings depend on
the size). Its batch-norm statistics are calibrated on random images so that activations neither vanish nor
saturate. Nothing is downloaded.
"""
from __future__ import annotations

from pathlib import Path

TINY_SIZE = 64  # pixels, network input side in these tests
TINY_RESIZE = 73  # pixels; 64 / 73 ≈ 0.875, the crop fraction of the real configuration


def build_tiny_efficientnet(path: Path) -> Path:
    """Writes a randomly initialised EfficientNet-Lite0 state_dict (64×64 inputs, BN statistics calibrated)
    to `path` with `torch.save` and returns `path`."""
    import torch

    import encoders.image as image_encoder

    torch.manual_seed(0)
    net = image_encoder.build_network(TINY_SIZE)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the calibration batch
    net.train()
    with torch.no_grad():
        net(torch.rand(16, 3, TINY_SIZE, TINY_SIZE) * 2 - 1)
    torch.save(net.eval().state_dict(), path)
    return path


def save_as_safetensors(weights: Path, target: Path) -> Path:
    """The state_dict in `weights` (a `torch.save` file) written to `target` as safetensors (as `make
    tune-images` writes it); returns `target`."""
    import torch
    from safetensors.torch import save_file

    state = torch.load(weights, map_location="cpu", weights_only=True)
    save_file({key: value.contiguous() for key, value in state.items()}, str(target))
    return target
