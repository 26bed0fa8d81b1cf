"""Tests for p3d.synth.sentences (seeded sentence generation with phonetic coverage)."""
from __future__ import annotations

from collections import Counter

import pytest

from p3d.errors import InputError
from p3d.synth import sentences as T


def _n_words(sentence: str) -> int:
    return len(sentence.replace(",", " ").replace(".", " ").split())


def test_word_list_is_well_formed():
    words = T.load_wordlist()
    assert 1500 <= len(words) <= 3000
    assert len({(w.text, w.pos) for w in words}) == len(words)
    assert all(w.phonemes for w in words)
    coverage = T.phoneme_coverage([w.text for w in words])
    assert all(n > 0 for n in coverage.values()), coverage


def test_deterministic_by_seed():
    a = T.make_sentences(20, seed=7)
    assert a == T.make_sentences(20, seed=7)
    assert a != T.make_sentences(20, seed=8)
    assert T.make_sentences(5, seed=7) == a[:5]


@pytest.mark.parametrize("lo,hi", [(5, 12), (3, 4), (8, 8)])
def test_word_counts_in_range(lo, hi):
    sentences = T.make_sentences(60, seed=1, min_words=lo, max_words=hi)
    counts = [_n_words(s) for s in sentences]
    assert min(counts) >= lo and max(counts) <= hi
    if hi > lo:
        assert len(set(counts)) > 1
    assert all(s[0].isupper() and s.endswith(".") for s in sentences)


def test_every_phoneme_group_covered():
    n_groups = len(T.PHONEME_GROUPS)
    for seed in range(3):
        sentences = T.make_sentences(n_groups, seed=seed)
        coverage = T.phoneme_coverage(sentences)
        assert all(coverage[g] > 0 for g in T.PHONEME_GROUPS), coverage
    big = T.phoneme_coverage(T.make_sentences(200, seed=0))
    for g in ("bilabial", "labiodental", "rounded_vowel", "open_vowel"):
        assert big[g] >= 0.3 * 200, (g, big)


def test_article_agrees_with_next_sound():
    sentences = T.make_sentences(300, seed=3)
    words = T.load_wordlist()
    first = {w.text.lower(): w.phonemes[0] for w in words}
    seen = 0
    for s in sentences:
        tokens = s.lower().replace(",", "").rstrip(".").split()
        for art, nxt in zip(tokens, tokens[1:]):
            if art in ("a", "an"):
                seen += 1
                assert (art == "an") == (first[nxt] in T.VOWELS), s
    assert seen > 10


def test_bad_arguments():
    for kwargs in (dict(n=-1, seed=0), dict(n=3, seed=0, min_words=2),
                   dict(n=3, seed=0, min_words=9, max_words=8), dict(n=3, seed=0.5)):
        with pytest.raises(InputError):
            T.make_sentences(**kwargs)
    with pytest.raises(InputError):
        T.load_wordlist("/nonexistent/words.txt")


def test_bad_word_list(tmp_path):
    p = tmp_path / "w.txt"
    p.write_text("cat\tanimal\tk a t\n")
    with pytest.raises(InputError, match="line 1"):
        T.load_wordlist(p)


def test_word_list_matches_espeak():
    # the stored transcriptions are what espeak-ng reports (a sample of the list)
    from p3d.synth.speech import transcribe

    words = T.load_wordlist()[::97]
    assert [tuple(p) for p in transcribe([w.text for w in words])] == [w.phonemes for w in words]


def test_no_repeated_words_and_word_count_limit():
    # _fill draws each word once per sentence (only the article "a" may recur)
    for s in T.make_sentences(200, seed=4, min_words=10, max_words=16):
        tokens = [t for t in s.lower().replace(",", " ").rstrip(".").split() if t not in ("a", "an")]
        assert len(tokens) == len(set(tokens)), s
    with pytest.raises(InputError, match="40"):
        T.make_sentences(3, seed=0, min_words=5, max_words=41)


def test_phoneme_coverage_counts_sentences_case_insensitively():
    sentences = T.make_sentences(30, seed=2)
    one = T.phoneme_coverage(sentences[:1])
    assert set(one.values()) <= {0, 1} and sum(one.values()) > 0  # a sentence counts once per group
    assert T.phoneme_coverage(sentences[:1] * 3) == Counter({g: 3 * n for g, n in one.items()})
    assert T.phoneme_coverage(sentences) == T.phoneme_coverage([s.upper() for s in sentences])
    assert T.phoneme_coverage(sentences) == T.phoneme_coverage([s.lower() for s in sentences])
