"""Which texts of a large set are similar (cosine of their feature vectors at least a
threshold), in time and memory that grow with the set and its similar pairs, not its square.

Comparing every pair of a 20,000-question review queue took a 3 GB matrix. Instead, an exact
prefix filter (as in all-pairs similarity search): each vector's features are ordered rarest
first, and a pair can only reach the threshold if the two share a feature among the first
ones of each, those that carry enough of its weight. Those pairs are the candidates; the
product of the prefixes is a lower bound of their similarity (features are never negative),
the weight left outside the prefixes an upper bound, and only candidates between the two are
computed in full."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from scipy import sparse

# A vector's prefix holds its features until the weight left after them has at most this
# norm. It must not exceed the threshold (the filter is exact then); lower values make longer
# prefixes (more candidates) but tighter bounds (fewer computed in full). On 20,000 questions
# with 80 features each, 0.5 was the fastest.
PREFIX_REST_NORM = 0.5
# Rows compared at a time: bounds the memory of the candidate pairs (500 rows against a
# 20,000-question queue: about 100 MB at most).
BLOCK_ROWS = 500


class Featurizer(Protocol):
    def transform(self, texts: Sequence[str]) -> Any: ...


def similar_pairs(vectors: sparse.spmatrix, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(earlier, later): the row numbers of every pair of rows, earlier < later, whose cosine
    similarity is at least threshold (0 < threshold <= 1; empty rows are similar to none)."""
    from scipy import sparse

    rest_norm = min(PREFIX_REST_NORM, threshold)
    x = sparse.csr_matrix(vectors, dtype=np.float32)
    x.sum_duplicates()
    squares = np.bincount(
        np.repeat(np.arange(x.shape[0]), np.diff(x.indptr)), x.data.astype(np.float64) ** 2,
        minlength=x.shape[0],
    )  # fmt: skip
    x = sparse.diags((1 / np.sqrt(np.maximum(squares, 1e-24))).astype(np.float32)) @ x
    x = x.tocsr()
    x.sort_indices()
    rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    # Each row's features rarest first (ties by column), then the weight from each on.
    rarity = np.bincount(x.indices, minlength=x.shape[1])
    rank = np.empty(x.shape[1], dtype=np.int64)
    rank[np.lexsort((np.arange(x.shape[1]), rarity))] = np.arange(x.shape[1])
    order = np.lexsort((rank[x.indices], rows))
    columns, values = x.indices[order], x.data[order].astype(np.float64)
    from_here = np.cumsum((values * values)[::-1])[::-1]
    row_end = np.append(from_here, 0.0)[x.indptr[1:]]
    rest_from_here = from_here - np.repeat(row_end, np.diff(x.indptr))
    in_prefix = rest_from_here > rest_norm * rest_norm
    prefix = sparse.csr_matrix(
        (values[in_prefix], (rows[in_prefix], columns[in_prefix])), shape=x.shape
    )
    # Per row: the norm left outside its prefix, and the rank where that part starts.
    outside = ~in_prefix
    rest = np.sqrt(np.bincount(rows[outside], values[outside] ** 2, minlength=x.shape[0]))
    rest_starts = np.full(x.shape[0], x.shape[1], dtype=np.int64)
    np.minimum.at(rest_starts, rows[outside], rank[columns[outside]])
    prefix_columns = prefix.T.tocsr()
    earlier, later = [], []
    for start in range(0, x.shape[0], BLOCK_ROWS):
        block = (prefix[start : start + BLOCK_ROWS] @ prefix_columns).tocoo()
        keep = block.col < block.row + start
        j, i, lower = block.row[keep] + start, block.col[keep], block.data[keep]
        # Shared features not in both prefixes all lie in the rest of the row whose rest starts
        # first (rarer features are in both prefixes): their product is at most its norm.
        first = np.where(rest_starts[i] <= rest_starts[j], i, j)
        sure = lower >= threshold
        unsure = ~sure & (lower + rest[first] >= threshold)
        if unsure.any():
            ui, uj = i[unsure], j[unsure]
            exact = np.asarray(x[ui].multiply(x[uj]).sum(axis=1)).ravel()
            sure[np.flatnonzero(unsure)[exact >= threshold]] = True
        earlier.append(i[sure])
        later.append(j[sure])
    if not earlier:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(earlier).astype(np.int64), np.concatenate(later).astype(np.int64)


class SimilarWordings:
    """similar_pairs of wordings in a featurizer's space, remembered between calls: while the
    model stays the same and no new wording comes (a review decision only removes some), the
    pairs of the wordings asked are taken from the last computation."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._lock = threading.Lock()
        self._featurizer: Featurizer | None = None
        self._index: dict[str, int] = {}  # wording key -> its row in the pairs below
        self._pairs = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
        self.computed = 0  # how many times the pairs were computed (rather than remembered)

    def pairs(
        self, keys: Sequence[str], wordings: Sequence[str], featurizer: Featurizer
    ) -> tuple[np.ndarray, np.ndarray]:
        """(earlier, later) positions in keys of the similar wordings (keys name the wordings:
        the same key, the same wording)."""
        with self._lock:
            if featurizer is not self._featurizer or any(k not in self._index for k in keys):
                self._pairs = similar_pairs(featurizer.transform(wordings), self.threshold)
                self._featurizer, self._index = featurizer, {k: n for n, k in enumerate(keys)}
                self.computed += 1
            index, (a, b) = self._index, self._pairs
        # Rows of the last computation -> positions now (-1: no longer there).
        position = np.full(len(index), -1, dtype=np.int64)
        position[[index[k] for k in keys]] = np.arange(len(keys))
        a, b = position[a], position[b]
        present = (a >= 0) & (b >= 0)
        a, b = a[present], b[present]
        return np.minimum(a, b), np.maximum(a, b)
