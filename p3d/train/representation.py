"""Moved to :mod:`p3d.train.critics` (this name stays importable for older callers: it is that module)."""
import sys

from p3d.train import critics

sys.modules[__name__] = critics
