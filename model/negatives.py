"""Out-of-scope knowledge that ships: bundled questions no FAQ answers, used as negatives.

A bot trained only on the admin's answers never learns what to refuse: "hello", "asdfgh" or
"what's the weather" all get some answer. `model/data/out_of_scope.csv` holds questions written
for this project in English and Chinese (small talk, other domains, requests a FAQ bot cannot
serve, insults, keyboard mash, single words, emoji). They join the training data as
out-of-scope rows when the admin's data has few of its own, less those close to one of the
admin's questions, so they never take an answer's place.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from model.datasets import QAPair, read_pairs
from model.text import FeatureSpec, Featurizer

if TYPE_CHECKING:
    from scipy import sparse

BUNDLED_OUT_OF_SCOPE = Path(__file__).resolve().parent / "data" / "out_of_scope.csv"
# A bundled question whose cosine similarity (TF-IDF features, as the model sees them) to one of
# the admin's questions reaches this is dropped: it may be a wording of the admin's answer.
MAX_SIMILARITY = 0.5


def bundled_negatives() -> list[QAPair]:
    """The bundled out-of-scope questions (empty answers)."""
    return read_pairs(BUNDLED_OUT_OF_SCOPE)


def far_from(
    negatives: Sequence[QAPair],
    questions: Sequence[str],
    max_similarity: float = MAX_SIMILARITY,
    spec: FeatureSpec | None = None,
) -> list[QAPair]:
    """The negatives whose features are not close to any of questions (the admin's answered
    ones): cosine similarity below max_similarity."""
    if not negatives or not questions:
        return list(negatives)
    negative_texts = [p.question for p in negatives]
    # Without glosses: which negatives stay does not depend on them.
    featurizer = Featurizer.fit(
        [*questions, *negative_texts], spec or FeatureSpec(chinese_glosses=False)
    )
    closest = np.zeros(len(negatives))
    admin = _unit_rows(featurizer.transform(questions)).T.tocsr()
    # In blocks of negatives: the similarity matrix stays small for large FAQs.
    block = 256
    for start in range(0, len(negatives), block):
        rows = _unit_rows(featurizer.transform(negative_texts[start : start + block]))
        similarity = (rows @ admin).max(axis=1).toarray().ravel()
        closest[start : start + block] = similarity
    return [p for p, s in zip(negatives, closest, strict=True) if s < max_similarity]


def _unit_rows(features: sparse.csr_matrix) -> sparse.csr_matrix:
    norms = np.sqrt(np.asarray(features.multiply(features).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    from scipy import sparse

    return sparse.diags(1.0 / norms) @ features
