"""The perceptual-loss weight carried across units (p3d.losses.weight): motion scale, the rule, bad input."""
from __future__ import annotations

import numpy as np
import pytest

from p3d.corpus import Corpus
from p3d.errors import InputError
from p3d.losses.perceptual_loss import DEFAULT_WEIGHT
from p3d.losses.weight import (PAPER_WEIGHT, VOCASET_MOTION_RMS, carried_loss_weight, fixed_weight_note, motion_rms,
                               pooled_motion_rms, split_motion_rms)
from tiny_corpus import write_tiny_corpus


def test_motion_rms_hand_case_and_subset():
    template = np.arange(12, dtype=float).reshape(4, 3)
    v = np.broadcast_to(template, (5, 4, 3)).copy()
    v[:, 0] += 0.003 * np.array([1, -1, 1])  # vertex 0: every coordinate 3 mm from rest
    assert motion_rms(v, template, [0]) == pytest.approx(0.003)
    assert motion_rms(v, template) == pytest.approx(0.003 / 2)  # 1 of 4 vertices moves: sqrt(1/4)
    assert motion_rms(v.reshape(5, 12), template.reshape(-1), [0, 0]) == pytest.approx(0.003)
    assert motion_rms(v * 1000, template * 1000) == pytest.approx(3 / 2)  # millimetres in, millimetres out
    assert motion_rms(np.broadcast_to(template, (3, 4, 3)), template) == 0.0


def test_motion_rms_squared_is_the_mse_of_predicting_the_template():
    # FaceFormer's zero-initialised output predicts the template: its first MSE (nn.MSELoss) is s^2
    import torch
    rng = np.random.default_rng(0)
    template = rng.normal(scale=0.1, size=(50, 3))
    gt = template + rng.normal(scale=0.002, size=(30, 50, 3))
    mse = torch.nn.functional.mse_loss(torch.from_numpy(np.broadcast_to(template, gt.shape).reshape(30, -1).copy()),
                                       torch.from_numpy(gt.reshape(30, -1)))
    assert motion_rms(gt, template) ** 2 == pytest.approx(float(mse), rel=1e-12)


def test_carried_weight_rule():
    assert PAPER_WEIGHT == DEFAULT_WEIGHT == 1e-7
    s_voca = 0.0012  # any value: the rule is a ratio
    assert carried_loss_weight(s_voca, vocaset_motion_rms=s_voca) == pytest.approx(1e-7)
    assert carried_loss_weight(2 * s_voca, vocaset_motion_rms=s_voca) == pytest.approx(4e-7)
    # the same corpus in millimetres needs a weight 1e6 times larger (its MSE is 1e6 times larger)
    assert carried_loss_weight(1000 * s_voca, vocaset_motion_rms=s_voca) == pytest.approx(1e-1)
    assert carried_loss_weight(s_voca, vocaset_motion_rms=s_voca, paper_weight=3e-7) == pytest.approx(3e-7)
    # the invariant: W / s^2 (the weight relative to the template predictor's MSE) is the paper's
    for s in (1e-4, 0.003, 2.5, 40.0):
        assert carried_loss_weight(s, vocaset_motion_rms=s_voca) / s ** 2 == pytest.approx(1e-7 / s_voca ** 2)


def test_vocaset_reference_scale_is_faceformers_starting_mse():
    # FaceFormer issue #12: "(Epoch 1, iteration 115) TRAIN LOSS:0.0000014" (m^2), the template MSE at the start
    from p3d import paper
    assert paper.FACEFORMER_VOCASET_TRAIN_MSE_START == 1.4e-6
    assert paper.FACEFORMER_VOCASET_TRAIN_MSE_SOURCE == "https://github.com/EvelynFan/FaceFormer/issues/12"
    assert VOCASET_MOTION_RMS == pytest.approx(1.1832e-3, rel=1e-4)  # 1.18 mm per coordinate
    # kappa_paper = 1e-7 / 1.4e-6 m^2: W / s_corpus^2 is the paper's weight over FaceFormer's starting MSE
    assert carried_loss_weight(0.002, vocaset_motion_rms=VOCASET_MOTION_RMS) == pytest.approx(1e-7 * 4e-6 / 1.4e-6)
    # the README's number: synth-voca (full) train-split motion RMS 1.634e-3 m -> W = 1.91e-7
    assert carried_loss_weight(1.6345e-3, vocaset_motion_rms=VOCASET_MOTION_RMS) == pytest.approx(1.908e-7, rel=1e-3)


def test_reference_scale_has_no_default():
    with pytest.raises(TypeError):
        carried_loss_weight(0.001)  # type: ignore[call-arg]


def test_pooled_and_split_motion_rms(tmp_path):
    assert pooled_motion_rms([3.0, 4.0]) == pytest.approx(np.sqrt(12.5))
    assert pooled_motion_rms(np.array([2.0])) == 2.0
    root = write_tiny_corpus(tmp_path / "c", identities={"train": 2, "test": 1}, clips_per_identity=2, seconds=0.4,
                             lip_video=False, labels=False)
    corpus = Corpus.open(root)
    clips = corpus.select("train")
    per_clip = [motion_rms(corpus.vertices(c), corpus.templates[c.identity]) for c in clips]
    assert split_motion_rms(corpus) == pytest.approx(np.sqrt(np.mean(np.square(per_clip))))
    assert split_motion_rms(corpus, "test") != split_motion_rms(corpus)
    lips = corpus.topology.lips
    assert split_motion_rms(corpus, vertices_subset=lips) > split_motion_rms(corpus)  # the mouth moves, the rest not
    with pytest.raises(InputError, match="split"):
        split_motion_rms(corpus, "val")


@pytest.mark.parametrize("call, match", [
    (lambda: carried_loss_weight(0.0, vocaset_motion_rms=1e-3), "corpus_motion_rms"),
    (lambda: carried_loss_weight(1e-3, vocaset_motion_rms=-1e-3), "vocaset_motion_rms"),
    (lambda: carried_loss_weight(1e-3, vocaset_motion_rms=float("nan")), "vocaset_motion_rms"),
    (lambda: carried_loss_weight(1e-3, vocaset_motion_rms="1e-3"), "vocaset_motion_rms"),
    (lambda: carried_loss_weight(1e-3, vocaset_motion_rms=1e-3, paper_weight=0), "paper_weight"),
    (lambda: motion_rms(np.zeros((3, 4, 3)), np.zeros((5, 3))), "template"),
    (lambda: motion_rms(np.zeros((3, 4, 3)), np.zeros((4, 3)), [4]), "vertices_subset"),
    (lambda: motion_rms(np.full((3, 4, 3), np.inf), np.zeros((4, 3))), "vertices"),
    (lambda: pooled_motion_rms([]), "per_clip_rms"),
    (lambda: pooled_motion_rms([1.0, -1.0]), "negative"),
])
def test_bad_inputs(call, match):
    with pytest.raises(InputError, match=match):
        call()


def test_fixed_weight_note_names_the_source_of_the_scale():
    """The note notebook 06 shows under the fixed weight: the sourced VOCASET scale, a given one, or the opt-out."""
    from p3d import paper
    from p3d.experiments import spec_for

    sourced = fixed_weight_note(spec_for("full").vocaset_motion_rms)
    assert paper.FACEFORMER_VOCASET_TRAIN_MSE_SOURCE in sourced and f"{VOCASET_MOTION_RMS:.3g} m" in sourced
    assert "published" not in sourced and "opt-out" not in sourced
    measured = fixed_weight_note(1.2e-3)
    assert "0.0012 m as given" in measured and paper.FACEFORMER_VOCASET_TRAIN_MSE_SOURCE not in measured
    opt_out = fixed_weight_note(None)
    assert opt_out.startswith("vocaset_motion_rms = None (the opt-out): the paper's 1e-07 as it is")
    with pytest.raises(InputError, match="vocaset_motion_rms"):
        fixed_weight_note(-1.0)


def test_motion_rms_subset_averages_over_every_listed_vertex():
    # vertex 0 moves 3 mm per coordinate, vertex 1 does not, vertex 2 moves 4 mm on x only: by hand, the subset [0, 1]
    # has mean square (3 * 9 + 0) / 6 = 4.5 mm^2 and [1, 2] has 16 / 6 mm^2
    template = np.zeros((3, 3))
    v = np.zeros((2, 3, 3))
    v[:, 0] = 3.0
    v[:, 2, 0] = 4.0
    assert motion_rms(v, template, [0, 1]) == pytest.approx(np.sqrt(4.5))
    assert motion_rms(v, template, np.array([1, 2])) == pytest.approx(np.sqrt(16 / 6))


@pytest.mark.parametrize("arg", ["corpus_motion_rms", "vocaset_motion_rms", "paper_weight"])
def test_a_boolean_is_not_a_scale_or_a_weight(arg):
    kwargs = {"corpus_motion_rms": 1e-3, "vocaset_motion_rms": 1e-3, "paper_weight": 1e-7, arg: True}
    with pytest.raises(InputError, match=arg):
        carried_loss_weight(kwargs.pop("corpus_motion_rms"), **kwargs)


def test_split_motion_rms_refuses_a_clip_without_its_identitys_template():
    class _Corpus:  # the three things split_motion_rms reads of a p3d.corpus.Corpus
        root = "corpus"
        templates = {"a": np.zeros((2, 3))}

        @staticmethod
        def select(split):
            return [type("Clip", (), {"identity": i, "stem": f"{i}_s1"})() for i in ("a", "b")]

        @staticmethod
        def vertices(clip):
            return np.ones((4, 2, 3))

    with pytest.raises(InputError, match="no template for identity 'b'"):
        split_motion_rms(_Corpus())
