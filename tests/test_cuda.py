"""On a CUDA GPU (skipped without one, as on CI): the training paths that a GPU run of ``benchmarks/bench_gpu.py`` found
mixing devices. Each talker trains a batched step with the perceptual loss on ``cuda`` (the critic loaded with
``map_location``, the mel front-end cached from CPU audio, SelfTalk's batched CTC), and a critic checkpoint loads onto
the device whole. The same checks run on the CPU elsewhere with ``meta`` standing in for the device."""
import pytest
import torch

from p3d.models.speech_mesh import load_critic
from p3d.train.talker import build

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_load_critic_onto_cuda(smoke_critic_ckpt):
    critic = load_critic(smoke_critic_ckpt, map_location="cuda")
    assert {t.device.type for t in [*critic.parameters(), *critic.buffers()]} == {"cuda"}


@pytest.mark.parametrize("model", ["faceformer", "codetalker", "selftalk"])
def test_batched_step_with_the_loss_on_cuda(model, voca_short, smoke_critic_ckpt):
    job = build(model, "smoke", voca_short, critic="ours", critic_checkpoint=smoke_critic_ckpt, loss_weight=0.01,
                steps=2, batch_size=2, device="cuda")
    assert {p.device.type for p in job.params} == {"cuda"}
    batch = job.data.collate([0, 1])
    loss, logs = job.step_fn(job.model, batch, None)
    loss.backward()
    assert loss.device.type == "cuda" and torch.isfinite(loss)
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in job.params)
    assert "percp" in logs
