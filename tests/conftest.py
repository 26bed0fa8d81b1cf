"""Shared fixtures: the demo datasets (VOCASET and MEAD layouts) are generated once per session."""
from __future__ import annotations

import os

os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

import pytest


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """:class:`p3d.demo.DemoPaths` of a freshly generated demo dataset."""
    from p3d.demo import write_demo_dataset

    return write_demo_dataset(tmp_path_factory.mktemp("demo"))
