"""Progress bars: drawn on a terminal by default, never into a log, a pipe or a notebook run by papermill."""
import io

import pytest

from p3d.progress import show_progress


class Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def test_show_progress_decides_by_the_argument_then_by_the_terminal():
    assert show_progress(True, Stream(False)) and not show_progress(False, Stream(True))
    assert show_progress(None, Stream(True)) and not show_progress(None, Stream(False))
    assert not show_progress(None, object())            # no isatty at all: a log-like sink
    closed = Stream(True)
    closed.isatty = lambda: (_ for _ in ()).throw(ValueError("I/O operation on closed file"))
    assert not show_progress(None, closed)


@pytest.mark.parametrize("tty", [False, True])
def test_training_draws_its_bar_only_on_a_terminal_by_default(tmp_path, monkeypatch, tty):
    import sys

    import torch

    from p3d.train.trainer import TrainConfig, train

    class Data:
        x, y = torch.ones(8, 2), torch.zeros(8, 1)

        def __len__(self):
            return 8

        def collate(self, idx):
            return self.x[idx], self.y[idx]

    def step_fn(model, batch, gen):
        loss = torch.nn.functional.mse_loss(model(batch[0]), batch[1])
        return loss, {"mse": loss.item()}

    err = Stream(tty)
    monkeypatch.setattr(sys, "stderr", err)
    train(torch.nn.Linear(2, 1), Data(), step_fn, TrainConfig(steps=3, batch_size=4, seed=0), tmp_path / "run")
    assert ("train run" in err.getvalue()) == tty
