"""The floating-point precision GLNet computes in when it predicts.

``auto`` picks the fastest precision the device runs natively: bf16 on CPUs
whose oneDNN has native bf16 kernels (AVX-512 BF16 or AMX; torch is asked,
not the CPU's name) and on CUDA devices that support it, fp16 on older CUDA
devices, fp32 elsewhere. A reduced precision holds the network's weights in
that dtype (half the memory) and runs every layer in it; the logits are
blended in fp32 (:mod:`glnet_geo.predict.blending`).
"""

from __future__ import annotations

from enum import StrEnum

import torch

from glnet_geo.errors import InputError, parse_choice


class Precision(StrEnum):
    """The dtype GLNet's layers compute in (``auto``: see the module docstring)."""

    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"

    @classmethod
    def parse(cls, value: Precision | str) -> Precision:
        """``value`` as a precision; an unknown one raises :class:`InputError`."""
        return parse_choice(cls, value, "precision", "--precision")

    @property
    def dtype(self) -> torch.dtype:
        """The torch dtype of a resolved precision."""
        if self is Precision.AUTO:
            raise ValueError("resolve 'auto' first (resolve_precision)")
        return {Precision.FP32: torch.float32, Precision.BF16: torch.bfloat16,
                Precision.FP16: torch.float16}[self]


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` runs bf16 convolutions and matmuls natively."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def supported_precisions(device: torch.device | str) -> tuple[Precision, ...]:
    """Return the precisions ``device`` runs (besides ``auto``), fastest last."""
    device = torch.device(device)
    supported = [Precision.FP32]
    if device.type == "cuda":
        supported.append(Precision.FP16)
    if native_bf16(device):
        supported.append(Precision.BF16)
    return tuple(supported)


def resolve_precision(precision: Precision | str, device: torch.device | str) -> Precision:
    """Return the concrete precision to use on ``device``.

    Args:
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16``.
        device: A resolved device (``cpu``, ``cuda:N``).

    Raises:
        InputError: An unknown value, or one ``device`` cannot run (bf16 on a
            CPU or GPU without native bf16, fp16 on the CPU).

    """
    precision = Precision.parse(precision)
    device = torch.device(device)
    supported = supported_precisions(device)
    if precision is Precision.AUTO:
        return supported[-1]
    if precision not in supported:
        names = ", ".join(p.value for p in supported)
        why = ("fp16 runs only on CUDA devices" if precision is Precision.FP16
               else "it has no native bf16 kernels")
        raise InputError(f"--precision {precision.value} cannot run on {device.type} here "
                         f"({why}); this machine supports {names}: use --precision auto")
    return precision
