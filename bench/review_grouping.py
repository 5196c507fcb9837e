"""/review's grouping of similar wordings on a full queue: CPU, memory, and how far its groups
are from those of comparing every pair.

    .venv/bin/python bench/review_grouping.py [--queue 20000] [--train F]... [--questions F]...
        [--no-check]

The queue: `--queue` distinct questions of the `--questions` files (in order), else made up as
bench/stalls.py makes them; the features: those of a featurizer fitted on the `--train`
questions (default: the bundled set), as the model's; jieba's dictionary is read beforehand
when its vocabulary holds Chinese words, as loading such a model does. It prints the CPU of
featurizing and of finding the similar pairs (bot/app/similarity.py), the peak memory traced
while finding them, and the groups (review items built and merged), with the garbage collector
paused as the child process pauses it; then, unless --no-check, the similar pairs found by
comparing every pair (in blocks of rows: minutes) and how many wordings land in a different
group.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stalls import queue_questions  # noqa: E402
from bot.app.app import BUNDLED_PAIRS  # noqa: E402
from bot.app.review_queue import (  # noqa: E402
    SIMILAR_QUESTIONS,
    ReviewItem,
    collector_paused,
    merge_similar,
)
from bot.app.similarity import similar_pairs  # noqa: E402
from model.chinese import segmenter  # noqa: E402
from model.datasets import read_pairs  # noqa: E402
from model.text import Featurizer  # noqa: E402
from model.train import LARGE_SET_FEATURES, MIN_PAIRS_FOR_PRUNING  # noqa: E402

Pairs = tuple[np.ndarray, np.ndarray]


def every_similar_pair(features: object) -> Pairs:
    """The similar pairs by comparing every pair of rows, 500 rows at a time."""
    from scipy import sparse

    x = sparse.csr_matrix(features, dtype=np.float64)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    x = sparse.csr_matrix(sparse.diags(1 / np.maximum(norms, 1e-12)) @ x)
    earlier, later = [], []
    for start in range(0, x.shape[0], 500):
        block = (x[start : start + 500] @ x.T).tocoo()
        keep = (block.data >= SIMILAR_QUESTIONS) & (block.col > block.row + start)
        earlier.append(block.row[keep] + start)
        later.append(block.col[keep])
    return np.concatenate(earlier).astype(np.int64), np.concatenate(later).astype(np.int64)


def groups_of(questions: list[str], pairs: Pairs) -> dict[str, str]:
    """Each wording -> the first wording of its group (the queue in the order given)."""
    queue = [
        ReviewItem(q, q, n, count=len(questions) - n, wordings={q: q})
        for n, q in enumerate(questions)
    ]
    return {w: item.key for item in merge_similar(queue, pairs) for w in item.wordings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queue", type=int, default=20_000)
    parser.add_argument("--train", type=Path, action="append", default=[])
    parser.add_argument("--questions", type=Path, action="append", default=[])
    parser.add_argument("--no-check", action="store_true", help="skip comparing every pair")
    args = parser.parse_args()
    train = [p.question for f in args.train or [BUNDLED_PAIRS] for p in read_pairs(f)]
    spec = LARGE_SET_FEATURES if len(train) >= MIN_PAIRS_FOR_PRUNING else None
    featurizer = Featurizer.fit(train, spec)
    questions = queue_questions(args.queue, args.questions)
    featurizer.transform(questions[:10])  # imports out of the figures
    if featurizer.cuts_chinese:
        segmenter()  # jieba's dictionary, read when such a model is loaded

    with collector_paused():  # as the child process builds the queue
        started = time.process_time()
        features = featurizer.transform(questions)
        featurized = time.process_time()
        pairs = similar_pairs(features, SIMILAR_QUESTIONS, len(featurizer.words))
        found = time.process_time()
        groups = groups_of(questions, pairs)
        merged = time.process_time()
    tracemalloc.start()
    similar_pairs(features, SIMILAR_QUESTIONS, len(featurizer.words))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(
        f"{len(questions):,} questions, {features.shape[1]:,} features: featurizing "
        f"{featurized - started:.2f} s CPU, similar pairs {found - featurized:.2f} s CPU "
        f"({len(pairs[0]):,} pairs; peak traced memory {peak / 2**20:.0f} MB), grouping "
        f"{merged - found:.2f} s CPU: {len(set(groups.values())):,} groups"
    )
    if args.no_check:
        return
    started = time.process_time()
    every = every_similar_pair(features)
    exact_groups = groups_of(questions, every)
    differ = sum(groups[w] != exact_groups[w] for w in questions)
    print(
        f"comparing every pair: {time.process_time() - started:.1f} s CPU, {len(every[0]):,} "
        f"pairs, {len(set(exact_groups.values())):,} groups; {differ} wordings in a different "
        f"group ({differ / len(questions):.2%})"
    )


if __name__ == "__main__":
    main()
