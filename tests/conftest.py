"""Shared fixtures: the demo datasets (VOCASET and MEAD layouts, once per session), the tiny VOCASET-layout
corpus and an untrained smoke critic (once per test module)."""
from __future__ import annotations

import os

os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # make test runs TEST_WORKERS pytest-xdist workers (2, the project machines' cores), one OpenMP thread each,
    # inherited by the notebooks' kernels and the processes the tests start: two workers of two threads each on
    # two cores were 5 % slower (benchmarks/RESULTS.md, "make test"). No result depends on the thread count.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """make test's pytest-xdist workers (``--dist loadfile``) take whole test files, and the notebooks all go
    to one worker, in order, as one unit: they share the checkout's data/, runs/ and results/smoke/ (each
    reuses the corpora and runs of the ones before it), which two notebooks at once would write together (a
    grid recomputes a prediction folder that has no record yet, the other notebook's half-written one)."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class NotebooksInOrderOnOneWorker(LoadFileScheduling):
        def _split_scope(self, nodeid):
            path = nodeid.split("::", 1)[0]
            return "notebooks" if path.startswith("notebooks/") else path

    return NotebooksInOrderOnOneWorker(config, log)


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


def _tiny_voca(tmp_path_factory, seconds: float):
    from tiny_corpus import write_tiny_corpus

    return write_tiny_corpus(tmp_path_factory.mktemp("voca"), kind="vocaset", fps=60, model_fps=30,
                             identities={"train": 2, "test": 1}, clips_per_identity=2, seconds=seconds,
                             lip_video=False)


@pytest.fixture(scope="module")
def voca(tmp_path_factory):
    """A tiny VOCASET-layout corpus (60 fps capture, 30 fps model; 2 train + 1 test speakers, 2 clips of 1 s
    each, 30 vertices, no lip video), written once per test module."""
    return _tiny_voca(tmp_path_factory, seconds=1.0)


@pytest.fixture(scope="module")
def voca_short(tmp_path_factory):
    """As :func:`voca` with 0.6 s clips (for tests that train talkers end to end)."""
    return _tiny_voca(tmp_path_factory, seconds=0.6)


@pytest.fixture(scope="module")
def smoke_critic():
    """An untrained smoke-preset stage-2 critic ("ours": stage-1 speech encoder + mesh encoder) for the tiny
    corpora's 30-vertex meshes, seeded with 0; built once per test module."""
    import torch

    from p3d.models.mesh_encoder import MeshEncoderConfig
    from p3d.models.speech_mesh import SpeechMeshModel
    from p3d.models.stage1 import Stage1Config, Stage1Model

    torch.manual_seed(0)
    return SpeechMeshModel.ours(Stage1Model(Stage1Config.from_preset("smoke")),
                                MeshEncoderConfig.from_preset("smoke", n_vertices=30))


@pytest.fixture(scope="module")
def smoke_critic_ckpt(smoke_critic, tmp_path_factory):
    """:func:`smoke_critic` saved as a checkpoint file (``critic.pt``)."""
    path = tmp_path_factory.mktemp("critic") / "critic.pt"
    smoke_critic.save(path)
    return path


@pytest.fixture()
def change_default(monkeypatch):
    """``change_default(cls, name, value)``: the config dataclass ``cls`` as if its field ``name`` had the default
    ``value`` in the code (the field's recorded default and ``cls()``'s, so presets built from the defaults take it);
    undone after the test."""
    import dataclasses

    def change(cls, name, value):
        monkeypatch.setattr(cls.__dataclass_fields__[name], "default", value)
        names = [f.name for f in dataclasses.fields(cls) if f.init]
        defaults = list(cls.__init__.__defaults__)
        defaults[names.index(name) - (len(names) - len(defaults))] = value
        monkeypatch.setattr(cls.__init__, "__defaults__", tuple(defaults))

    return change


class HeldCopy:
    """A race of two calls around a file copy held mid-way (:func:`held_first_copy`)."""

    def __init__(self, inside, go):
        self.inside, self.go = inside, go

    def race(self, call, while_held):
        """Run ``call("first")`` in a thread until its copy is held, then ``call("second")`` in another; assert the
        second still waits after a second, call ``while_held()`` (the test's checks meanwhile), release the copy and
        wait for both."""
        import threading

        first = threading.Thread(target=call, args=("first",), name="first")
        first.start()
        try:
            assert self.inside.wait(timeout=60)
            second = threading.Thread(target=call, args=("second",), name="second")
            second.start()
            second.join(timeout=1.0)
            assert second.is_alive()  # waits for the first
            while_held()
        finally:
            self.go.set()
            first.join(timeout=60)
        second.join(timeout=60)


@pytest.fixture()
def held_first_copy(monkeypatch):
    """A :class:`HeldCopy`: ``shutil.copyfile`` in the thread named ``"first"`` sets ``inside`` once it has begun and
    waits for ``go`` (60 s at most): a copy held mid-way, for tests of what a concurrent call does meanwhile."""
    import shutil
    import threading

    inside, go = threading.Event(), threading.Event()
    real_copyfile = shutil.copyfile

    def held_copy(*args, **kw):
        if threading.current_thread().name == "first":
            inside.set()
            assert go.wait(timeout=60)
        return real_copyfile(*args, **kw)

    monkeypatch.setattr(shutil, "copyfile", held_copy)
    return HeldCopy(inside, go)
