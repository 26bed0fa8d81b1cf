"""Mesh families (topologies): vertex count, faces, named vertex regions and special vertices.

A :class:`Topology` is everything the metrics need to know about a mesh family:

- ``n_vertices``: V, the number of vertices of every frame;
- ``faces``: (F, 3) int triangles, optional (needed only for rendering);
- ``regions``: named vertex index lists, e.g. ``lips`` (LVE, lip intensity) and ``upper_face`` (FDD);
- ``mtm_upper`` / ``mtm_lower``: the upper- and lower-lip centre vertices whose distance MTM tracks
  (paper Fig. S3);
- ``eye_pair``: two vertices whose distance normalises lip intensity across topologies (Fig. S2).

Built in: :func:`flame` (FLAME, 5023 vertices, the topology of VOCASET, LRS3-3D and MEAD-3D). Its
``lips`` region is the 254-entry list hard-coded in the paper's official evaluation code (250 unique
vertices; 1590, 1593, 2726 and 2729 appear twice). The duplicates are kept on purpose: they change
nothing for max-based LVE but they weight lip intensity (a mean over the list) exactly as the
official code does. MTM uses FLAME vertices 3531 (upper) and 3504 (lower) as the official code.

From user files: :func:`flame` with ``FLAME_masks.pkl`` (regions) and ``FLAME_sample.ply`` (faces);
:func:`biwi` from CodeTalker's ``lve.txt`` / ``fdd.txt``; :func:`Topology.load_npz` for any mesh
family saved with :meth:`Topology.save_npz`; :func:`load_topology` picks one from a name or a path.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from p3d.errors import InputError

#: The 254-entry FLAME lip list of the official evaluation code (``mouth_map``), duplicates kept.
FLAME_LIPS: tuple[int, ...] = (
    1576, 1577, 1578, 1579, 1580, 1581, 1582, 1583, 1590, 1590, 1591, 1593, 1593,
    1657, 1658, 1661, 1662, 1663, 1667, 1668, 1669, 1670, 1686, 1687, 1691, 1693,
    1694, 1695, 1696, 1697, 1700, 1702, 1703, 1704, 1709, 1710, 1711, 1712, 1713,
    1714, 1715, 1716, 1717, 1718, 1719, 1720, 1721, 1722, 1723, 1728, 1729, 1730,
    1731, 1732, 1733, 1734, 1735, 1736, 1737, 1738, 1740, 1743, 1748, 1749, 1750,
    1751, 1758, 1763, 1765, 1770, 1771, 1773, 1774, 1775, 1776, 1777, 1778, 1779,
    1780, 1781, 1782, 1787, 1788, 1789, 1791, 1792, 1793, 1794, 1795, 1796, 1801,
    1802, 1803, 1804, 1826, 1827, 1836, 1846, 1847, 1848, 1849, 1850, 1865, 1866,
    2712, 2713, 2714, 2715, 2716, 2717, 2718, 2719, 2726, 2726, 2727, 2729, 2729,
    2774, 2775, 2778, 2779, 2780, 2784, 2785, 2786, 2787, 2803, 2804, 2808, 2810,
    2811, 2812, 2813, 2814, 2817, 2819, 2820, 2821, 2826, 2827, 2828, 2829, 2830,
    2831, 2832, 2833, 2834, 2835, 2836, 2837, 2838, 2839, 2840, 2843, 2844, 2845,
    2846, 2847, 2848, 2849, 2850, 2851, 2852, 2853, 2855, 2858, 2863, 2864, 2865,
    2866, 2869, 2871, 2873, 2878, 2879, 2880, 2881, 2882, 2883, 2884, 2885, 2886,
    2887, 2888, 2889, 2890, 2891, 2892, 2894, 2895, 2896, 2897, 2898, 2899, 2904,
    2905, 2906, 2907, 2928, 2929, 2934, 2935, 2936, 2937, 2938, 2939, 2948, 2949,
    3503, 3504, 3506, 3509, 3511, 3512, 3513, 3531, 3533, 3537, 3541, 3543, 3546,
    3547, 3790, 3791, 3792, 3793, 3794, 3795, 3796, 3797, 3798, 3799, 3800, 3801,
    3802, 3803, 3804, 3805, 3806, 3914, 3915, 3916, 3917, 3918, 3919, 3920, 3921,
    3922, 3923, 3924, 3925, 3926, 3927, 3928,
)
FLAME_N_VERTICES = 5023
FLAME_MTM_UPPER = 3531
FLAME_MTM_LOWER = 3504
#: FLAME masks whose union is the upper face for FDD (CodeTalker / the official ``test.py``).
FLAME_UPPER_FACE_MASKS: tuple[str, ...] = ("eye_region", "forehead", "nose")
BIWI_N_VERTICES = 23370


#: The entries of a topology ``.npz`` besides its ``region_<name>`` arrays (see :meth:`Topology.save_npz`).
_NPZ_KEYS = frozenset({"n_vertices", "name", "faces", "mtm_vertices", "eye_pair"})


def vertex_indices(idx: object, n_vertices: int, name: str, *, ndim: int | None = None, non_empty: bool = False,
                   whole_floats: bool = True) -> np.ndarray:
    """``idx`` as an int64 array of vertex indices in [0, ``n_vertices``), a copy; any other input is an
    :class:`InputError` whose message starts with ``name`` (the argument, or file and entry, that holds them).

    The one check of vertex indices (topology regions, special vertices and faces; the metrics' index lists,
    :func:`p3d.metrics._checks.as_indices`; exported faces, :func:`p3d.export.export_sequence`). Refused: a ragged
    nested sequence; a boolean array (a per-vertex mask, whose True/False would read as vertices 1/0); another shape
    than ``ndim`` dimensions (None: any) or, with ``non_empty``, no index; non-numeric (text, objects) or complex
    entries; floats with a fraction, NaN or inf (a cast truncates 1.5 to vertex 1 and makes NaN an arbitrary
    integer), and with ``whole_floats=False`` any float; an index < 0 or >= ``n_vertices``. Integer arrays and
    (with ``whole_floats``) floats without a fraction (2.0 is vertex 2) pass.
    """
    try:
        arr = np.asarray(idx)
    except ValueError:  # numpy's "inhomogeneous shape"
        raise InputError(f"{name}: expected vertex indices, got a ragged nested sequence "
                         f"(rows of different lengths)") from None
    if arr.dtype.kind == "b":
        raise InputError(f"{name} must hold integer vertex indices, not a boolean mask (dtype bool; "
                         f"give np.flatnonzero(mask))")
    if (ndim is not None and arr.ndim != ndim) or (non_empty and arr.size == 0):
        what = ("non-empty " if non_empty else "") + ("" if ndim is None else f"{ndim}-D ")
        raise InputError(f"{name}: expected a {what}list of vertex indices, got shape {arr.shape}")
    if arr.dtype.kind not in "iuf":
        what = "complex" if arr.dtype.kind == "c" else "non-numeric"
        raise InputError(f"{name} must hold integer vertex indices, got {what} entries (dtype {arr.dtype})")
    if arr.dtype.kind == "f":
        if not whole_floats:
            raise InputError(f"{name} must hold integer vertex indices, got dtype {arr.dtype} (integers only)")
        if not np.all(np.isfinite(arr) & (arr == np.round(arr))):
            raise InputError(f"{name} must hold integer vertex indices, got non-integer values (a fraction, NaN "
                             f"or inf; dtype {arr.dtype})")
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())  # before the cast: a huge float or uint64 would wrap in int64
        if lo < 0 or hi >= n_vertices:
            raise InputError(f"{name}: vertex indices in [{lo}, {hi}] lie outside the range "
                             f"[0, {n_vertices - 1}] of a {n_vertices}-vertex mesh")
    return arr.astype(np.int64)


@dataclasses.dataclass(frozen=True)
class Topology:
    """A mesh family. Index arrays are int64 and validated against ``n_vertices``."""

    name: str
    n_vertices: int
    regions: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    mtm_upper: int | None = None
    mtm_lower: int | None = None
    eye_pair: tuple[int, int] | None = None
    faces: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.n_vertices
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, float, np.integer, np.floating)) \
                or not np.isfinite(n) or int(n) != n or n <= 0:
            raise InputError(f"topology {self.name!r}: n_vertices must be a positive integer, got {n!r}")
        object.__setattr__(self, "n_vertices", int(n))
        n = self.n_vertices
        clean: dict[str, np.ndarray] = {}
        about = f"topology {self.name!r}: "
        for key, idx in self.regions.items():
            clean[key] = vertex_indices(idx, n, f"{about}region {key!r}", ndim=1)
        object.__setattr__(self, "regions", clean)
        for label in ("mtm_upper", "mtm_lower"):
            value = getattr(self, label)
            if value is not None:
                object.__setattr__(self, label, int(vertex_indices([value], n, about + label)[0]))
        if self.eye_pair is not None:
            pair = vertex_indices(self.eye_pair, n, about + "eye_pair")
            if pair.shape != (2,):
                raise InputError(f"topology {self.name!r}: eye_pair must be two vertex indices")
            object.__setattr__(self, "eye_pair", (int(pair[0]), int(pair[1])))
        if self.faces is not None:
            faces = vertex_indices(self.faces, n, about + "faces")
            if faces.ndim != 2 or faces.shape[1] != 3:
                raise InputError(f"topology {self.name!r}: faces must be (F, 3), got {faces.shape}")
            object.__setattr__(self, "faces", faces)

    # -- regions ---------------------------------------------------------------------------
    def region(self, name: str) -> np.ndarray:
        """The vertex indices of region ``name`` (clear error if the topology lacks it)."""
        try:
            return self.regions[name]
        except KeyError:
            have = ", ".join(sorted(self.regions)) or "none"
            raise InputError(
                f"topology {self.name!r} has no region {name!r} (regions: {have}); "
                "give a topology file that defines it (see `p3d eval --help`, --topology)"
            ) from None

    @property
    def lips(self) -> np.ndarray:
        return self.region("lips")

    @property
    def upper_face(self) -> np.ndarray:
        return self.region("upper_face")

    def mtm_vertices(self) -> tuple[int, int]:
        """(upper, lower) lip-centre vertices for MTM; error if the topology does not define them."""
        if self.mtm_upper is None or self.mtm_lower is None:
            raise InputError(f"topology {self.name!r} defines no MTM lip vertices (mtm_upper/mtm_lower)")
        return self.mtm_upper, self.mtm_lower

    def eye_distance(self, vertices: np.ndarray) -> float:
        """Mean distance between the two ``eye_pair`` vertices over frames; vertices (T, V, 3) or (V, 3).

        Falls back to the centroids of ``left_eye_region`` / ``right_eye_region`` when no pair is set.
        """
        v = np.asarray(vertices, dtype=np.float64)
        n = self.n_vertices
        if v.ndim in (1, 2) and v.shape[-1] == 3 * n:  # flattened (V*3,) or (T, V*3)
            v = v.reshape(-1, n, 3)
        elif v.ndim == 2:
            v = v[None]
        if v.ndim != 3 or v.shape[1:] != (n, 3) or len(v) == 0:
            raise InputError(f"topology {self.name!r}: eye distance needs vertices of shape (T, {n}, 3) or "
                             f"({n}, 3), got {np.shape(vertices)}")
        if self.eye_pair is not None:
            a, b = v[:, self.eye_pair[0]], v[:, self.eye_pair[1]]
        elif {"left_eye_region", "right_eye_region"} <= set(self.regions):
            a = v[:, self.regions["left_eye_region"]].mean(axis=1)
            b = v[:, self.regions["right_eye_region"]].mean(axis=1)
        else:
            raise InputError(f"topology {self.name!r} defines no eye pair for normalisation")
        return float(np.linalg.norm(a - b, axis=-1).mean())

    def with_regions(self, **regions: np.ndarray) -> Topology:
        """A copy with regions added or replaced."""
        merged = dict(self.regions)
        merged.update(regions)
        return dataclasses.replace(self, regions=merged)

    # -- files ---------------------------------------------------------------------------
    def save_npz(self, path: str | os.PathLike[str]) -> None:
        """Save as ``.npz`` (readable with ``allow_pickle=False``); see :meth:`load_npz`."""
        from p3d.atomic import atomic_open

        arrays: dict[str, np.ndarray] = {
            "name": np.asarray(self.name),
            "n_vertices": np.asarray(self.n_vertices, dtype=np.int64),
        }
        for key, idx in self.regions.items():
            arrays[f"region_{key}"] = idx
        if self.mtm_upper is not None and self.mtm_lower is not None:
            arrays["mtm_vertices"] = np.asarray([self.mtm_upper, self.mtm_lower], dtype=np.int64)
        if self.eye_pair is not None:
            arrays["eye_pair"] = np.asarray(self.eye_pair, dtype=np.int64)
        if self.faces is not None:
            arrays["faces"] = self.faces
        with atomic_open(path, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    @classmethod
    def load_npz(cls, path: str | os.PathLike[str]) -> Topology:
        """Load a topology saved by :meth:`save_npz`.

        Keys: ``n_vertices`` (int), optional ``name``, ``faces`` (F, 3), ``mtm_vertices`` (2,),
        ``eye_pair`` (2,), and ``region_<name>`` index arrays; other entries are not read.
        """
        from p3d.io import load_npz, not_regular_reason

        path = Path(path)
        reason = not_regular_reason(path)  # before anything opens it: a named pipe would block it
        if reason is not None:
            raise InputError(f"{path}: topology file {reason}")
        # only the entries a topology has, each size-checked before it is decompressed (p3d.io.load_npz)
        d = load_npz(path, "topology .npz", lambda k: k in _NPZ_KEYS or k.startswith("region_"))
        if "n_vertices" not in d:
            raise InputError(f"{path}: topology .npz lacks the 'n_vertices' entry")
        if d["n_vertices"].size != 1:
            raise InputError(f"{path}: 'n_vertices' must be one number, got shape {d['n_vertices'].shape}")
        for key in ("mtm_vertices", "eye_pair"):
            if key in d and d[key].shape != (2,):
                raise InputError(f"{path}: {key!r} must hold two vertex indices, got shape {d[key].shape}")
        # an empty metric region would leave LVE (lips) or FDD (upper_face) nothing to average over; refused here,
        # by file name, as flame() refuses empty FLAME masks
        empty = [k for k in ("lips", "upper_face") if f"region_{k}" in d and d[f"region_{k}"].size == 0]
        if empty:
            raise InputError(f"{path}: topology region(s) {empty} hold no vertex indices (LVE averages over the "
                             f"lips, FDD over the upper face)")
        mtm = d.get("mtm_vertices")
        eye = d.get("eye_pair")
        return cls(
            name=str(d["name"]) if "name" in d else path.stem,
            n_vertices=d["n_vertices"].reshape(()).item(),
            regions={k[len("region_"):]: v for k, v in d.items() if k.startswith("region_")},
            mtm_upper=None if mtm is None else int(mtm[0]),
            mtm_lower=None if mtm is None else int(mtm[1]),
            eye_pair=None if eye is None else (int(eye[0]), int(eye[1])),
            faces=d.get("faces"),
        )


def flame(masks: str | os.PathLike[str] | None = None, ply: str | os.PathLike[str] | None = None) -> Topology:
    """The FLAME topology (5023 vertices).

    Args:
        masks: optional path to ``FLAME_masks.pkl`` (the FLAME vertex masks). Its entries become
            regions, and ``upper_face`` = ``eye_region`` ∪ ``forehead`` ∪ ``nose`` (the FDD region of
            CodeTalker and the official code). ``lips`` stays the official 254-entry list; the mask
            file's own list is kept as ``lips_mask``.
        ply: optional path to ``FLAME_sample.ply``, read for the triangle faces.
    """
    regions: dict[str, np.ndarray] = {"lips": np.asarray(FLAME_LIPS, dtype=np.int64)}
    if masks is not None:
        from p3d.io import load_pickle

        data = load_pickle(masks)
        if not isinstance(data, Mapping):
            raise InputError(f"{masks}: expected a dict of vertex masks, found {type(data).__name__}")
        for key, value in data.items():
            try:
                arr = np.asarray(value).reshape(-1)
            except (ValueError, TypeError):  # ragged nested lists and the like
                raise InputError(f"{masks}: mask {key!r} is not a list of vertex indices (ragged)") from None
            regions["lips_mask" if key == "lips" else str(key)] = arr
        missing = [k for k in FLAME_UPPER_FACE_MASKS if k not in data]
        if missing:
            raise InputError(f"{masks}: FLAME masks lack {missing} (needed for the upper face)")
        empty = [k for k in FLAME_UPPER_FACE_MASKS if np.asarray(data[k]).size == 0]
        if empty:  # an empty union would leave FDD (and upper_face_motion) nothing to average over
            raise InputError(f"{masks}: FLAME mask(s) {empty} hold no vertex indices (FDD's upper face is the union "
                             f"of {', '.join(FLAME_UPPER_FACE_MASKS)})")
        regions["upper_face"] = np.unique(np.concatenate([np.asarray(data[k]).reshape(-1) for k in FLAME_UPPER_FACE_MASKS]))
    faces = None
    if ply is not None:
        from p3d.io import load_ply

        verts, faces = load_ply(ply)
        if len(verts) != FLAME_N_VERTICES:
            raise InputError(f"{ply}: FLAME ply has {len(verts)} vertices, expected {FLAME_N_VERTICES}")
    topo = Topology(
        name="flame",
        n_vertices=FLAME_N_VERTICES,
        regions=regions,
        mtm_upper=FLAME_MTM_UPPER,
        mtm_lower=FLAME_MTM_LOWER,
        faces=faces,
    )
    return topo


def read_index_list(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a BIWI/CodeTalker region file: integers separated by commas and/or whitespace."""
    from p3d.io import not_regular_reason

    path = Path(path)
    reason = not_regular_reason(path)  # before reading: a named pipe would block read_text
    if reason is not None:
        raise InputError(f"{path}: region file {reason}")
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError(f"{path}: region file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read region file ({exc})") from None
    tokens = text.replace(",", " ").split()
    if not tokens:
        raise InputError(f"{path}: region file is empty")
    try:
        return np.asarray([int(t) for t in tokens], dtype=np.int64)
    except ValueError as exc:
        raise InputError(f"{path}: region file holds a non-integer entry ({exc})") from None


def biwi(
    lve: str | os.PathLike[str],
    fdd: str | os.PathLike[str] | None = None,
    n_vertices: int = BIWI_N_VERTICES,
) -> Topology:
    """The BIWI topology from CodeTalker's region files ``lve.txt`` (lips) and ``fdd.txt`` (upper face).

    BIWI has no MTM lip vertices in the official code, so ``mtm_upper``/``mtm_lower`` stay unset.
    """
    regions = {"lips": read_index_list(lve)}
    if fdd is not None:
        regions["upper_face"] = read_index_list(fdd)
    return Topology(name="biwi", n_vertices=n_vertices, regions=regions)


def load_topology(spec: str | os.PathLike[str] | Topology) -> Topology:
    """A topology from a name or a path.

    - ``"flame"``: built-in FLAME (lips and MTM vertices; no upper face, no faces);
    - a ``.pkl`` file: ``FLAME_masks.pkl`` → FLAME with all mask regions (adds ``upper_face``);
    - a ``.npz`` file: a topology saved by :meth:`Topology.save_npz`;
    - a folder holding ``lve.txt`` (and optionally ``fdd.txt``): BIWI;
    - any other name: a topology registered by the package (e.g. the built-in synthetic face).
    """
    if isinstance(spec, Topology):
        return spec
    text = str(spec)
    if text.lower() == "flame":
        return flame()
    path = Path(text)
    if path.suffix == ".pkl":
        return flame(masks=path)
    if path.suffix == ".npz":
        return Topology.load_npz(path)
    if path.is_dir():
        if not (path / "lve.txt").exists():
            raise InputError(f"{path}: a topology folder must hold lve.txt (and optionally fdd.txt)")
        fdd = path / "fdd.txt"
        return biwi(path / "lve.txt", fdd if fdd.exists() else None)
    builtin = _builtin_topologies()
    if text in builtin:
        return builtin[text]()
    raise InputError(
        f"unknown topology {text!r}: use 'flame', a FLAME_masks.pkl, a topology .npz, a folder with "
        f"lve.txt/fdd.txt, or one of: {', '.join(sorted(builtin)) or '(none built in)'}"
    )


#: Modules that provide named topologies as a ``TOPOLOGIES`` mapping (name -> zero-argument callable).
#: They are imported by name only when a name is looked up, so this low module imports nothing
#: from the layers above it (the synthetic face builds its :class:`Topology` from this module).
TOPOLOGY_PROVIDERS: tuple[str, ...] = ("p3d.synth.face",)


def _builtin_topologies() -> dict[str, object]:
    """Named topologies shipped with p3d: FLAME plus those of :data:`TOPOLOGY_PROVIDERS`."""
    import importlib  # noqa: PLC0415

    out: dict[str, object] = {"flame": flame}
    for module_name in TOPOLOGY_PROVIDERS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        out.update(getattr(module, "TOPOLOGIES", {}))
    return out
