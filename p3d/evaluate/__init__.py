"""``p3d eval`` (being split into modules; the code is in :mod:`p3d.evaluate.scoring` for now)."""
from p3d.evaluate.scoring import *  # noqa: F403
from p3d.evaluate.scoring import __doc__, _plrs  # noqa: F401
