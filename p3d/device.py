"""Which torch device a command runs on (``--device``), shared by training and prediction.

torch is imported inside the function so that importing this module stays cheap.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from p3d.errors import InputError

if TYPE_CHECKING:
    import torch


def resolve_device(device: str = "auto") -> torch.device:
    """``auto``: ``cuda:LOCAL_RANK`` when CUDA is available, else CPU; otherwise any name torch
    accepts (``cpu``, ``cuda``, ``cuda:N``). An unknown name is an :class:`InputError` naming ``--device``."""
    import torch  # noqa: PLC0415

    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cpu")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise InputError(f"--device: {exc}") from None
