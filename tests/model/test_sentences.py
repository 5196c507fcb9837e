"""The sentence model: the encoder's vectors, the member in a trained version, and what it
brings an FAQ (a question in a language nobody taught it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model.datasets import QAPair
from model.negatives import bundled_negatives
from model.predictor import (
    META_FILE,
    WEIGHTS_FILE,
    AnswerModel,
    Mixture,
    Temperatures,
)
from model.sentences import (
    CHINESE,
    OTHER_LANGUAGES,
    VECTOR_SIZE,
    VectorCache,
    bundled_language_centers,
    language_centered,
    language_centers,
    sentence_vectors,
)
from model.train import train


def test_vectors_are_unit_length_for_any_text() -> None:
    texts = ["", "   ", "🙂🙂🙂", "\u200b\x00", "ｆｕｌｌ ｗｉｄｔｈ", "a" * 100_000, "我要退款"]
    vectors = sentence_vectors(texts)
    assert vectors.shape == (len(texts), VECTOR_SIZE) and vectors.dtype == np.float32
    assert np.all(np.isfinite(vectors))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert sentence_vectors([]).shape == (0, VECTOR_SIZE)


def test_a_question_lies_nearest_its_meaning_in_either_language() -> None:
    english = ["i want a refund", "when do you open", "how do i reset my password"]
    chinese = ["我要退款", "你们几点开门", "我忘记密码了怎么办"]
    similarity = sentence_vectors(chinese) @ sentence_vectors(english).T
    assert list(similarity.argmax(axis=1)) == [0, 1, 2]


def test_the_cache_encodes_each_text_once() -> None:
    cache = VectorCache()
    first = cache(["hello", "bye", "hello"])
    assert len(cache._vectors) == 2
    np.testing.assert_array_equal(first[0], first[2])
    np.testing.assert_allclose(cache(["bye"])[0], sentence_vectors(["bye"])[0], atol=1e-6)


def test_the_sentence_model_is_asked_only_about_unsure_rows() -> None:
    asked: list[list[int]] = []

    def sentence_scores(rows: np.ndarray) -> np.ndarray:
        asked.append(rows.tolist())
        return np.array([[0.0, 8.0, 0.0]] * len(rows))

    mixture = Mixture(Temperatures(1.0, 1.0, 1.0), 0.0, 0.5, 0.3, sentence_below=0.9)
    logits = np.array([[9.0, 0.0, 0.0], [1.0, 0.8, 0.0]])  # sure, unsure
    gate, probs = mixture.probabilities(logits, None, sentence_scores, oos_class=2)
    assert asked == [[1]]
    assert probs[0].argmax() == 0 and probs[1].argmax() == 1  # the sentence model decided row 1
    # The gate takes less of it (0.3 against 0.5).
    assert probs[1, 1] > gate[1, 1] > gate[1, 0]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


FAQ = [
    QAPair(question, answer)
    for answer, questions in {
        "Refunds go back to your card within 5 days.": [
            "can i get my money back", "how do refunds work", "i want a refund",
        ],
        "We open at 9 and close at 18, Monday to Friday.": [
            "what are your opening hours", "when do you open", "are you open on monday",
        ],
        "Reset your password from the login page.": [
            "i forgot my password", "how do i reset my password", "cannot log in",
        ],
        "Shipping is free from 50 euros.": [
            "how much is shipping", "is delivery free", "shipping costs",
        ],
        "You can pay by card or bank transfer.": [
            "how can i pay", "do you take credit cards", "payment methods",
        ],
    }.items()
    for question in questions
]  # fmt: skip


@pytest.mark.slow
def test_an_english_faq_answers_chinese_questions_and_old_versions_still_load(
    tmp_path: Path,
) -> None:
    result = train(FAQ, tmp_path / "models", seed=0)
    model = AnswerModel.load(result.path)
    assert model.sentence is not None and model.mixture.sentence_share > 0.0
    asked = {
        "我要退款": "Refunds go back to your card within 5 days.",
        "你们几点开门": "We open at 9 and close at 18, Monday to Friday.",
        "我忘记密码了": "Reset your password from the login page.",
    }
    # Taught in English only, three wordings each: the Chinese questions find their answers
    # (ranked first, most of them answered), and unrelated Chinese still falls back.
    predictions = model.predict_batch(list(asked))
    assert [p.candidates[0][1] for p in predictions] == list(asked.values())
    assert sum(p.answer == right for p, right in zip(predictions, asked.values(), strict=True)) >= 2
    assert model.predict("今天天气怎么样").fallback

    # A version trained before the sentence model (no sentence arrays, no sentence keys in its
    # meta) answers from its network and linear model alone.
    with np.load(result.path / WEIGHTS_FILE) as arrays:
        kept = {k: arrays[k] for k in arrays.files if not k.startswith("sentence.")}
    np.savez(result.path / WEIGHTS_FILE, **kept)
    meta = json.loads((result.path / META_FILE).read_text(encoding="utf-8"))
    for key in ("sentence_share", "sentence_gate_share", "sentence_below", "sentence_temperature"):
        del meta[key]
    (result.path / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    old = AnswerModel.load(result.path)
    assert old.sentence is None and old.mixture.sentence_share == 0.0
    assert old.predict("how do refunds work").answer == asked["我要退款"]


def test_each_language_is_centered_on_its_own_mean() -> None:
    texts = ["hello there", "good morning", "你好", "早上好"]
    vectors = sentence_vectors(texts)
    centers = language_centers(vectors, texts)
    np.testing.assert_allclose(centers[CHINESE], vectors[2:].mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(centers[OTHER_LANGUAGES], vectors[:2].mean(axis=0), atol=1e-6)
    centered = language_centered(vectors, texts, centers)
    np.testing.assert_allclose(np.linalg.norm(centered, axis=1), 1.0, atol=1e-5)
    # Two texts of a language are opposite once their mean is taken away.
    np.testing.assert_allclose(centered[2], -centered[3], atol=1e-5)
    assert not language_centers(vectors[:2], texts[:2])[CHINESE].any()  # no Chinese: no center
    np.testing.assert_array_equal(language_centered(vectors, texts, None), vectors)


def test_the_shipped_language_centers_are_those_of_the_bundled_questions() -> None:
    texts = [pair.question for pair in bundled_negatives()]
    fresh = language_centers(sentence_vectors(texts), texts)
    # If this fails, the bundled questions or the encoder changed: `python -m model.sentences`.
    np.testing.assert_allclose(bundled_language_centers(), fresh, atol=1e-4)
