"""Chinese word features: jieba's words beside the character n-grams (no TensorFlow needed)."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model.chinese import _CHINESE_RUN, dictionary_words, has_chinese, segment_chinese, segmenter
from model.text import FeatureSpec, Featurizer

GRADUATE_SCHOOL = ["研究生院在哪", "研究生宿舍怎么样"]
MEANING_OF_LIFE = ["生命的意义", "什么是生命"]
ROOT = Path(__file__).resolve().parents[2]
SEED_QUESTIONS = ROOT / "bot" / "data" / "seed_qa.csv"
OUT_OF_SCOPE_QUESTIONS = ROOT / "model" / "data" / "out_of_scope.csv"


def nearest_answer(featurizer: Featurizer, answers: list[list[str]], question: str) -> int:
    """The answer whose questions' mean feature row is the most similar to the question's."""
    query = featurizer.transform([question]).toarray()[0]
    centroids = [featurizer.transform(questions).toarray().mean(axis=0) for questions in answers]
    return int(np.argmax([query @ centroid for centroid in centroids]))


def test_chinese_runs_are_cut_into_dictionary_words() -> None:
    assert segment_chinese("研究生命") == ["研究", "生命"]
    assert segment_chinese("hello") == ["hello"]
    assert has_chinese("我的password") and not has_chinese("password")


def test_mixed_chinese_and_english_keeps_both_kinds_of_words() -> None:
    assert segment_chinese("我的password忘了怎么办") == [
        "我",
        "的",
        "password",
        "忘",
        "了",
        "怎么办",
    ]
    featurizer = Featurizer.fit(["我的password忘了怎么办", "reset my password"])
    assert {"password", "怎么办", "我 的", "的 password"} <= set(featurizer.words)
    # The English word is shared by both questions: the mixed one matches the English one.
    rows = featurizer.transform(["password忘了", "reset my password"]).toarray()
    assert rows[0] @ rows[1] > 0


def test_word_features_of_chinese_exist_and_decide_a_question_characters_get_wrong() -> None:
    # "研究生命" (to study life) shares more characters with 研究生 (graduate student) questions
    # than with 生命 (life) ones; its words are 研究 + 生命.
    answers = [GRADUATE_SCHOOL, MEANING_OF_LIFE]
    questions = GRADUATE_SCHOOL + MEANING_OF_LIFE
    characters_only = Featurizer.fit(questions, FeatureSpec(chinese_words=False))
    with_words = Featurizer.fit(questions)
    assert "生命" not in characters_only.words and "生命" in with_words.words
    assert nearest_answer(characters_only, answers, "研究生命") == 0
    assert nearest_answer(with_words, answers, "研究生命") == 1


def test_english_features_do_not_change() -> None:
    questions = ["how do I reset my password", "where is my order?", "Straße 42"]
    plain = Featurizer.fit(questions, FeatureSpec(chinese_words=False))
    with_words = Featurizer.fit(questions)
    assert plain.words == with_words.words
    assert (plain.transform(questions) != with_words.transform(questions)).nnz == 0


def test_featurizers_saved_before_chinese_words_keep_reading_runs_whole() -> None:
    featurizer = Featurizer.fit(["你叫什么名字", "你好"])
    saved = featurizer.to_json()
    del saved["spec"]["chinese_words"]
    assert Featurizer.from_json(saved).spec.chinese_words is False


def jieba_imported_after(statement: str) -> str:
    """What a fresh interpreter prints when it has run the statement (with the featurizer
    imported): whether jieba is imported, and anything jieba printed."""
    code = (
        "import sys; from pathlib import Path; from model.text import Featurizer; "
        f"{statement}; print('jieba' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout


@pytest.mark.slow  # a fresh interpreter
def test_importing_the_featurizer_does_not_load_jieba() -> None:
    assert jieba_imported_after("import model.predictor").strip() == "False"


@pytest.mark.slow  # a fresh interpreter
def test_loading_a_chinese_model_loads_the_dictionary_silently(tmp_path) -> None:
    path = tmp_path / "features.json"
    Featurizer.fit(["你叫什么名字", "你好"]).save(path)
    printed = jieba_imported_after(f"Featurizer.load(Path({str(path)!r}))")
    # The one line printed is the test's own: jieba wrote nothing to stdout.
    assert printed == "True\n"


def test_a_vocabulary_without_chinese_words_keeps_runs_whole_with_the_same_features() -> None:
    featurizer = Featurizer.fit(["reset my password", "reset password", "where is my order"])
    assert not featurizer.cuts_chinese
    # A run between two English words is a word of its own: no bigram joins them across it.
    texts = ["password忘了怎么办", "我的password", "reset 我 password", "my 研究生命 order", "⼀"]
    whole = featurizer.transform(texts)
    featurizer.cuts_chinese = True
    cut = featurizer.transform(texts)
    assert whole.nnz > 0 and (whole != cut).nnz == 0


@pytest.mark.slow  # a fresh interpreter
def test_an_english_model_never_loads_jieba_for_chinese_questions(tmp_path) -> None:
    path = tmp_path / "features.json"
    Featurizer.fit(["reset my password", "where is my order"]).save(path)
    printed = jieba_imported_after(
        f"Featurizer.load(Path({str(path)!r})).transform(['我的password忘了'])"
    )
    assert printed == "False\n"


def test_dictionary_words_are_jiebas_words_without_its_hmm() -> None:
    # The features depend on the words: the fast path must cut every run exactly as jieba does.
    jieba = segmenter()
    runs = [
        run
        for path in [SEED_QUESTIONS, OUT_OF_SCOPE_QUESTIONS]
        for line in path.read_text(encoding="utf-8").splitlines()
        for run in _CHINESE_RUN.findall(line)
    ]
    assert len(runs) > 100
    # Made-up runs: dictionary words and characters strung together (ties, unknown characters,
    # words across each other), and ideographs jieba leaves out of its range (extension A,
    # compatibility forms, the end of the unified block).
    rng = random.Random(0)
    known = sorted(w for w, count in jieba.FREQ.items() if count and _CHINESE_RUN.fullmatch(w))
    pieces = [*rng.sample(known, 2000), "㐀", "豈", "鿿", "龥", "一"]
    runs += ["".join(rng.choices(pieces, k=rng.randint(1, 12))) for _ in range(3000)]
    runs += ["研究生命", "㐀研究㐁", "豈研究生", "一一一一一", "的的的的"]
    assert [dictionary_words(run) for run in runs] == [jieba.lcut(run, HMM=False) for run in runs]
