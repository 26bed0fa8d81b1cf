"""Training losses: symmetric InfoNCE (Eqs. 1-2, 5) and the speech-mesh perceptual loss (Eq. 6)."""
from __future__ import annotations

from p3d.losses.infonce import TEMPERATURE, info_nce, info_nce_from_logits, multilayer_info_nce
from p3d.losses.perceptual_loss import PerceptualLoss

__all__ = ["TEMPERATURE", "PerceptualLoss", "info_nce", "info_nce_from_logits", "multilayer_info_nce"]
