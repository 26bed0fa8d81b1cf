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


@pytest.fixture()
def one_torch_thread():
    """Run a test with one torch intra-op thread (restored afterwards): small models are faster that way
    on a shared 2-core machine, and results do not depend on the thread count."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
