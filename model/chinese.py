"""Chinese words: jieba's segmenter, with its own dictionary, loaded once per process.

jieba is imported and its dictionary read (about a second) on first need only: by a model whose
vocabulary holds Chinese words when it loads (Featurizer.load), else by the first Chinese text.
Nothing here writes to stdout (`qabot chat` answers there); jieba's messages go to its logger.
"""

from __future__ import annotations

import logging
import re
import threading
from math import log
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jieba

# The CJK ideographs: the unified block, its extension A and the compatibility block.
_CHINESE_RUN = re.compile(r"([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+)")
# The ideographs jieba looks up in its dictionary (its own range); it keeps the others as words
# of one character.
_JIEBA_RUN = re.compile(r"([\u4e00-\u9fd5]+)")

_segmenter: jieba.Tokenizer | None = None
_segmenter_lock = threading.Lock()


def has_chinese(text: str) -> bool:
    return _CHINESE_RUN.search(text) is not None


def segmenter() -> jieba.Tokenizer:
    """The process's jieba tokenizer, its dictionary loaded."""
    global _segmenter
    with _segmenter_lock:
        if _segmenter is None:
            import jieba

            # jieba logs its dictionary loading at DEBUG level to a handler of its own.
            logging.getLogger("jieba").setLevel(logging.WARNING)
            tokenizer = jieba.Tokenizer()
            tokenizer.initialize()
            _segmenter = tokenizer
        return _segmenter


def segment_chinese(word: str, *, cut_runs: bool = True) -> list[str]:
    """The words of a word (a run of letters and digits, no spaces): its Chinese runs cut into
    dictionary words (jieba, without its HMM guesser of unknown words), the rest kept whole.
    Without cut_runs, each Chinese run is one word (jieba is not asked)."""
    parts = _CHINESE_RUN.split(word)
    if len(parts) == 1:
        return [word]
    tokens: list[str] = []
    # split() with a group alternates: other text, Chinese run, other text, ...
    for i, part in enumerate(parts):
        if i % 2:
            tokens += dictionary_words(part) if cut_runs else [part]
        elif part:
            tokens.append(part)
    return tokens


def dictionary_words(run: str) -> list[str]:
    """A run of Chinese characters cut as jieba's `lcut(run, HMM=False)` cuts it, in half its
    time: the same most probable path through the dictionary's words, found without building
    jieba's graph and route dictionaries (tests/model/test_chinese_words.py compares them)."""
    tokenizer = segmenter()
    frequencies, log_total = tokenizer.FREQ, log(tokenizer.total)
    parts = _JIEBA_RUN.split(run)
    words: list[str] = []
    # split() with a group alternates: other characters, jieba's run, other characters, ...
    for i, part in enumerate(parts):
        if i % 2:
            words += _most_probable_words(part, frequencies, log_total)
        else:
            words += part  # one word a character
    return words


def _most_probable_words(run: str, frequencies: dict[str, int], log_total: float) -> list[str]:
    """jieba's route without its HMM: from the end of the run, the best path from each position
    is the dictionary word starting there (a prefix known with a count, else the character
    alone) plus the best path after it, scored by the sum of log(count / total); ties go to the
    longer word. The sums are made in jieba's order, so equal scores stay equal."""
    size = len(run)
    score = [0.0] * (size + 1)
    word_end = [0] * (size + 1)
    for start in range(size - 1, -1, -1):
        best, best_end = None, start + 1
        end = start + 1
        count = frequencies.get(run[start])
        # The dictionary holds every prefix of its words (count 0 when only a prefix).
        while count is not None:
            if count:
                candidate = log(count) - log_total + score[end]
                if best is None or candidate >= best:
                    best, best_end = candidate, end
            if end == size:
                break
            end += 1
            count = frequencies.get(run[start:end])
        score[start] = -log_total + score[start + 1] if best is None else best
        word_end[start] = best_end
    words, start = [], 0
    while start < size:
        words.append(run[start : word_end[start]])
        start = word_end[start]
    return words
