"""Sentences for the synthetic corpora, generated from a word list by seed.

The word list (``wordlist.txt``, next to this module) was composed for p3d: about 2100 common
English words (nouns, past-tense verbs, adjectives, adverbs, prepositions, names, pronouns,
determiners, conjunctions), not taken from any sentence corpus. Each line is
``word<TAB>part of speech<TAB>espeak-ng phonemes`` (the phonemes of the word spoken on its own, as
:func:`p3d.synth.speech.transcribe` reports them; :func:`rebuild_wordlist` regenerates that column).

:func:`make_sentences` builds simple declarative sentences from templates (subject, verb, object,
then optional adjectives, an adverb, prepositional phrases and a second clause), with an exact
word count drawn uniformly from ``[min_words, max_words]``. Phonetic coverage: sentence ``i``
contains at least one word with a phoneme of group ``PHONEME_GROUPS[(offset + i) % G]`` (offset
drawn from the seed), so any ``G`` consecutive sentences cover every group, in particular the
bilabials /p b m/, labiodentals /f v/, rounded and open vowels that make lip shapes readable.
"""
from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from p3d.errors import InputError

WORDLIST_PATH = Path(__file__).with_name("wordlist.txt")

#: Phoneme groups (espeak-ng English symbols, see :mod:`p3d.synth.speech`) that every corpus must
#: cover. Groups may overlap (``aU`` is both open and rounded).
PHONEME_GROUPS: Mapping[str, frozenset[str]] = {
    "bilabial": frozenset({"p", "b", "m"}),
    "labiodental": frozenset({"f", "v"}),
    "rounded_vowel": frozenset({"u:", "U", "U@", "oU", "O:", "O", "O2", "0", "OI", "O@", "o@", "aU"}),
    "open_vowel": frozenset({"a", "aa", "A:", "A@", "aI", "aI@", "aI3", "aU"}),
    "dental": frozenset({"T", "D"}),
    "postalveolar": frozenset({"S", "Z", "tS", "dZ"}),
    "alveolar": frozenset({"t", "d", "n", "s", "z", "l", "t#", "t2", "n-"}),
    "velar": frozenset({"k", "g", "N"}),
    "approximant": frozenset({"r", "w", "j", ";"}),
    "glottal": frozenset({"h"}),
    "front_vowel": frozenset({"i:", "i", "I", "I2", "I#", "E", "eI", "e@", "i@", "i@3"}),
    "central_vowel": frozenset({"@", "@2", "@-", "@L", "3", "3:", "V", "a#", "r-"}),
}
VOWELS: frozenset[str] = frozenset().union(*(PHONEME_GROUPS[g] for g in (
    "rounded_vowel", "open_vowel", "front_vowel", "central_vowel")))

POS_TAGS = ("det", "pron", "name", "noun", "verb", "adj", "adv", "prep", "conj")
_CONTENT = ("noun", "verb", "adj", "adv", "name")
_MAX_ADJ_PER_NP = 2
_MAX_PP = 2


@dataclasses.dataclass(frozen=True)
class Word:
    """One word-list entry: spelling, part of speech, espeak-ng phonemes (stress-free)."""

    text: str
    pos: str
    phonemes: tuple[str, ...]


@functools.lru_cache(maxsize=4)
def load_wordlist(path: str | Path = WORDLIST_PATH) -> tuple[Word, ...]:
    """Read ``word<TAB>pos<TAB>phonemes`` lines (``#`` comments). Raises :class:`InputError`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"word list {path} does not exist")
    words = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) not in (2, 3) or parts[1] not in POS_TAGS or not parts[0].strip():
            raise InputError(f"word list {path}, line {n}: expected 'word<TAB>pos<TAB>phonemes' "
                             f"with pos in {POS_TAGS}, got {line!r}")
        words.append(Word(parts[0], parts[1], tuple(parts[2].split()) if len(parts) == 3 else ()))
    if not words:
        raise InputError(f"word list {path} is empty")
    return tuple(words)


def rebuild_wordlist(path: str | Path = WORDLIST_PATH) -> None:
    """Re-transcribe the word list with espeak-ng (en-us) and rewrite it atomically.

    Keeps the comment header and the word/pos columns; replaces the phoneme column. Run it after
    editing the list or upgrading espeak-ng.
    """
    from p3d.atomic import write_text
    from p3d.synth.speech import transcribe

    path = Path(path)
    header = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.startswith("#")]
    entries = load_wordlist.__wrapped__(path)
    phonemes = transcribe([w.text for w in entries], voice="en-us")
    lines = header + [f"{w.text}\t{w.pos}\t{' '.join(p)}" for w, p in zip(entries, phonemes)]
    write_text(path, "\n".join(lines) + "\n")
    load_wordlist.cache_clear()


def word_groups(word: Word) -> frozenset[str]:
    """Names of the :data:`PHONEME_GROUPS` that ``word``'s phonemes touch."""
    ph = set(word.phonemes)
    return frozenset(g for g, members in PHONEME_GROUPS.items() if ph & members)


def phoneme_coverage(sentences: Sequence[str], path: str | Path = WORDLIST_PATH) -> Counter[str]:
    """How many sentences contain each phoneme group (words looked up in the word list)."""
    lexicon: dict[str, frozenset[str]] = {}
    for w in load_wordlist(path):
        lexicon[w.text.lower()] = lexicon.get(w.text.lower(), frozenset()) | word_groups(w)
    counts: Counter[str] = Counter({g: 0 for g in PHONEME_GROUPS})
    for s in sentences:
        groups: set[str] = set()
        for token in s.replace(",", " ").replace(".", " ").split():
            groups |= lexicon.get(token.lower(), frozenset())
        counts.update(groups)
    return counts


def make_sentences(n: int, seed: int, min_words: int = 5, max_words: int = 12,
                   path: str | Path = WORDLIST_PATH) -> list[str]:
    """``n`` sentences of ``min_words``..``max_words`` words, deterministic in ``seed``.

    See the module docstring for the templates and the phonetic-coverage rule.
    """
    for name, value in (("n", n), ("seed", seed), ("min_words", min_words), ("max_words", max_words)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise InputError(f"make_sentences: {name} must be an integer, got {value!r}")
    if n < 0:
        raise InputError(f"make_sentences: n must be >= 0, got {n}")
    if not 3 <= min_words <= max_words <= 40:
        raise InputError(f"make_sentences: need 3 <= min_words <= max_words <= 40, "
                         f"got {min_words}, {max_words}")
    words = load_wordlist(path)
    by_pos: dict[str, list[Word]] = {p: [w for w in words if w.pos == p] for p in POS_TAGS}
    missing = [p for p in POS_TAGS if p != "conj" and not by_pos[p]]
    if missing:
        raise InputError(f"word list {path} has no words of part(s) of speech {missing}")
    groups = list(PHONEME_GROUPS)
    rng = np.random.default_rng(seed)
    offset = int(rng.integers(len(groups)))
    out = []
    for i in range(n):
        length = int(rng.integers(min_words, max_words + 1))
        slots = _template(rng, length, has_conj=bool(by_pos["conj"]))
        out.append(_fill(rng, slots, by_pos, groups[(offset + i) % len(groups)]))
    return out


@functools.lru_cache(maxsize=64)
def _group_index(words: tuple[Word, ...]) -> dict[str, list[Word]]:
    """Phoneme group -> the words (in list order) that contain one of its phonemes."""
    index: dict[str, list[Word]] = {g: [] for g in PHONEME_GROUPS}
    for w in words:
        for g in word_groups(w):
            index[g].append(w)
    return index


def _template(rng: np.random.Generator, length: int, has_conj: bool) -> list[str]:
    """A list of exactly ``length`` slots (POS tags; ``","`` for a comma)."""
    for _ in range(1000):
        bases = [b for b in (["SUBJ", "verb", "adv"], ["SUBJ", "verb", "det", "noun"],
                             ["det", "noun", "verb", "det", "noun"], ["SUBJ", "verb", "name"])
                 if len(b) <= length]
        slots = list(bases[int(rng.integers(len(bases)))])
        while len(slots) < length:
            remaining = length - len(slots)
            options = []
            for i, s in enumerate(slots):
                if s == "det" and _adj_run(slots, i + 1) < _MAX_ADJ_PER_NP:
                    options.append(("adj", i + 1))
            if "adv" not in slots:
                options.append(("adv", len(slots)))
            if remaining >= 3 and slots.count("prep") < _MAX_PP:
                options.append(("pp", len(slots)))
            if remaining >= 5 and has_conj and "conj" not in slots:
                options.append(("clause", len(slots)))
            if not options:
                break
            kind, at = options[int(rng.integers(len(options)))]
            if kind == "adj":
                slots.insert(at, "adj")
            elif kind == "adv":
                slots.append("adv")
            elif kind == "pp":
                slots += ["prep", "det", "noun"]
            else:
                slots += [",", "conj", "SUBJ", "verb", "det", "noun"]
        if _n_words(slots) == length:
            return slots
    raise RuntimeError(f"could not build a sentence template of {length} words")  # pragma: no cover


def _adj_run(slots: list[str], i: int) -> int:
    n = 0
    while i < len(slots) and slots[i] == "adj":
        n, i = n + 1, i + 1
    return n


def _n_words(slots: list[str]) -> int:
    return sum(s != "," for s in slots)


def _fill(rng: np.random.Generator, slots: list[str], by_pos: dict[str, list[Word]], group: str) -> str:
    """Draw a word per slot (no repeats), one content word from phoneme group ``group``."""
    slots = [("pron" if rng.random() < 0.5 else "name") if s == "SUBJ" else s for s in slots]
    chosen: list[Word | None] = [None] * len(slots)
    used: set[str] = set()
    content = [i for i, s in enumerate(slots) if s in _CONTENT]
    for i in [content[j] for j in rng.permutation(len(content))]:
        pool = [w for w in _group_index(tuple(by_pos[slots[i]]))[group] if w.text not in used]
        if pool:
            chosen[i] = pool[int(rng.integers(len(pool)))]
            used.add(chosen[i].text)
            break
    for i, s in enumerate(slots):
        if chosen[i] is None and s != ",":
            pool = [w for w in by_pos[s] if w.text not in used and w.text not in ("a", "an")]
            if s == "det" and rng.random() < 0.3:
                pool = [w for w in by_pos[s] if w.text == "a"] or pool
            chosen[i] = pool[int(rng.integers(len(pool)))]
            used.add(chosen[i].text)
    texts = []
    for i, s in enumerate(slots):
        if s == ",":
            texts.append(",")
            continue
        w = chosen[i]
        assert w is not None
        text = w.text
        if text == "a" and i + 1 < len(chosen) and chosen[i + 1] is not None:
            first = chosen[i + 1].phonemes[:1]
            text = "an" if first and first[0] in VOWELS else "a"
        texts.append(text)
    sentence = " ".join(texts).replace(" ,", ",")
    return sentence[0].upper() + sentence[1:] + "."
