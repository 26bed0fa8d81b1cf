"""p3d.registry: the one list of presets, models and critics, and its refusals of unknown names."""
import pytest

from p3d import registry
from p3d.errors import InputError


def test_model_presets_are_the_presets_with_their_own_models_each_once():
    """``MODEL_PRESETS``: the presets whose trainings use their own model sizes and recipes (``full`` trains the
    ``cpu`` models), each named once, smallest first."""
    own = [name for name in registry.PRESETS if registry.model_preset(name) == name]
    assert registry.MODEL_PRESETS == tuple(own) == ("smoke", "cpu", "paper")


@pytest.mark.parametrize("talker", [False, True])
def test_a_critic_name_is_checked_against_its_choices(talker):
    """A talker may also train without a critic (``none``); a critic pipeline may not. An unknown name is a
    one-line InputError naming the choices."""
    for name in registry.CRITICS:
        assert registry.check_critic(name, talker=talker) == name
    if talker:
        assert registry.check_critic("none", talker=True) == "none"
    else:
        with pytest.raises(InputError, match="unknown critic 'none'"):
            registry.check_critic("none")
    with pytest.raises(InputError, match="unknown critic 'wav2lip'") as info:
        registry.check_critic("wav2lip", talker=talker)
    assert "\n" not in str(info.value) and all(c in str(info.value) for c in registry.CRITICS)


def test_a_model_name_is_checked_against_the_papers_baselines():
    for name in ("faceformer", "codetalker", "selftalk"):
        assert registry.check_model(name) == name
    with pytest.raises(InputError, match="unknown model 'FaceFormer'.*faceformer, codetalker, selftalk"):
        registry.check_model("FaceFormer")


def test_every_choice_has_a_display_label():
    assert set(registry.MODEL_LABELS) == set(registry.MODELS)
    assert set(registry.CRITIC_LABELS) == set(registry.CRITICS)
    assert set(registry.TALKER_CRITIC_LABELS) == set(registry.TALKER_CRITICS) == {"none", *registry.CRITICS}


def test_critic_labels_are_the_row_names_of_table_3():
    """paper-digest.md, Table 3: the critic rows are named 3D SyncNet, Ours w/o 2D prior and Ours w/ 2D prior;
    the baseline without a perceptual loss is marked ✗."""
    assert registry.TALKER_CRITIC_LABELS["none"] == "✗"
    assert registry.CRITIC_LABELS == {"syncnet3d": "3D SyncNet", "no2d": "Ours w/o 2D prior",
                                      "ours": "Ours w/ 2D prior"}
