"""``p3d render``: side-by-side video of vertex sequences with the audio muxed in.

    p3d render --seq GT.npy FaceFormer.npy FaceFormer+ours.npy --audio clip.wav \\
               --labels "GT,FaceFormer,+ours" --fps 30 --topology synth-face --out cmp.mp4

FLAME meshes: ``--topology FLAME_masks.pkl`` (or ``flame``) for the regions and ``--faces
FLAME_sample.ply`` for the triangles (FLAME's files are not shipped with p3d). ``p3d data demo``
prints a command that renders its demo data this way.

One panel per sequence (same camera, lights and colours; the label captioned above each panel), the
lips and the MTM lip vertices highlighted (``--highlight``), optionally the per-vertex error against
one sequence as a colour map (``--error-against GT``). H.264 mp4 with AAC audio
(:func:`p3d.viz.compare.render_comparison`).

Frame rates: ``--fps 60,30,30`` gives one rate per ``--seq`` (e.g. VOCASET's 60 fps ground truth beside
30 fps predictions); the video runs at the lowest and faster sequences keep every k-th frame (integer
ratios only, as the official VOCASET protocol downsamples). One value applies to all.

Frame counts: sequences of different lengths are cut to the shortest, with a warning; ``--strict``
refuses them instead, and also refuses an audio track whose duration differs from the video's by
more than one frame (without ``--strict`` that is a warning).

Exit codes: 0 written; 2 bad input (missing or unreadable files, vertex counts that differ or do
not match the topology, NaN, face indices out of range, bad labels, no runnable ffmpeg); 1 a blank
(black, uniform or empty) rendered frame, i.e. broken off-screen rendering, or an mp4 that ffmpeg failed
to encode or mux (its messages on stderr): nothing is written.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from p3d.cli import comma_items, file_path_argument, help_text
from p3d.errors import InputError

log = logging.getLogger(__name__)

EXIT_RENDER_FAILED = 1


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "render",
        help="render vertex sequences side by side to an mp4 with the audio muxed in",
        description=help_text(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--seq", type=Path, nargs="+", required=True, metavar="NPY",
                   help="vertex sequences (.npy, (T, V, 3) or (T, V*3)), one panel each, left to right")
    p.add_argument("--audio", type=Path, help="sound track (.wav or any format soundfile reads)")
    p.add_argument("--labels", help="comma-separated panel captions (default: the file names)")
    p.add_argument("--fps", default="30", help="frame rate of the sequences: one value, or one per --seq "
                                               "comma-separated, e.g. 60,30,30 (default 30)")
    p.add_argument("--topology", help="topology name or file (e.g. synth-face, flame, a .npz): regions to "
                                      "highlight, vertex count check, faces if it has them")
    p.add_argument("--faces", type=Path, help="triangles: a .ply mesh of the topology or an (F, 3) integer .npy")
    p.add_argument("--out", type=file_path_argument("out.mp4"), required=True, help="output .mp4")
    p.add_argument("--size", type=int, default=384, help="panel width = height in pixels (default 384)")
    p.add_argument("--highlight", default=HIGHLIGHT_DEFAULT,
                   help="comma-separated: lips, mtm (MTM lip vertices) or region names; 'none' for none "
                        "(default lips,mtm)")
    p.add_argument("--error-against", metavar="LABEL",
                   help="colour the other panels by per-vertex error against this label")
    p.add_argument("--strict", action="store_true",
                   help="refuse different frame counts and an audio track of another duration")
    p.add_argument("--no-progress", action="store_true",
                   help="hide the progress bar (hidden anyway when stderr is not a terminal)")
    p.set_defaults(func=run)


def load_faces(path: Path, n_vertices: int | None = None) -> np.ndarray:
    """(F, 3) triangles from a ``.ply`` mesh or an integer ``.npy`` array. ``n_vertices``: the sequences' vertex
    count, which a ``.ply`` mesh must have (another topology's triangles index vertices in range, e.g. a 468-vertex
    mesh's on a 5023-vertex sequence, and rendered a tangle of triangles with exit 0; ``p3d export --faces``
    refuses such a mesh too)."""
    if not path.is_file():
        raise InputError(f"--faces {path}: file not found")
    if path.suffix.lower() == ".ply":
        from p3d.io import load_ply

        verts, faces = load_ply(path)
        if n_vertices is not None and len(verts) != n_vertices:
            raise InputError(f"--faces {path}: the mesh has {len(verts)} vertices, the sequences {n_vertices}; "
                             "give the template mesh of the sequences' topology")
        return faces
    if path.suffix.lower() == ".npy":
        try:
            faces = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise InputError(f"--faces {path}: not a readable .npy array ({exc})") from None
        if faces.ndim != 2 or faces.shape[1] != 3:
            raise InputError(f"--faces {path}: expected an (F, 3) array, got shape {faces.shape}")
        return faces
    raise InputError(f"--faces {path}: expected a .ply or .npy file")


def parse_fps(text: str | float, n: int) -> list[float]:
    """``--fps``: one rate for all ``n`` sequences, or ``n`` comma-separated rates (frames per second). An empty
    item is refused: ``60,`` for two sequences was read as 60 fps for both, ``60,,30`` as ``60,30``."""
    from p3d.viz.compare import check_fps

    try:
        parts = comma_items(str(text), "--fps")
    except InputError:
        raise InputError(f"--fps {text!r}: an empty item; give one rate, or one per --seq file, e.g. 60,30") from None
    try:
        values = [float(x) for x in parts]
    except ValueError:
        raise InputError(f"--fps {text!r}: expected numbers, e.g. 30 or 60,30,30") from None
    if len(values) == 1:
        values = values * n
    if len(values) != n:
        raise InputError(f"--fps {text!r}: {len(values)} rates for {n} --seq files (give one, or one per file)")
    try:
        return [check_fps(v) for v in values]
    except InputError as exc:
        raise InputError(f"--fps: {exc}") from None


def to_common_rate(seqs: list[np.ndarray], rates: list[float], labels: list[str]) -> tuple[list[np.ndarray], float]:
    """Bring sequences to the lowest rate by keeping every k-th frame (k = rate / lowest, an integer).

    seqs: (T_i, V, 3) arrays at ``rates[i]`` fps. Returns the decimated arrays and the common rate.
    """
    low = min(rates)
    out = []
    for seq, rate, label in zip(seqs, rates, labels):
        k = rate / low
        if abs(k - round(k)) > 1e-6:
            raise InputError(f"--fps: {label} at {rate:g} fps is not an integer multiple of {low:g} fps; "
                             "resample it first")
        out.append(seq[:: int(round(k))])
    return out, low


#: ``--highlight`` when not given: names the topology lacks are skipped with a warning (a topology may define
#: no lips or MTM vertices); names given explicitly must exist (:func:`check_highlight`).
HIGHLIGHT_DEFAULT = "lips,mtm"


def check_highlight(names: list[str] | None, topology: Any) -> None:
    """Refuse explicit ``--highlight`` names that ``topology`` does not define (a typo rendered the whole video
    with nothing highlighted, exit 0). ``mtm`` is checked by :func:`p3d.viz.compare.highlight_spec`; no topology
    (``--faces`` alone) means nothing to check against."""
    if not names or topology is None:
        return
    unknown = [n for n in names if n != "mtm" and n not in topology.regions]
    if unknown:
        raise InputError(f"--highlight: topology {topology.name!r} has no region {', '.join(map(repr, unknown))} "
                         f"(regions: {', '.join(sorted(topology.regions)) or 'none'}; or mtm, none)")


def run(args: argparse.Namespace) -> int:
    from p3d.atomic import check_out_file
    from p3d.io import load_vertices
    from p3d.viz.compare import render_comparison, resolve_topology
    from p3d.viz.render import BlankFrameError, VideoWriteError, ffmpeg_exe

    ffmpeg_exe()  # before any rendering: without it no video can be written
    if args.topology is None and args.faces is None:
        raise InputError("give --topology (with faces) or --faces to render the meshes")
    check_out_file(args.out, ".mp4")  # before any rendering
    labels = None
    if args.labels is not None:
        labels = [x.strip() for x in args.labels.split(",")]
        if len(labels) != len(args.seq):
            raise InputError(f"--labels: {len(labels)} labels for {len(args.seq)} --seq files")
        if not all(labels) or len(set(labels)) != len(labels):  # the panels are keyed by label: one would be lost
            raise InputError(f"--labels: give each --seq file its own non-empty label, got {labels}")
    else:
        labels = [p.stem for p in args.seq]
        if len(set(labels)) != len(labels):
            raise InputError(f"--seq files share names {labels}: give --labels")
    if args.audio is not None and not args.audio.is_file():
        raise InputError(f"--audio {args.audio}: file not found")
    rates = parse_fps(args.fps, len(args.seq))  # before reading the sequences
    seqs = [load_vertices(p) for p in args.seq]
    seqs, args.fps = to_common_rate(seqs, rates, labels)
    n_verts = {str(p): s.shape[1] for p, s in zip(args.seq, seqs)}
    if len(set(n_verts.values())) > 1:
        raise InputError(f"--seq files have different vertex counts: {n_verts}")
    topology = resolve_topology(args.topology, seqs[0].shape[1]) if args.topology else None
    faces = load_faces(args.faces, seqs[0].shape[1]) if args.faces is not None else None
    lengths = {label: len(s) for label, s in zip(labels, seqs)}
    if args.strict and len(set(lengths.values())) > 1:
        raise InputError(f"--strict: the sequences have different frame counts {lengths}")
    n_frames = min(lengths.values())
    longest = max(lengths.values())
    if len(set(rates)) == 1 and n_frames and longest / n_frames > 1.9 and abs(longest / n_frames - round(longest / n_frames)) < 0.1:
        log.warning("frame counts %s differ by a factor of about %d: if the sequences have different frame "
                    "rates (e.g. 60 fps ground truth, 30 fps predictions), give one per file: --fps 60,30,...",
                    lengths, round(longest / n_frames))
    if args.audio is not None:
        import soundfile as sf

        try:
            info = sf.info(str(args.audio))
        except Exception as exc:
            raise InputError(f"--audio {args.audio}: not a readable audio file ({exc})") from None
        if info.frames == 0:  # before rendering: ffmpeg would mux no audio stream (write_mp4 refuses it)
            raise InputError(f"--audio {args.audio}: holds no samples")
        audio_s = info.duration
        video_s = n_frames / args.fps
        if abs(audio_s - video_s) > 1.0 / args.fps:
            msg = f"--audio lasts {audio_s:.3f} s but the {n_frames} frames at {args.fps:g} fps last {video_s:.3f} s"
            if args.strict:
                raise InputError(f"--strict: {msg}")
            log.warning("%s", msg)
    highlight = None if args.highlight.strip().lower() == "none" else \
        [x.strip() for x in args.highlight.split(",") if x.strip()]
    if args.highlight != HIGHLIGHT_DEFAULT:
        check_highlight(highlight, topology)
    try:
        out = render_comparison(dict(zip(labels, seqs)), args.out, fps=args.fps, faces=faces, audio=args.audio,
                                topology=topology, size=args.size, highlight=highlight,
                                error_against=args.error_against, truncate=True,
                                progress=not args.no_progress,
                                warn_audio_length=False)  # checked above, before rendering: warned once
    except BlankFrameError as exc:
        print(f"p3d render: error: {exc} (nothing written)", file=sys.stderr)
        return EXIT_RENDER_FAILED
    except VideoWriteError as exc:
        print(f"p3d render: error: {exc}", file=sys.stderr)
        return EXIT_RENDER_FAILED
    print(f"wrote {out} ({n_frames} frames at {args.fps:g} fps, {len(seqs)} panels"
          f"{', with audio' if args.audio else ', no audio'})")
    return 0
