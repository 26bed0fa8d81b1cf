"""The viseme inventory and the espeak-ng phoneme -> viseme map: the frame labels of the synthetic corpora.

Data-layer facts shared by the corpus generator (:mod:`p3d.synth.visemes`, which articulates them) and the
models that read frame labels (SelfTalk's lip-reading targets on the synthetic corpora), so that neither
reaches into the other's layer.

Viseme set: the 15 visemes of Oculus/Meta Lipsync (``sil PP FF TH DD kk CH SS nn RR aa E ih oh
ou``), which its documentation derives from the MPEG-4 viseme standard (ISO/IEC 14496-2 Annex C):
https://developers.meta.com/horizon/documentation/unity/audio-ovrlipsync-viseme-reference/ .
Example phonemes per viseme (Oculus reference): PP p b m; FF f v; TH th; DD t d; kk k g; CH tS dZ S;
SS s z; nn n l; RR r; aa A: (car); E e (bed); ih I (tip); oh oh (toe); ou ou (book).

Phonemes are espeak-ng's ASCII mnemonics as its PHONEME events report them (the en-us table and the
tables it inherits, ``en`` and ``base1``; see :data:`PHONEME_TO_VISEME`), e.g. ``p b m f v T D s z S
Z tS dZ r l n N k g h w j a aI aU eI i: I E a# @ 3: V u: U O: oU OI A: 0 _``. Choices beyond the
Oculus table, by place of articulation and lip posture: ``N`` (ng) and the velars/uvulars -> kk;
``w`` -> ou (rounded); ``j`` and the ``;`` glide -> ih; ``?`` (glottal stop, as in "button") -> DD;
the r-coloured vowels ``3 3: r-`` -> RR; ``@L`` (syllabic l) -> nn; reduced vowels ``@ @2 @- a#`` ->
E (mid, neutral opening); ``V`` (strut), ``a`` (trap), ``0`` (en-us "hot"), ``A:``, ``A@`` -> aa;
``h`` has no lip shape of its own (MPEG-4 lists none) and is labelled E but made nearly transparent
(dominance 0.1) so it takes its neighbours' shape. Pauses (``_ _: _! ||`` ...) -> sil. Unknown
symbols fall back (:func:`viseme_of`): stress marks stripped, then trailing modifiers (``# : 2 - ;``
...), then vowel-like -> E, pause-like -> sil, anything else -> DD.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from p3d.errors import InputError

log = logging.getLogger(__name__)

VISEMES: tuple[str, ...] = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR",
                            "aa", "E", "ih", "oh", "ou")
VISEME_INDEX: dict[str, int] = {v: i for i, v in enumerate(VISEMES)}
PAUSE = "_"


def _map(viseme: str, *phonemes: str) -> dict[str, str]:
    return {p: viseme for p in phonemes}


#: espeak-ng mnemonic -> viseme, for every phoneme of the en-us table chain (en-us, en, base1).
PHONEME_TO_VISEME: dict[str, str] = {
    **_map("sil", "_", "_:", "_!", "_::", "||", "_^_", "_X1", "_|", "_;_", ""),
    **_map("PP", "p", "b", "m", "m-"),
    **_map("FF", "f", "v", "v#", "B"),
    **_map("TH", "T", "D"),
    **_map("DD", "t", "d", "t#", "t2", "d#", "t[", "d[", "*", "?", "c", "J"),
    **_map("kk", "k", "g", "N", "N-", "x", "Q", "Q^", 'Q"', "q", "X", "C", "#X1"),
    **_map("CH", "tS", "dZ", "S", "Z", "tS;", "dZ;", "s.", "z.", "S;", "Z;", "J^"),
    **_map("SS", "s", "z", "z#", "z/2", "s;", "z;"),
    **_map("nn", "n", "n-", "n.", "n^", "l", "l-", "L", "l/", "l/2", "l/3", "l^", "L/", "l.", "l#", "@L"),
    **_map("RR", "r", "r-", "r/", "R", "R2", "R3", "r.", "**", 'r"', "3", "3:", "VR"),
    **_map("aa", "a", "aa", "a2", "A:", "A@", "A#", "A~", "0", "0#", "02", "V", "aI", "aU",
           "aI@", "aI3", "aU@", "a#2"),
    **_map("E", "E", "e", "E2", "E#", "e:", "e#", "eI", "e@", "@", "@2", "@5", "@-", "@#", "a#", "h"),
    **_map("ih", "i", "i:", "I", "I2", "I#", "I2#", "IR", "i@", "i@3", "j", ";"),
    **_map("oh", "o", "O", "O:", "O2", "O@", "o@", "o:", "OI", "oU", "oU#", "O~"),
    **_map("ou", "u", "u:", "U", "U@", "w", "w#"),
}


_STRESS = "',%="
_MODIFIERS = "#:0123456789-;/.^[~\"!"
_VOWEL_START = set("aeiouAEIOUV03@")


def _check_symbol(symbol: object) -> str:
    """``symbol`` if it is text (``str``, numpy's ``str_`` too); InputError otherwise (None, a number or bytes
    was an AttributeError / TypeError from the string methods)."""
    if not isinstance(symbol, str):
        raise InputError(f"phoneme: expected an espeak-ng symbol (text), got {type(symbol).__name__} {symbol!r}")
    return symbol


def canonical_phoneme(symbol: str) -> str | None:
    """The :data:`PHONEME_TO_VISEME` key a symbol stands for: itself, else without leading stress marks
    (``' , % =``), else with trailing modifiers (``# : digits - ; / . ^ [ ~ " !``) stripped one by one;
    ``None`` when nothing matches."""
    symbol = _check_symbol(symbol)
    if symbol in PHONEME_TO_VISEME:
        return symbol
    sym = symbol.strip().lstrip(_STRESS)
    while sym:
        if sym in PHONEME_TO_VISEME:
            return sym
        if sym[-1] not in _MODIFIERS:
            return None
        sym = sym[:-1]
    return None


def viseme_of(phoneme: str) -> str:
    """The viseme of an espeak-ng mnemonic (fallbacks for unknown symbols: module docstring)."""
    known = canonical_phoneme(phoneme)
    if known is not None:
        return PHONEME_TO_VISEME[known]
    sym = phoneme.strip().lstrip(_STRESS).rstrip(_MODIFIERS)
    if not sym or sym.startswith("_") or set(sym) <= set("|"):
        return "sil"
    fallback = "E" if sym[0] in _VOWEL_START else "DD"
    log.debug("unknown phoneme %r -> %s", phoneme, fallback)
    return fallback


def viseme_ids(phonemes: Sequence[str]) -> np.ndarray:
    """Viseme index (into :data:`VISEMES`) of each phoneme symbol. A single string is refused (it was read as
    one symbol per character: ``"abc"`` gave three visemes); so is anything not iterable."""
    if isinstance(phonemes, (str, bytes)):
        raise InputError(f"phonemes: expected a sequence of phoneme symbols, got the single string {phonemes!r}")
    try:
        phonemes = list(phonemes)
    except TypeError:
        raise InputError(f"phonemes: expected a sequence of phoneme symbols, got {type(phonemes).__name__}") from None
    return np.asarray([VISEME_INDEX[viseme_of(p)] for p in phonemes], dtype=np.int64)
