"""Text normalisation and the TF-IDF featurizer (word and character n-grams), NumPy only."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
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


def match_key(text: str) -> str:
    """Key for exact-match lookups: normalized, without punctuation or spaces."""
    return "".join(
        ch
        for ch in normalize(text)
        if not ch.isspace() and not unicodedata.category(ch).startswith("P")
    )


@dataclass(frozen=True)
class FeatureSpec:
    """Which n-grams make the features and how many of them to keep."""

    word_ngrams: tuple[int, int] = (1, 2)
    # Character n-grams carry Chinese (no spaces) and misspellings; unigrams matter for Chinese.
    char_ngrams: tuple[int, int] = (1, 5)
    # Terms seen in fewer training questions than this are dropped (1 keeps everything).
    min_df: int = 1
    max_features: int = 200_000


def _ngrams(text: str, spec: FeatureSpec) -> tuple[list[str], list[str]]:
    """Word n-grams and character n-grams (over the words joined by single spaces)."""
    words = _WORD.findall(normalize(text[:MAX_FEATURE_CHARS]))
    word_grams: list[str] = []
    low, high = spec.word_ngrams
    for n in range(low, high + 1):
        word_grams.extend(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
    joined = " " + " ".join(words) + " "
    char_grams: list[str] = []
    low, high = spec.char_ngrams
    for n in range(low, high + 1):
        char_grams.extend(joined[i : i + n] for i in range(len(joined) - n + 1))
    return word_grams, char_grams


class Featurizer:
    """Sublinear TF-IDF over word and character n-grams; each of the two blocks is L2-normalised."""

    def __init__(
        self, spec: FeatureSpec, words: Sequence[str], chars: Sequence[str], idf: np.ndarray
    ):
        self.spec = spec
        self.words = list(words)
        self.chars = list(chars)
        self._word_index = {term: i for i, term in enumerate(self.words)}
        offset = len(self.words)
        self._char_index = {term: offset + i for i, term in enumerate(self.chars)}
        self.idf = np.asarray(idf, dtype=np.float32)

    @property
    def size(self) -> int:
        return len(self.words) + len(self.chars)

    @classmethod
    def fit(cls, questions: Sequence[str], spec: FeatureSpec | None = None) -> Featurizer:
        spec = spec or FeatureSpec()
        word_df: Counter[str] = Counter()
        char_df: Counter[str] = Counter()
        for question in questions:
            word_grams, char_grams = _ngrams(question, spec)
            word_df.update(set(word_grams))
            char_df.update(set(char_grams))
        word_df.pop(" ", None)
        char_df.pop(" ", None)
        kept = [
            (term, df, block)
            for block, counts in ((0, word_df), (1, char_df))
            for term, df in counts.items()
            if df >= spec.min_df
        ]
        # Keep the most frequent terms; ties broken by the term so the vocabulary is deterministic.
        kept.sort(key=lambda item: (-item[1], item[0]))
        kept = kept[: spec.max_features]
        words = sorted(term for term, _, block in kept if block == 0)
        chars = sorted(term for term, _, block in kept if block == 1)
        n = len(questions)
        df = [word_df[t] for t in words] + [char_df[t] for t in chars]
        idf = np.array([math.log((1 + n) / (1 + d)) + 1.0 for d in df], dtype=np.float32)
        return cls(spec, words, chars, idf)

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """Feature rows for texts, as a CSR matrix (float32) of shape (len(texts), size)."""
        rows: list[int] = []
        cols: list[int] = []
        counts: list[int] = []
        blocks: list[int] = []
        for row, text in enumerate(texts):
            for block, (grams, index) in enumerate(
                zip(_ngrams(text, self.spec), (self._word_index, self._char_index), strict=True)
            ):
                for term, count in Counter(grams).items():
                    col = index.get(term)
                    if col is not None:
                        rows.append(row)
                        cols.append(col)
                        counts.append(count)
                        blocks.append(block)
        row_ids = np.asarray(rows, dtype=np.int64)
        col_ids = np.asarray(cols, dtype=np.int32)
        values = (1.0 + np.log(np.asarray(counts, dtype=np.float32))) * self.idf[col_ids]
        # L2 norm per (row, block): each block weighs the same whatever the text length.
        group = row_ids * 2 + np.asarray(blocks, dtype=np.int64)
        norms = np.sqrt(np.bincount(group, weights=values * values, minlength=2 * len(texts)))
        values = (values / norms[group]).astype(np.float32)
        indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(np.bincount(row_ids, minlength=len(texts)), out=indptr[1:])
        return sparse.csr_matrix((values, col_ids, indptr), shape=(len(texts), self.size))

    def to_json(self) -> dict:
        return {
            "spec": asdict(self.spec),
            "words": self.words,
            "chars": self.chars,
            "idf": [float(x) for x in self.idf],
        }

    @classmethod
    def from_json(cls, data: dict) -> Featurizer:
        spec_fields = data["spec"]
        spec = FeatureSpec(
            word_ngrams=tuple(spec_fields["word_ngrams"]),
            char_ngrams=tuple(spec_fields["char_ngrams"]),
            min_df=spec_fields["min_df"],
            max_features=spec_fields["max_features"],
        )
        return cls(spec, data["words"], data["chars"], np.asarray(data["idf"], dtype=np.float32))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Featurizer:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
