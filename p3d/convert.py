"""``p3d convert``: speech-mesh critic checkpoints between p3d's format and the official release's.

    p3d convert --from official --to p3d model_eval.pth critic.pt
    p3d convert --from p3d --to official runs/paper/stage2/final.pt model.pth

- ``--from official``: an official ``speech_mesh_rep`` checkpoint (``model_eval.pth``,
  ``model_loss.pth``; state dict under ``model``, ``module`` or bare; read weights-only with an
  allow-list) becomes a p3d ``speech_mesh`` checkpoint (``p3d.models.load_model`` reads it). Not
  needed to use an official file: ``p3d eval --plrs-checkpoint`` and ``--critic-checkpoint`` take it
  as it is.
- ``--to official``: a p3d ``speech_mesh`` critic becomes ``{"model": state_dict}`` in the official
  key layout, with p3d's mesh input standardisation folded into the first layer, so that the
  official code computes the same features (:func:`p3d.models.speech_mesh.p3d_to_official_state_dict`).
  The official model definition is built for the paper preset (H = 512, 10 layers, 8 heads, FLAME);
  other presets keep the layout at their own sizes.

The map is :func:`p3d.models.speech_mesh.official_to_p3d_state_dict` (see its docstring).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from p3d.errors import InputError

FORMATS = ("official", "p3d")


def convert(source: str | os.PathLike[str], out: str | os.PathLike[str], from_format: str, to_format: str) -> Path:
    """Convert the critic checkpoint ``source`` (``from_format``) to ``out`` (``to_format``); returns ``out``.

    Written atomically; the input is validated before anything is written.
    """
    from p3d.atomic import check_out_file
    from p3d.models import save_checkpoint
    from p3d.models.speech_mesh import (
        SpeechMeshModel, from_official, load_critic, official_checkpoint, official_state_dict, read_weights_file,
    )

    if from_format not in FORMATS or to_format not in FORMATS or from_format == to_format:
        raise InputError(f"--from / --to: convert between {' and '.join(FORMATS)} (got {from_format} -> {to_format})")
    source, out = Path(source), Path(out)
    if out.exists() and out.resolve() == source.resolve():
        raise InputError(f"{out}: the output would overwrite the input; choose another path")
    check_out_file(out, label=f"OUTPUT {out}")  # before the input is read
    if from_format == "official":
        ckpt = read_weights_file(source)
        if official_state_dict(ckpt) is None:
            raise InputError(f"{source}: not an official speech_mesh_rep checkpoint (no encoder.patch_embed.weight "
                             f"and encoder_audio.patch_embed.proj.weight); for a p3d checkpoint use --from p3d")
        save_checkpoint(from_official(ckpt, str(source)).checkpoint(), out)
    else:
        if official_state_dict(read_weights_file(source)) is not None:
            raise InputError(f"{source}: already an official checkpoint; use --from official")
        model = load_critic(source)
        if not isinstance(model, SpeechMeshModel):
            raise InputError(f"{source}: holds a {model.kind!r} critic; only a speech_mesh critic has an official layout")
        try:
            ckpt = official_checkpoint(model)
        except InputError as exc:
            raise InputError(f"{source}: {exc}") from None
        save_checkpoint(ckpt, out)
    return out


def _run(args: argparse.Namespace) -> int:
    out = convert(args.input, args.output, getattr(args, "from"), args.to)
    print(f"wrote {out} ({args.to} layout)")
    return 0


def register(subparsers: Any) -> None:
    from p3d.cli import file_path_argument, help_text

    p = subparsers.add_parser(
        "convert",
        help="convert a speech-mesh critic checkpoint between p3d's format and the official release's",
        description=help_text(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--from", required=True, choices=FORMATS, help="format of INPUT")
    p.add_argument("--to", required=True, choices=FORMATS, help="format to write")
    p.add_argument("input", type=Path, metavar="INPUT", help="checkpoint to read")
    p.add_argument("output", type=file_path_argument("out.pt"), metavar="OUTPUT", help="checkpoint to write")
    p.set_defaults(func=_run)
