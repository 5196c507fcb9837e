"""Which texts of a large set are similar (cosine of their feature vectors at least a
threshold), in time and memory linear in the set: each text is compared with a bounded number
of others, those that share its heaviest features, never with all of them.

Comparing every pair of a 20,000-question review queue took a 3 GB matrix; an exact prefix
filter (all-pairs similarity search) still compared millions of pairs when the questions share
common words. Instead, each vector's signature is its few heaviest key features (word n-grams,
when the caller names them: a word weighs more than its character n-grams, which come with
it); two vectors are candidates when they share two features of their signatures, or one
heavy enough in both to reach the threshold alone (with all the rest of each vector's weight),
and each is compared with at most EARLIER_PER_KEY earlier ones per key. Candidates are
compared exactly, so no pair found is wrong; a similar pair is missed when the two share at
most one of their heaviest words (their similarity then comes from many light features), or
sit in a family of more than EARLIER_PER_KEY texts sharing a key. docs/benchmarks.md gives
how often that changes the groups on real question sets."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from scipy import sparse

# How many of a vector's heaviest features make its signature: pairs of them are its keys
# (15 for 6). More finds more pairs of long texts, with more candidates to compare: 8 (28
# keys) compared twice as many with no fewer wordings grouped differently (docs/benchmarks.md).
SIGNATURE_FEATURES = 6
# A vector is compared with at most this many earlier vectors per key (those sharing the key
# are usually few; many share a key only when the set holds large families of near twins, and
# an item is grouped with the first, most frequent one it is similar to).
EARLIER_PER_KEY = 32
# The weight of a vector outside its signature block is also summed in this many buckets of
# columns (256 bytes a vector): see similar_pairs.
OUTSIDE_BUCKETS = 64
# Candidate pairs compared at a time: bounds the memory of the comparison (their rows are
# copied: 20,000 pairs of 120-feature rows, about 40 MB).
PAIRS_PER_PART = 20_000


class Featurizer(Protocol):
    def transform(self, texts: Sequence[str]) -> Any: ...

    @property
    def words(self) -> Sequence[str]:
        """The word n-grams: the first columns of the feature rows."""
        ...


def similar_pairs(
    vectors: sparse.spmatrix, threshold: float, key_columns: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(earlier, later): the row numbers of the pairs of rows, earlier < later, whose cosine
    similarity is at least threshold (0 < threshold <= 1; empty rows are similar to none), as
    far as their signatures find them (see above). The first key_columns columns are the key
    features (0: all are)."""
    from scipy import sparse

    x = _unit_rows(vectors)
    n = x.shape[0]
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(x.indptr))
    columns, weights = x.indices.astype(np.int64), x.data.astype(np.float64)
    is_key = columns < key_columns
    has_keys = np.bincount(rows[is_key], minlength=n) > 0
    # A row's signature comes from its key features, or from all when it has none; the weight
    # outside can add at most its norm to a product.
    in_block = is_key | ~has_keys[rows]
    outside_buckets = _bucket_norms(x, ~in_block)
    outside = np.sqrt(np.square(outside_buckets, dtype=np.float64).sum(axis=1))
    rows, columns, weights = rows[in_block], columns[in_block], weights[in_block]
    block = sparse.csr_matrix((weights, (rows, columns)), shape=x.shape)
    # Each row's heaviest first, ties in column order (the CSR order, kept by a stable sort).
    order = np.argsort((rows << 32) | _lightness(weights), kind="stable")
    rows, columns, weights = rows[order], columns[order], weights[order]
    place = np.arange(len(rows)) - np.searchsorted(rows, rows)
    heaviest = place < SIGNATURE_FEATURES
    rows, columns, weights, place = (
        rows[heaviest],
        columns[heaviest],
        weights[heaviest],
        place[heaviest],
    )

    # Two shared features: one key per pair of features of a signature.
    signature = np.full((n, SIGNATURE_FEATURES), -1, dtype=np.int64)
    signature[rows, place] = columns
    f, g = (signature[:, k] for k in np.triu_indices(SIGNATURE_FEATURES, 1))
    both = (f >= 0) & (g >= 0)
    keys = (np.minimum(f, g) * x.shape[1] + np.maximum(f, g))[both]
    members = np.broadcast_to(np.arange(n)[:, None], f.shape)[both]
    a, b = _sharing(keys)  # in order of members already
    earlier, later = [members[a]], [members[b]]

    # One shared feature, heavy enough in both: w_i w_j + outside_i outside_j >= threshold.
    slack = threshold - 1e-6  # float rounding: the candidates are compared exactly anyway
    able = weights * weights.max(initial=0) + outside[rows] * outside.max(initial=0) >= slack
    rows, columns, weights = rows[able], columns[able], weights[able]
    outside_of = outside[rows]

    def enough(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return weights[a] * weights[b] + outside_of[a] * outside_of[b] >= slack

    a, b = _sharing(columns, _lightness(weights), enough)  # the heaviest first in each feature
    earlier.append(rows[a])
    later.append(rows[b])

    i, j = np.concatenate(earlier), np.concatenate(later)
    pair = np.sort(np.minimum(i, j) * n + np.maximum(i, j))  # sorting beats np.unique's hash
    pair = pair[np.r_[True, pair[1:] != pair[:-1]]] if len(pair) else pair
    i, j = pair // n, pair % n
    # Compared on the signature blocks first (a few features a row, against a hundred), then
    # in full: the rest of a pair adds at most the product of their norms outside the blocks,
    # and at most the sum of those products bucket by bucket. (The float32 buckets' rounding
    # is far below the looser slack of that bound.)
    keep = np.zeros(len(i), dtype=bool)
    for s in range(0, len(i), PAIRS_PER_PART):
        part = np.arange(s, min(s + PAIRS_PER_PART, len(i)))
        in_blocks = _cosines(block, i[part], j[part])
        close = in_blocks + outside[i[part]] * outside[j[part]] >= slack
        part, in_blocks = part[close], in_blocks[close]
        a, b = outside_buckets[i[part]], outside_buckets[j[part]]
        part = part[in_blocks + np.einsum("ij,ij->i", a, b) >= threshold - 1e-4]
        keep[part] = _cosines(x, i[part], j[part]) >= threshold
    return i[keep], j[keep]


def _bucket_norms(x: sparse.csr_matrix, entries: np.ndarray) -> np.ndarray:
    """(rows, OUTSIDE_BUCKETS) float32: the norm of the weights of each row's `entries` (a mask
    of x.data) in each bucket of columns. Two rows' products add at most the sum over the
    buckets of the products of their norms there (Cauchy-Schwarz in each bucket): much less
    than the product of their norms when they share few columns."""
    from scipy import sparse

    squares = np.where(entries, np.square(x.data), np.float32(0))
    buckets = x.indices % np.int32(OUTSIDE_BUCKETS)
    # A matrix with repeated columns: toarray() sums them (in C++, in float32: a few per cell).
    by_bucket = sparse.csr_matrix((squares, buckets, x.indptr), (x.shape[0], OUTSIDE_BUCKETS))
    return np.sqrt(by_bucket.toarray())


def _unit_rows(vectors: sparse.spmatrix) -> sparse.csr_matrix:
    """The rows scaled to norm 1 (empty rows stay empty), float32 CSR, columns sorted."""
    from scipy import sparse

    x = sparse.csr_matrix(vectors, dtype=np.float32)
    x.sum_duplicates()
    rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    squares = np.bincount(rows, x.data.astype(np.float64) ** 2, minlength=x.shape[0])
    x.data = (x.data / np.sqrt(np.maximum(squares, 1e-24))[rows]).astype(np.float32)
    x.sort_indices()
    return x


def _lightness(weights: np.ndarray) -> np.ndarray:
    """Integers in [0, 2**31) that order positive weights heaviest first, as their float32 bit
    patterns do: one integer sort key (row or column << 32 | lightness) sorts several times
    faster than a lexsort of the two."""
    return np.int64(2**31 - 1) - weights.astype(np.float32).view(np.int32)


def _sharing(
    keys: np.ndarray,
    rank: np.ndarray | None = None,
    keep: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(a, b): index pairs of entries with the same key, a ranked before b and among the first
    EARLIER_PER_KEY entries of its key (by rank, then index; by index without rank); only those
    `keep` says, if given (applied as they are found, so that the others never take memory).
    With a rank (integers in [0, 2**32)), the keys are below 2**31."""
    if len(keys) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    # A stable sort: equals stay in index order.
    order = np.argsort(keys if rank is None else (keys << 32) | rank, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    start = np.repeat(starts, np.diff(np.r_[starts, len(keys)]))
    position = np.arange(len(keys)) - start
    a, b = [], []
    at = np.flatnonzero(position > 0)
    for k in range(EARLIER_PER_KEY):
        at = at[position[at] > k]
        first, second = order[start[at] + k], order[at]
        if keep is not None:
            kept = keep(first, second)
            first, second = first[kept], second[kept]
        a.append(first)
        b.append(second)
    return np.concatenate(a), np.concatenate(b)


def _cosines(x: sparse.csr_matrix, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """The dot product of each pair of rows (i[k], j[k])."""
    return np.asarray(x[i].multiply(x[j]).sum(axis=1), dtype=np.float64).ravel()


class SimilarWordings:
    """similar_pairs of wordings in a featurizer's space, remembered between calls: while the
    model stays the same and no new wording comes (a review decision only removes some), the
    pairs of the wordings asked are taken from the last computation; when new wordings come,
    only they are featurized (the rows of the others are kept, for the wordings last asked)."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._lock = threading.Lock()
        self._featurizer: Featurizer | None = None
        self._index: dict[str, int] = {}  # wording key -> its row in the features and pairs
        self._features: Any = None  # the feature rows of the wordings last asked
        self._pairs = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
        self.computed = 0  # how many times the pairs were computed (rather than remembered)

    def pairs(
        self, keys: Sequence[str], wordings: Sequence[str], featurizer: Featurizer
    ) -> tuple[np.ndarray, np.ndarray]:
        """(earlier, later) positions in keys of the similar wordings (keys name the wordings:
        the same key, the same wording)."""
        with self._lock:
            if featurizer is not self._featurizer:
                self._featurizer, self._index, self._features = featurizer, {}, None
            if self._features is None or any(k not in self._index for k in keys):
                self._features = self._feature_rows(keys, wordings, featurizer)
                self._pairs = similar_pairs(self._features, self.threshold, len(featurizer.words))
                self._index = {k: n for n, k in enumerate(keys)}
                self.computed += 1
            index, (a, b) = self._index, self._pairs
        # Rows of the last computation -> positions now (-1: no longer there).
        position = np.full(len(index), -1, dtype=np.int64)
        position[[index[k] for k in keys]] = np.arange(len(keys))
        a, b = position[a], position[b]
        present = (a >= 0) & (b >= 0)
        a, b = a[present], b[present]
        return np.minimum(a, b), np.maximum(a, b)

    def _feature_rows(
        self, keys: Sequence[str], wordings: Sequence[str], featurizer: Featurizer
    ) -> sparse.csr_matrix:
        """The feature rows of the wordings, in order: those of the last call kept, the new
        ones featurized."""
        from scipy import sparse

        new = [n for n, key in enumerate(keys) if key not in self._index]
        rows = sparse.csr_matrix(featurizer.transform([wordings[n] for n in new]))
        if len(new) == len(keys):
            return rows
        # Row of each wording in [kept rows; new rows].
        at = np.array([self._index.get(key, -1) for key in keys], dtype=np.int64)
        at[new] = self._features.shape[0] + np.arange(len(new))
        return sparse.vstack([self._features, rows], format="csr")[at]
