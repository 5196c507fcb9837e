"""Chinese words: jieba's segmenter, with its own dictionary, loaded once per process.

jieba is imported and its dictionary read (about a second) on first need only: by a model whose
vocabulary holds Chinese words when it loads (Featurizer.load), else by the first Chinese text.
Nothing here writes to stdout (`qabot chat` answers there); jieba's messages go to its logger.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jieba

# The CJK ideographs: the unified block, its extension A and the compatibility block.
_CHINESE_RUN = re.compile(r"([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+)")

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
            tokens += segmenter().lcut(part, HMM=False) if cut_runs else [part]
        elif part:
            tokens.append(part)
    return tokens
