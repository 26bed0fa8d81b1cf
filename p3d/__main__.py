"""``python -m p3d`` is the same as the ``p3d`` console script (and what ``torchrun -m p3d`` runs)."""
from p3d.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
