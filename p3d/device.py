"""Where and how torch runs: the device a command runs on (``--device``, :func:`resolve_device`), shared by
training and prediction, whether that device multiplies bfloat16 matrices natively (:func:`native_bf16`), and a
module's evaluation mode for a block (:func:`eval_mode`), shared by the models, metrics, trainers and analyses.

torch is imported inside the function so that importing this module stays cheap.
"""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from p3d.errors import InputError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


MAX_THREADS = 1024
"""The most torch intra-op threads ``--threads`` may ask for (or the CPU count, if larger): torch starts that many
threads, and a huge count crashed the process (pthread_create failed, then a segmentation fault)."""


def set_threads(threads: int) -> None:
    """``torch.set_num_threads(threads)`` for ``--threads``: an :class:`InputError` below 1 or above
    ``max(MAX_THREADS, CPU count)``, or for a non-integer (a numpy integer counts as one)."""
    import numbers  # noqa: PLC0415

    import torch  # noqa: PLC0415

    limit = max(MAX_THREADS, os.cpu_count() or 1)
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or not 1 <= threads <= limit:
        raise InputError(f"--threads: expected a thread count in 1..{limit} (this machine has {os.cpu_count()} "
                         f"CPUs), got {threads!r}")
    torch.set_num_threads(int(threads))


def resolve_device(device: str = "auto", *, available: bool = True) -> torch.device:
    """``auto``: ``cuda:LOCAL_RANK`` when CUDA is available, else CPU; otherwise ``cpu``, ``cuda`` or
    ``cuda:N``. An unknown name is an :class:`InputError` naming ``--device``; so is (``available``) a device
    this machine does not have (CUDA without a GPU, ``cuda:N`` or ``auto``'s LOCAL_RANK beyond the GPU count, another
    device type), so
    that the command stops before it loads data rather than with a traceback when the model moves there."""
    import torch  # noqa: PLC0415

    if device == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        rank = os.environ.get("LOCAL_RANK", "0").strip()
        if not rank.isdigit():
            raise InputError(f"--device auto: LOCAL_RANK={rank!r} is not a GPU index")
        dev = torch.device("cuda", int(rank))
        if available and dev.index >= torch.cuda.device_count():  # e.g. torchrun --nproc-per-node above the GPUs
            raise InputError(f"--device auto: LOCAL_RANK={rank} but this machine has {torch.cuda.device_count()} "
                             f"CUDA GPU(s) (cuda:0 to cuda:{torch.cuda.device_count() - 1})")
        return dev
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise InputError(f"--device: {exc}") from None
    if not available or dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise InputError(f"--device {device}: p3d runs on cpu or cuda[:N] (or auto)")
    if not torch.cuda.is_available():
        raise InputError(f"--device {device}: no CUDA GPU is available on this machine; use --device cpu or auto")
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InputError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA GPU(s) "
                         f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    return dev


def native_bf16(device: str | torch.device = "cpu") -> bool:
    """Whether ``device`` has bfloat16 matrix-multiply instructions, so that bf16 autocast is faster than float32
    there: a CPU with AVX512-BF16 or AMX tiles (x86-64), or a CUDA GPU of compute capability 8.0 or later (Ampere
    on: bf16 tensor cores; ``cuda`` is the current GPU, ``cuda:N`` GPU N) or any ROCm GPU. A CPU without them
    (e.g. AVX2 only) runs bf16 autocast through conversions, slower than float32: False; so does an older CUDA
    GPU (e.g. V100, T4), which ``torch.cuda.is_bf16_supported()`` reports bf16-capable because it emulates bf16.

    torch has no public query for the CPU instructions; ``torch.cpu._is_avx512_bf16_supported`` and
    ``_is_amx_tile_supported`` are read when present (False when a torch build lacks them)."""
    import torch  # noqa: PLC0415

    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            return False
        if torch.version.hip:
            return True
        index = torch.cuda.current_device() if dev.index is None else dev.index
        if not 0 <= index < torch.cuda.device_count():
            return False
        return torch.cuda.get_device_properties(index).major >= 8
    if dev.type != "cpu":
        return False
    checks = (getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return any(bool(check()) for check in checks if check is not None)


def warn_unless_native_bf16(device: str | torch.device, option: str) -> bool:
    """Log one warning line when bf16 autocast (``option``, e.g. ``--bf16``) was asked for on a device that does
    not multiply bf16 natively (:func:`native_bf16`): it runs there, through conversions, slower than float32 (a
    2048^2 matrix product on an AVX2-only AMD EPYC, one thread: 35 GFLOP/s in float32, 1.9 in bf16; the talkers'
    ``--bf16`` critic pass 6x slower; ``benchmarks/RESULTS.md``). Returns whether it warned."""
    import torch  # noqa: PLC0415

    if native_bf16(device):
        return False
    why = " (no AVX512-BF16 or AMX)" if torch.device(device).type == "cpu" else ""
    log.warning("%s: %s does not multiply bfloat16 natively%s: bf16 autocast runs slower than float32 here; leave "
                "%s off on this machine", option, device, why, option)
    return True


@contextlib.contextmanager
def eval_mode(module: Any) -> Iterator[Any]:
    """``with eval_mode(module):`` the block runs with ``module.eval()``; the previous mode
    (``module.training``) is restored on exit, also on an exception. Gradients are not touched (combine with
    ``torch.no_grad()`` where none are wanted). A module none of whose submodules is training is left alone
    (``eval()`` and ``train(False)`` would visit every submodule twice per call, e.g. once per clip of an
    evaluation)."""
    modules = getattr(module, "modules", None)
    if modules is not None and not any(m.training for m in modules()):
        yield module
        return
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)
