"""The stand-in FID Inception weights file shared by the FID tests and the conftest fixture."""

from __future__ import annotations

import io
from pathlib import Path

import torch


def make_stand_in_weights(path: Path, seed: int = 0) -> Path:
    """Writes random weights with the exact state-dict layout of the real FID Inception file.

    torch-fidelity's ``FeatureExtractorInceptionV3`` builds its layers and then loads weights in
    the same constructor; it has no "don't load" switch. A subclass whose ``load_state_dict`` is a
    no-op, given an in-memory ``torch.save({})`` as its weights path (the constructor
    ``torch.load``s it), yields the bare module; its ``state_dict()`` minus the BatchNorm
    ``num_batches_tracked`` counters (which the converted TF file does not have) is the layout.

    Values, from a seeded generator: conv weights He-normal (std sqrt(2 / fan_in)) so activations
    neither vanish nor blow up through ~95 layers; BatchNorm close to identity (gamma 1 + 0.1 N,
    beta 0.1 N, running mean 0.1 N, running var 1 + 0.1 U); fc N(0, 1 / 2048). The pool features
    then vary from image to image (a network with all-zero features would make every FID 0).
    """

    import torch_fidelity.feature_extractor_inceptionv3 as fe_mod

    class Unloaded(fe_mod.FeatureExtractorInceptionV3):
        def load_state_dict(self, *args, **kwargs):
            return None

    empty = io.BytesIO()
    torch.save({}, empty)
    empty.seek(0)
    module = Unloaded("inception-v3-compat", ["2048"], feature_extractor_weights_path=empty, verbose=False)
    layout = {k: v for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}

    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, ref in layout.items():
        shape = ref.shape
        if ref.dim() == 4:  # conv weight (out, in, kh, kw)
            value = torch.randn(shape, generator=g) * (2.0 / ref[0].numel()) ** 0.5
        elif key.endswith("bn.weight"):
            value = 1.0 + 0.1 * torch.randn(shape, generator=g)
        elif key.endswith(("bn.bias", "bn.running_mean")):
            value = 0.1 * torch.randn(shape, generator=g)
        elif key.endswith("bn.running_var"):
            value = 1.0 + 0.1 * torch.rand(shape, generator=g)
        elif key == "fc.weight":
            value = torch.randn(shape, generator=g) / 2048**0.5
        elif key == "fc.bias":
            value = 0.01 * torch.randn(shape, generator=g)
        else:
            raise AssertionError(f"unexpected key in torch-fidelity's InceptionV3: {key}")
        state[key] = value.to(torch.float32).contiguous()
    torch.save(state, path)
    return path
