"""Text normalisation and the TF-IDF featurizer (word and character n-grams), NumPy only.

Chinese is written without spaces: its words come from jieba's segmenter (model/chinese.py),
English and other spaced scripts from the spaces themselves. Concepts (English content words,
the English glosses of Chinese words: model/glosses.py) link the two languages.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from itertools import chain, repeat
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from model.chinese import has_chinese, segment_chinese, segmenter
from model.glosses import concepts_of, glosser

if TYPE_CHECKING:
    from scipy import sparse

_WHITESPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+")
# Control and format characters (C0/C1 controls, zero-width marks) carry no meaning for matching.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
# Long messages are answered from their beginning: it bounds the cost of one prediction.
MAX_FEATURE_CHARS = 2000


def normalize(text: str) -> str:
    """NFKC (folds full-width forms), casefold, drop control characters, collapse whitespace."""
    text = unicodedata.normalize("NFKC", text).casefold()
    if not text.isprintable():
        text = "".join(
            " " if ch.isspace() or unicodedata.category(ch) in _INVISIBLE_CATEGORIES else ch
            for ch in text
        )
    return _WHITESPACE.sub(" ", text).strip()


class CharacterFilter(dict):
    """A `str.translate` table that deletes the characters `drop` selects. Each character's fate
    is decided in Python on first sight, then looked up in C: several times faster than
    testing every character of every message in a generator."""

    # Bounds the memory a flood of distinct characters can take (about 100 bytes each).
    MAX_ENTRIES = 50_000

    def __init__(self, drop: Callable[[str], bool]) -> None:
        super().__init__()
        self._drop = drop

    def __missing__(self, code: int) -> int | None:
        if len(self) >= self.MAX_ENTRIES:
            self.clear()
        kept = None if self._drop(chr(code)) else code
        self[code] = kept
        return kept


# Spaces, punctuation, and the invisible characters normalize() would turn into spaces.
_NOT_IN_MATCH_KEY = CharacterFilter(
    lambda ch: (
        ch.isspace()
        or unicodedata.category(ch)[0] == "P"
        or unicodedata.category(ch) in _INVISIBLE_CATEGORIES
    )
)


def match_key(text: str) -> str:
    """Key for exact-match lookups: normalized, without punctuation or spaces (taken from the
    NFKC form at once: the spaces normalize() would tidy up are all dropped here)."""
    return unicodedata.normalize("NFKC", text).casefold().translate(_NOT_IN_MATCH_KEY)


@dataclass(frozen=True)
class FeatureSpec:
    """Which n-grams make the features and how many of them to keep."""

    word_ngrams: tuple[int, int] = (1, 2)
    # Character n-grams carry Chinese (no spaces) and misspellings; unigrams matter for Chinese.
    char_ngrams: tuple[int, int] = (1, 5)
    # Terms seen in fewer training questions than this are dropped (1 keeps everything).
    min_df: int = 1
    max_features: int = 200_000
    # Word n-grams of Chinese are made from segmented words (jieba); without it a run of Chinese
    # characters is one "word", the whole sentence. (Models saved before this knob read False.)
    chinese_words: bool = True
    # A block of concepts: the English glosses of Chinese words (CC-CEDICT) and the content words
    # of English, so that Chinese and English wordings of one question share features; made when
    # the training questions hold Chinese (model.train.feature_spec: the FAQ's own questions).
    # (Models saved before this knob read False.)
    chinese_glosses: bool = True
    # The concept block's norm (the word and character blocks have 1).
    concept_weight: float = 2.0


def _words(text: str) -> list[str]:
    """The words of normalize(text): \\w+ never matches the whitespace and control characters
    normalize() removes, so NFKC and casefolding are enough (and faster)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text[:MAX_FEATURE_CHARS]).casefold())


def words_of(text: str, spec: FeatureSpec | None = None) -> list[str]:
    """The words the word n-grams of text are made of (its Chinese runs segmented)."""
    return _word_tokens(_words(text), spec or FeatureSpec())


def _word_tokens(words: list[str], spec: FeatureSpec, cut_runs: bool = True) -> list[str]:
    """The words of word n-grams: words that hold Chinese characters are segmented (their
    Chinese runs kept whole without cut_runs)."""
    if not spec.chinese_words or not any(map(has_chinese, words)):
        return words
    return [token for word in words for token in segment_chinese(word, cut_runs=cut_runs)]


# Marks the concept terms in the word vocabulary: it sorts before any word n-gram (they start
# with a \w character), so the concepts are its first columns.
CONCEPT_MARK = "#"
# Joins the words of a batch's texts into one list: no word or known n-gram contains it.
_TEXT_BREAK = "\x00"


def _word_ngrams(
    words_per_text: Sequence[list[str]], spec: FeatureSpec, concepts: bool = False
) -> tuple[np.ndarray, list[str]]:
    """(row ids, n-grams) of the word n-grams of a batch (and, with concepts, its concept terms),
    made from one flat list of its words (Python's per-text overhead costs more than the
    n-grams). The n-grams that span two texts
    hold _TEXT_BREAK: they are in no vocabulary, and fit() leaves them out."""
    flat = list(chain.from_iterable([*words, _TEXT_BREAK] for words in words_per_text))
    row_of_word = np.repeat(np.arange(len(words_per_text)), [len(w) + 1 for w in words_per_text])
    low, high = spec.word_ngrams
    grams: list[str] = []
    rows = []
    for n in range(low, high + 1):
        # zip stops at the shortest slice: exactly the n-grams that fit.
        grams += flat if n == 1 else map(" ".join, zip(*[flat[i:] for i in range(n)], strict=False))
        rows.append(row_of_word[: max(len(flat) - n + 1, 0)])
    if concepts:
        # English content words and the glosses of Chinese words, each a term of its own.
        concepts_per_text = [concepts_of(words) for words in words_per_text]
        grams += [CONCEPT_MARK + word for word in chain.from_iterable(concepts_per_text)]
        rows.append(np.repeat(np.arange(len(words_per_text)), list(map(len, concepts_per_text))))
    return np.concatenate(rows), grams


# Character n-grams are identified by a 64-bit polynomial hash of their code points (computed
# for a whole batch at once in NumPy); the vocabulary keeps the hashes of the n-grams it knows.
_HASH_SEED = np.uint64(0x9E3779B97F4A7C15)
_HASH_BASE = np.uint64(0x100000001B3)
_SEEDED_BASE = np.uint64(int(_HASH_SEED) * int(_HASH_BASE) % 2**64)


def char_ngram_key(gram: str) -> int:
    """The hash of one character n-gram, as computed for a batch by _char_ngram_keys."""
    key = int(_HASH_SEED)
    for ch in gram:
        key = (key * int(_HASH_BASE) + ord(ch)) % 2**64
    return key


def _char_ngram_keys(
    words_per_text: Sequence[list[str]], spec: FeatureSpec
) -> tuple[np.ndarray, np.ndarray]:
    """(row ids, n-gram keys) of the character n-grams of each text's words, space-padded;
    ordered by n-gram length, then by position."""
    padded = [" " + " ".join(words) + " " for words in words_per_text]
    lengths = np.fromiter(map(len, padded), dtype=np.int64, count=len(padded))
    codes = np.frombuffer("".join(padded).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    low, high = spec.char_ngrams
    size = len(codes)
    # keys[n - 1, i] is the hash of codes[i : i + n], for every n at once (uint64 arithmetic
    # wraps around; past the end the codes are zeros, and those n-grams are dropped below).
    extended = np.concatenate([codes, np.zeros(high - 1, dtype=np.uint64)])
    keys = np.empty((high, size), dtype=np.uint64)
    np.add(codes, _SEEDED_BASE, out=keys[0])
    for n in range(1, high):
        np.multiply(keys[n - 1], _HASH_BASE, out=keys[n])
        keys[n] += extended[n : n + size]
    # An n-gram counts if it ends inside its own text: n <= the characters left from its start.
    left = np.repeat(np.cumsum(lengths), lengths) - np.arange(size)
    fits = left >= np.arange(low, high + 1)[:, None]
    rows = np.broadcast_to(np.repeat(np.arange(len(padded)), lengths), fits.shape)
    return rows[fits], keys[low - 1 :][fits]


class KeyTable:
    """Open-addressing hash table from n-gram keys to their positions, probed for many keys at once.

    A sorted array with binary search costs ~16 cache misses per key; here most keys are
    resolved by the first slot they look at (the table is at most a quarter full).
    """

    _EMPTY = np.uint64(0)  # no key hashes to 0 in practice (one chance in 2**64)
    _MIX = np.uint64(0x9E3779B97F4A7C15)

    def __init__(self, keys: np.ndarray):
        self.bits = max(4, int(np.ceil(np.log2(4 * max(len(keys), 1)))))
        self.slot_keys = np.full(1 << self.bits, self._EMPTY, dtype=np.uint64)
        self.slot_positions = np.full(1 << self.bits, -1, dtype=np.int64)
        positions = np.arange(len(keys))
        slots = self._home(keys)
        while len(positions):
            # Place every key whose slot is free (first come per slot); the rest move on.
            free = self.slot_keys[slots] == self._EMPTY
            chosen, first = np.unique(slots[free], return_index=True)
            placed = np.flatnonzero(free)[first]
            self.slot_keys[chosen] = keys[positions[placed]]
            self.slot_positions[chosen] = positions[placed]
            waiting = np.ones(len(positions), dtype=bool)
            waiting[placed] = False
            positions, slots = positions[waiting], (slots[waiting] + 1) & ((1 << self.bits) - 1)

    def _home(self, keys: np.ndarray) -> np.ndarray:
        slots = keys * self._MIX
        np.right_shift(slots, np.uint64(64 - self.bits), out=slots)
        return slots.view(np.int64)  # below 2**bits: the same numbers, without a copy

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Position of each key in the table's key list, or -1 when it is not there."""
        slots = self._home(keys)
        seen = self.slot_keys[slots]
        found = np.where(seen == keys, self.slot_positions[slots], -1)
        # The few keys that met another key in their slot walk on to the next slots.
        pending = np.flatnonzero((found < 0) & (seen != self._EMPTY))
        slots = slots[pending]
        while len(pending):
            slots = (slots + 1) & ((1 << self.bits) - 1)
            seen = self.slot_keys[slots]
            hit = seen == keys[pending]
            found[pending[hit]] = self.slot_positions[slots[hit]]
            going_on = ~hit & (seen != self._EMPTY)
            pending, slots = pending[going_on], slots[going_on]
        return found


class Featurizer:
    """Sublinear TF-IDF over word and character n-grams, and over concepts when the training
    questions held Chinese; each block is L2-normalised (the concepts to spec.concept_weight).

    Columns: the known word n-grams (sorted: the concepts, marked with CONCEPT_MARK, first),
    then the known character n-grams (by key).
    """

    def __init__(
        self, spec: FeatureSpec, words: Sequence[str], char_keys: np.ndarray, idf: np.ndarray
    ):
        self.spec = spec
        self.words = list(words)
        self._word_index = {term: i for i, term in enumerate(self.words)}
        self.char_keys = np.asarray(char_keys, dtype=np.uint64)
        if np.any(self.char_keys[1:] <= self.char_keys[:-1]):
            raise ValueError("character n-gram keys must be sorted and unique")
        self._char_table = KeyTable(self.char_keys)
        self.idf = np.asarray(idf, dtype=np.float32)
        # Only a vocabulary with Chinese words needs jieba: in any other, every n-gram holding a
        # Chinese word is unknown however its run is cut (one word or several, each a Chinese
        # piece), so the runs are kept whole, and no time goes to jieba or its dictionary.
        self.cuts_chinese = spec.chinese_words and any(map(has_chinese, self.words))
        self.n_concepts = sum(word.startswith(CONCEPT_MARK) for word in self.words)
        if not all(word.startswith(CONCEPT_MARK) for word in self.words[: self.n_concepts]):
            raise ValueError("concept terms must come first")

    @property
    def size(self) -> int:
        return len(self.words) + len(self.char_keys)

    @classmethod
    def fit(cls, questions: Sequence[str], spec: FeatureSpec | None = None) -> Featurizer:
        spec = spec or FeatureSpec()
        words_per_text = [_words(q) for q in questions]
        tokens_per_text = [_word_tokens(words, spec) for words in words_per_text]
        concepts = spec.chinese_words and spec.chinese_glosses and any(map(has_chinese, questions))
        gram_rows, grams = _word_ngrams(tokens_per_text, spec, concepts)
        # Document frequency: the number of distinct questions an n-gram occurs in.
        word_df = Counter(
            gram
            for _, gram in set(zip(gram_rows.tolist(), grams, strict=True))
            if _TEXT_BREAK not in gram
        )
        rows, keys = _char_ngram_keys(words_per_text, spec)
        # Document frequency of a key: the number of distinct rows it occurs in.
        order = np.lexsort((rows, keys))
        rows, keys = rows[order], keys[order]
        first_in_row = np.ones(len(keys), dtype=bool)
        first_in_row[1:] = (keys[1:] != keys[:-1]) | (rows[1:] != rows[:-1])
        char_keys, char_df = np.unique(keys[first_in_row], return_counts=True)
        not_blank = char_keys != char_ngram_key(" ")

        words = sorted(term for term, df in word_df.items() if df >= spec.min_df)
        word_counts = np.array([word_df[t] for t in words], dtype=np.int64)
        keep_chars = not_blank & (char_df >= spec.min_df)
        char_keys, char_df = char_keys[keep_chars], char_df[keep_chars]
        if len(words) + len(char_keys) > spec.max_features:
            # Keep the most frequent terms; ties go to words, then to the smaller sorted position.
            frequencies = np.concatenate([word_counts, char_df])
            block = np.concatenate([np.zeros(len(words)), np.ones(len(char_keys))])
            position = np.concatenate([np.arange(len(words)), np.arange(len(char_keys))])
            kept = np.lexsort((position, block, -frequencies))[: spec.max_features]
            kept_words = np.sort(position[kept][block[kept] == 0])
            kept_chars = np.sort(position[kept][block[kept] == 1])
            words = [words[i] for i in kept_words]
            word_counts = word_counts[kept_words]
            char_keys, char_df = char_keys[kept_chars], char_df[kept_chars]
        df = np.concatenate([word_counts, char_df]).astype(np.float64)
        idf = np.log((1 + len(questions)) / (1 + df)) + 1.0
        return cls(spec, words, char_keys, idf)

    def transform(self, texts: Sequence[str], *, by_columns: bool = False) -> sparse.spmatrix:
        """Feature rows for texts, a float32 matrix of shape (len(texts), size): CSR, or CSC when
        by_columns. A batch multiplies by a weight matrix faster in CSC (each weight row it uses
        is read once, in order), and for more than a few dozen texts it is built faster too;
        one text is built faster in CSR."""
        # Imported here: the bot's own process never featurizes when its model process does,
        # and scipy.sparse would cost it 20 MB of memory.
        from scipy import sparse

        rows, columns = self._known_ngrams(texts)
        shape = (len(texts), self.size)
        if by_columns:
            # scipy's COO to CSC conversion sums the repeats of an n-gram in a text (in C++).
            matrix = sparse.csc_matrix((np.ones(len(rows), np.float32), (rows, columns)), shape)
            counts, rows = matrix.data, matrix.indices
            columns = np.repeat(np.arange(self.size), np.diff(matrix.indptr))
        else:
            # Sorting (row, column) cells groups repeated n-grams of a row into counts. (NumPy's
            # default sort of int64, a SIMD quicksort, is 3-10x faster than its stable one here.)
            cells = np.sort((rows.astype(np.int64) << 32) | columns)
            first = np.empty(len(cells), dtype=bool)
            first[:1] = True
            np.not_equal(cells[1:], cells[:-1], out=first[1:])
            starts = np.flatnonzero(first)
            counts = np.empty(len(starts), dtype=np.float32)
            np.subtract(starts[1:], starts[:-1], out=counts[:-1], casting="unsafe")
            counts[-1:] = len(cells) - starts[-1:]
            cells = cells[starts]
            rows, columns = (cells >> 32).astype(np.int32), (cells & 0xFFFFFFFF).astype(np.int32)
            indptr = np.zeros(len(texts) + 1, dtype=np.int32)
            np.cumsum(np.bincount(rows, minlength=len(texts)), out=indptr[1:])
            matrix = sparse.csr_matrix((counts, columns, indptr), shape)
        values = (1.0 + np.log(counts)) * self.idf[columns]
        # L2 norm per (row, block): each block weighs the same whatever the text length.
        group = rows * 3 + (columns >= self.n_concepts) + (columns >= len(self.words))
        norms = np.sqrt(np.bincount(group, weights=values * values, minlength=3 * len(texts)))
        if self.n_concepts:
            # The concept block weighs more than the others: it alone links the two languages.
            values[columns < self.n_concepts] *= self.spec.concept_weight
        matrix.data = (values / norms[group]).astype(np.float32)
        return matrix

    def _known_ngrams(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(row, column) of every occurrence of a known n-gram in texts, as int32 arrays (the
        index type scipy would otherwise convert to)."""
        words_per_text = [_words(text) for text in texts]
        # One search for the batch's words (NFKC can make CJK ideographs) rather than one a word.
        if has_chinese(_TEXT_BREAK.join(chain.from_iterable(words_per_text))):
            cut = self.cuts_chinese
            tokens_per_text = [_word_tokens(words, self.spec, cut) for words in words_per_text]
        else:
            tokens_per_text = words_per_text
        word_rows, grams = _word_ngrams(tokens_per_text, self.spec, self.n_concepts > 0)
        # Dictionary lookups run in C through map(); unknown n-grams become -1 and are dropped.
        word_cols = np.fromiter(map(self._word_index.get, grams, repeat(-1)), np.int64, len(grams))
        char_rows, keys = _char_ngram_keys(words_per_text, self.spec)
        where = self._char_table.lookup(keys)
        known_words, known_chars = word_cols >= 0, where >= 0
        rows = np.concatenate([word_rows[known_words], char_rows[known_chars]])
        columns = np.concatenate([word_cols[known_words], len(self.words) + where[known_chars]])
        return rows.astype(np.int32), columns.astype(np.int32)

    def to_json(self) -> dict:
        return {
            "spec": asdict(self.spec),
            "words": self.words,
            "char_keys": [int(key) for key in self.char_keys],
            "idf": [float(x) for x in self.idf],
        }

    @classmethod
    def from_json(cls, data: dict) -> Featurizer:
        fields = data["spec"]
        spec = FeatureSpec(
            **{
                "chinese_words": False,
                "chinese_glosses": False,
                **fields,
                "word_ngrams": tuple(fields["word_ngrams"]),
                "char_ngrams": tuple(fields["char_ngrams"]),
            }
        )
        char_keys = np.array(data["char_keys"], dtype=np.uint64)
        return cls(spec, data["words"], char_keys, np.asarray(data["idf"], dtype=np.float32))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Featurizer:
        """The saved featurizer, with jieba's dictionary loaded now if its vocabulary holds
        Chinese words: loading a model, not answering the first Chinese question, pays for it."""
        featurizer = cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        if featurizer.cuts_chinese:
            segmenter()
        if featurizer.n_concepts:
            glosser()
        return featurizer
