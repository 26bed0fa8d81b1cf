"""The paper's claims (being split into modules; the code is in :mod:`p3d.claims.judges` for now)."""
from p3d.claims.judges import *  # noqa: F403
from p3d.claims.judges import __doc__  # noqa: F401
