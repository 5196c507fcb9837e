"""English glosses of Chinese words (CC-CEDICT) as a concept block (no TensorFlow needed)."""

from __future__ import annotations

import numpy as np

from model.datasets import QAPair
from model.glosses import concepts_of, gloss_words, glosser, read_senses
from model.text import CONCEPT_MARK, FeatureSpec, Featurizer
from model.train import TrainConfig, feature_spec

DICTIONARY = """\
# CC-CEDICT
午睡 午睡 [wu3 shui4] /to take a nap/siesta/
個 个 [ge4] /individual/this/that/size/classifier for people or objects in general/
錢 钱 [Qian2] /surname Qian/
孔 孔 [Kong3] /surname Kong/
錢 钱 [qian2] /coin/money/CL:筆|笔[bi3]/
會議室 会议室 [hui4 yi4 shi4] /meeting room/conference room/CL:間|间[jian1]/
"""


def test_gloss_words_keep_the_content_words_of_the_first_meanings() -> None:
    senses = ["to take a nap (after lunch)", "CL:次[ci4]", "siesta", "variant of 午覺|午觉[wu3]"]
    assert gloss_words(senses) == ["take", "nap", "siesta"]
    # Only the first three senses that are meanings count.
    senses = ["CL:個|个[ge4]", "coin", "money", "cash", "wealth"]
    assert gloss_words(senses) == ["coin", "money", "cash"]


def test_the_dictionary_reads_both_writings_and_proper_nouns_only_without_common_words() -> None:
    senses = read_senses(DICTIONARY.splitlines())
    assert senses["钱"] == senses["錢"] == "coin/money/CL:筆|笔[bi3]"
    assert senses["孔"] == "surname Kong"
    assert set(read_senses(DICTIONARY.splitlines(), lambda word: len(word) == 1)) == {
        "个", "個", "钱", "錢", "孔"
    }  # fmt: skip


def test_chinese_words_gloss_into_english_content_words() -> None:
    gloss = glosser()
    assert "nap" in gloss("午睡")
    assert "refund" in gloss("退款") and "refund" in gloss("退钱")
    # Function words gloss into nothing that would match any English question.
    assert not {"what", "can", "how"} & {*gloss("吗"), *gloss("可以"), *gloss("怎么")}
    assert gloss("午睡吗啊啊") == ()  # not a dictionary word
    assert concepts_of(["can", "i", "take", "a", "nap", "wifi", "午睡"]) == [
        "take",
        "nap",
        "wifi",
        *gloss("午睡"),
    ]


def test_a_chinese_question_shares_concepts_with_its_english_wording() -> None:
    questions = ["can I take a nap", "is there a language exchange", "有停车位吗", "我想退款"]
    featurizer = Featurizer.fit(questions)
    assert featurizer.n_concepts > 0
    assert all(w.startswith(CONCEPT_MARK) for w in featurizer.words[: featurizer.n_concepts])
    rows = featurizer.transform(["可以午睡吗", "有语言交换活动吗", *questions[:2]]).toarray()
    similarity = rows[:2] @ rows[2:].T
    # Each Chinese question is closer to its own English wording than to the other one.
    assert similarity[0, 0] > similarity[0, 1] and similarity[1, 1] > similarity[1, 0]
    plain = Featurizer.fit(questions, FeatureSpec(chinese_glosses=False))
    assert plain.n_concepts == 0
    plain_rows = plain.transform(["可以午睡吗", questions[0]]).toarray()
    assert plain_rows[0] @ plain_rows[1] == 0


def test_the_concept_block_weighs_concept_weight() -> None:
    featurizer = Featurizer.fit(["can I take a nap", "我想退款"], FeatureSpec(concept_weight=2.0))
    row = featurizer.transform(["我想退款"]).toarray()[0]
    concepts = row[: featurizer.n_concepts]
    assert np.isclose(np.linalg.norm(concepts), 2.0)
    assert np.isclose(np.linalg.norm(row[featurizer.n_concepts :]), np.sqrt(2.0))


def test_featurizers_saved_before_glosses_read_none() -> None:
    featurizer = Featurizer.fit(["你叫什么名字", "你好", "what is your name"])
    saved = featurizer.to_json()
    del saved["spec"]["chinese_glosses"], saved["spec"]["concept_weight"]
    saved["words"] = [w for w in saved["words"] if not w.startswith(CONCEPT_MARK)]
    saved["idf"] = saved["idf"][featurizer.n_concepts :]
    old = Featurizer.from_json(saved)
    assert old.spec.chinese_glosses is False and old.n_concepts == 0
    assert old.transform(["你叫什么名字", "what is your name"]).nnz > 0


def test_english_faqs_keep_their_features_though_the_negatives_hold_chinese() -> None:
    english = [QAPair("where is my order", "a"), QAPair("reset my password", "b")]
    negatives = [QAPair("今天天气怎么样", ""), QAPair("你好", "")]
    assert feature_spec([*english, *negatives], TrainConfig()).chinese_glosses is False
    bilingual = [*english, QAPair("我的订单在哪", "a")]
    assert feature_spec(bilingual, TrainConfig()).chinese_glosses is True
    questions = [p.question for p in [*english, *negatives]]
    spec = feature_spec([*english, *negatives], TrainConfig())
    plain = Featurizer.fit(questions, FeatureSpec(chinese_glosses=False, concept_weight=1.0))
    kept = Featurizer.fit(questions, spec)
    assert kept.words == plain.words
    assert (kept.transform(questions) != plain.transform(questions)).nnz == 0
