"""Training a tiny bilingual model, serving it in NumPy, the train and eval command lines."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model import predictor
from model.calibration import UNTAUGHT, choose_gate_temperature
from model.datasets import QAPair, answer_key, write_pairs_csv
from model.evaluate import evaluate
from model.evaluate import main as eval_main
from model.predictor import (
    LINEAR_KERNEL,
    WEIGHTS_FILE,
    AnswerModel,
    decide,
    softmax,
    without_oos,
)
from model.registry import ModelRegistry
from model.sentences import sentence_vectors
from model.train import (
    ANSWER_WORDING_MAX_WORDS,
    CROSS_VALIDATION,
    CV_FOLDS,
    answer_wordings,
    cross_validation_folds,
    train,
)
from model.train import main as train_main

pytestmark = pytest.mark.slow

GREETING_ZH, NAME_ZH, FOOD_ZH = "你好！", "我的名字是 Chatbot。", "我喜欢吃蘑菇。"
WEATHER_ZH = "我住在服务器里，看不到外面的天气。"
GREETING_EN, NAME_EN, FOOD_EN = "Hello! How can I help?", "My name is Chatbot.", "I like mushrooms."
WEATHER_EN = "I live on a server, so I can't see the weather."

TRAINING_PAIRS = [
    *[QAPair(q, GREETING_ZH) for q in ("你好", "您好", "你好呀", "嗨，你好")],
    *[QAPair(q, NAME_ZH) for q in ("你的名字是什么？", "你叫什么名字", "怎么称呼你", "你叫啥")],
    *[
        QAPair(q, FOOD_ZH)
        for q in ("你喜欢什么样的食物？", "你爱吃什么", "你最喜欢的菜是什么", "你喜欢吃什么东西")
    ],
    *[
        QAPair(q, WEATHER_ZH)
        for q in ("今天天气怎么样", "外面下雨了吗", "明天天气好吗", "天气冷不冷")
    ],
    *[QAPair(q, GREETING_EN) for q in ("hello", "hi there", "hey", "good morning")],
    *[
        QAPair(q, NAME_EN)
        for q in ("what is your name", "what are you called", "your name?", "who are you")
    ],
    *[
        QAPair(q, FOOD_EN)
        for q in (
            "what food do you like",
            "what do you like to eat",
            "favorite food?",
            "do you like pizza",
        )
    ],
    *[
        QAPair(q, WEATHER_EN)
        for q in (
            "how is the weather",
            "is it raining outside",
            "will it be sunny tomorrow",
            "is it cold today",
        )
    ],
    *[
        QAPair(q, "")
        for q in (
            "transfer money to my account",
            "book a flight to paris",
            "what is 17 times 23",
            "帮我订一张机票",
            "股票会涨吗",
            "play some jazz music",
        )
    ],
]

PARAPHRASES = [
    ("你好啊", GREETING_ZH),
    ("你叫什么", NAME_ZH),
    ("你喜欢吃什么食物", FOOD_ZH),
    ("今天外面天气怎么样？", WEATHER_ZH),
    ("Hello!", GREETING_EN),
    ("What's your name?", NAME_EN),
    ("What FOOD do you like to eat?", FOOD_EN),
    ("how's the weather today", WEATHER_EN),
]
OUT_OF_SCOPE = ["transfer money to my account", "please book me a flight", "帮我订一张火车票"]


@pytest.fixture(scope="module")
def registry_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    events: list[dict] = []
    result = train(TRAINING_PAIRS, root, seed=7, progress=events.append)
    assert result.promoted and result.path == root / result.version
    assert events[0]["event"] == "start"
    assert any(e["event"] == "epoch" and e["epoch"] == e["epochs"] for e in events)
    # Without validation data: a fit per cross-validation fold, then the served one on all.
    folds = {f"fold {i}/{CV_FOLDS}" for i in range(1, CV_FOLDS + 1)}
    assert {e["phase"] for e in events} == {*folds, "final"}
    return root


@pytest.fixture(scope="module")
def model(registry_root: Path) -> AnswerModel:
    loaded = ModelRegistry(registry_root).load_current()
    assert loaded is not None
    return loaded


def test_paraphrases_in_chinese_and_english_get_the_right_answer(model: AnswerModel) -> None:
    """Each paraphrase ranks its answer first, and all but one are answered. The bundled
    small-talk negatives next to this FAQ's greeting ("你好吗", "好无聊啊") take enough of
    "你好啊" out of scope that the fallback rule, chosen on eight answers, may give it up."""
    predictions = [model.predict(question) for question, _ in PARAPHRASES]
    answered = 0
    for prediction, (_, answer) in zip(predictions, PARAPHRASES, strict=True):
        assert prediction.candidates[0][:2] == (answer_key(answer), answer)
        if not prediction.fallback:
            answered += 1
            assert prediction.answer_id == answer_key(answer) and prediction.answer == answer
            assert prediction.candidates[0][2] == prediction.confidence
    assert answered >= len(PARAPHRASES) - 1


@pytest.mark.parametrize("question", [*OUT_OF_SCOPE, "", "   ", "😀😀", "x" * 10_000])
def test_out_of_scope_and_junk_get_the_fallback(model: AnswerModel, question: str) -> None:
    prediction = model.predict(question)
    assert prediction.fallback
    assert prediction.answer_id is None and prediction.answer is None
    assert 0.0 <= prediction.confidence <= 1.0


def test_candidates_are_in_scope_best_first(model: AnswerModel) -> None:
    prediction = model.predict("你喜欢吃什么")
    probabilities = [p for _, _, p in prediction.candidates]
    assert len(prediction.candidates) == 3
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(answer_id in model.answers() for answer_id, _, _ in prediction.candidates)
    assert prediction.confidence == probabilities[0]


def test_batch_matches_single_predictions(model: AnswerModel) -> None:
    questions = [q for q, _ in PARAPHRASES] + OUT_OF_SCOPE
    batch = model.predict_batch(questions)
    singles = [model.predict(q) for q in questions]
    for one, other in zip(batch, singles, strict=True):
        assert one.answer_id == other.answer_id and one.fallback == other.fallback
        assert one.confidence == pytest.approx(other.confidence, abs=1e-5)
    assert model.predict_batch([]) == []


def test_model_metadata_and_answers(model: AnswerModel) -> None:
    assert set(model.answers().values()) == {
        GREETING_ZH,
        NAME_ZH,
        FOOD_ZH,
        WEATHER_ZH,
        GREETING_EN,
        NAME_EN,
        FOOD_EN,
        WEATHER_EN,
    }
    assert 0.0 < model.threshold < 1.0
    assert model.metrics["n_classes"] == 9  # eight answers and the out-of-scope class
    # The rule came from cross-validation over the pairs and the bundled negatives.
    assert model.metrics["validation"] == CROSS_VALIDATION
    assert model.metrics["n_bundled_negatives"] > 300
    assert model.path.name == model.version


def test_each_answer_has_a_best_known_wording_among_its_questions(model: AnswerModel) -> None:
    prediction = model.predict("你喜欢")  # a hesitation between the food and greeting answers
    # The out-of-scope class's Suggestion is empty.
    wordings = {s.answer_id: s.wording for s in model._suggestions if s.answer_id}
    questions: dict[str, set[str]] = {
        answer_key(p.answer): set() for p in TRAINING_PAIRS if not p.out_of_scope
    }
    for pair in TRAINING_PAIRS:
        if not pair.out_of_scope:
            questions[answer_key(pair.answer)].add(pair.question)
    assert all(wordings[key] in questions[key] for key in questions)
    assert all(s.wording == wordings[s.answer_id] for s in prediction.suggestions)


def test_reload_gives_identical_probabilities(model: AnswerModel) -> None:
    again = AnswerModel.load(model.path)
    questions = [q for q, _ in PARAPHRASES]
    np.testing.assert_array_equal(again.probabilities(questions), model.probabilities(questions))


def test_models_of_another_format_are_refused_clearly(model: AnswerModel, tmp_path: Path) -> None:
    copy = tmp_path / model.version
    shutil.copytree(model.path, copy)
    meta = json.loads((copy / "meta.json").read_text(encoding="utf-8"))
    (copy / "meta.json").write_text(json.dumps({**meta, "format": 1}), encoding="utf-8")
    with pytest.raises(ValueError, match="has format 1.*train a new model"):
        AnswerModel.load(copy)


def test_same_seed_gives_the_same_model(model: AnswerModel, tmp_path: Path) -> None:
    retrained = train(TRAINING_PAIRS, tmp_path, seed=7, promote=False)
    with (
        np.load(model.path / WEIGHTS_FILE) as first,
        np.load(retrained.path / WEIGHTS_FILE) as second,
    ):
        assert first.files == second.files
        for name in first.files:
            np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    assert ModelRegistry(tmp_path).current_version() is None  # promote=False


def test_serving_never_imports_tensorflow(registry_root: Path) -> None:
    script = (
        "import sys\n"
        "from model.registry import ModelRegistry\n"
        f"model = ModelRegistry({str(registry_root)!r}).load_current()\n"
        "print(model.predict('你叫什么').answer)\n"
        "model.predict_batch(['hello', 'what is your name'])\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))\n"
        "print(loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines() == [NAME_ZH, "[]"]


def test_tiny_sets_train_and_tolerate_single_example_answers(tmp_path: Path) -> None:
    pairs = [QAPair("hi", "hello"), QAPair("bye", "goodbye"), QAPair("thanks", "you're welcome")]
    # Without the bundled negatives nothing can be held out: trained on all, default rule.
    result = train(pairs, tmp_path, seed=1, min_own_out_of_scope=0)
    assert result.metrics["validation"] == "none"
    model = AnswerModel.load(result.path)
    assert model.predict("hi").answer == "hello"


def test_an_answers_first_words_are_one_more_wording_of_it() -> None:
    long_answer = "To reset your password, use the link on the sign-in page."
    assert len(long_answer.split()) > ANSWER_WORDING_MAX_WORDS == 8
    pairs = [
        QAPair("how do I set a new code for my card", "pin_change"),
        QAPair("my code no longer works", "pin_change"),
        QAPair("when will it arrive", "Orders ship within two working days."),
        QAPair("i forgot my password", long_answer),
        QAPair("能退吗", "收到商品三十天内可以无理由退货。"),
        QAPair("goodbye!", "Goodbye"),  # already asked as a question
        QAPair("asdfgh", ""),
    ]
    assert answer_wordings(pairs) == [
        QAPair("pin change", "pin_change"),
        QAPair("Orders ship within two working days.", "Orders ship within two working days."),
        QAPair("to reset your password, use the link on", long_answer),
        QAPair("收到商品三十天内可以无理由退货。", "收到商品三十天内可以无理由退货。"),
    ]
    # Chinese is cut after its first segmented words.
    chinese = "请在登录页面点击“忘记密码”重置密码。"
    cut = "请在登录页面点击“忘记密码”重置"
    assert answer_wordings([QAPair("登录不了", chinese)]) == [QAPair(cut, chinese)]


@pytest.mark.slow
def test_the_words_of_a_short_answer_are_taught_with_it(tmp_path: Path) -> None:
    # No question of these answers holds the answers' own words.
    faq = {
        "pin_change": ["how do I set a new code for my card", "my card code needs replacing",
                       "new secret number for the card", "I want a different code"],
        "lost_luggage": ["the airline never gave me my suitcase", "where did my bags go",
                         "my suitcase did not come off the plane", "I can't find my bag"],
        "book_hotel": ["I need a room for two nights", "reserve a place to stay in Rome",
                       "somewhere to sleep tonight", "get me accommodation in Paris"],
        "order_status": ["where is my parcel", "has my package shipped yet",
                         "when will my purchase arrive", "track my delivery"],
    }  # fmt: skip
    pairs = [QAPair(q, answer) for answer, questions in faq.items() for q in questions]
    model = AnswerModel.load(train(pairs, tmp_path, seed=0).path)
    asked = {"pin change": "pin_change", "lost luggage": "lost_luggage",
             "book a hotel": "book_hotel", "order status": "order_status"}  # fmt: skip
    for question, answer in asked.items():
        prediction = model.predict(question)
        assert (prediction.answer, prediction.fallback) == (answer, False), question


@pytest.mark.slow
def test_the_later_clauses_of_a_long_answer_are_taught_with_it(tmp_path: Path) -> None:
    # Each answer's first sentence has more than ANSWER_WORDING_MAX_WORDS words: its second one
    # is taught by answer_clauses only, and no question of the admin's holds its words.
    faq = {
        "A day pass costs ¥80 and includes coffee and a hot desk until closing. "
        "Lockers can be rented for ¥150 a month.":
            ["how much is a day pass", "price for one day", "day ticket cost"],
        "Meeting rooms are booked in the app under the rooms tab, for any time slot. "
        "Members get four free hours every month.":
            ["how do I book a meeting room", "reserve a room", "meeting room booking"],
        "Dogs are welcome on the fifth floor, on the terrace side of the building. "
        "Please keep them on a leash.":
            ["can I bring my dog", "are pets allowed", "dog friendly?"],
        "The printer is next to the kitchen and prints black and white pages for ¥0.5. "
        "Colour copies cost ¥2 each.":
            ["where can I print", "is there a printer", "printing"],
    }  # fmt: skip
    pairs = [QAPair(q, answer) for answer, questions in faq.items() for q in questions]
    model = AnswerModel.load(train(pairs, tmp_path, seed=0).path)
    asked = ["can I rent a locker", "how many free hours do members get",
             "do they need a leash", "how much are colour copies"]  # fmt: skip
    for question, answer in zip(asked, faq, strict=True):
        assert model.predict(question).candidates[0][1] == answer, question


def test_cross_validation_holds_out_whole_answers_and_keeps_every_answers_last_question() -> None:
    sizes = [i % 4 + 1 for i in range(10)]  # answers 0, 4 and 8 have a single question
    pairs = [QAPair(f"question {i} {j}", f"answer {i}") for i in range(10) for j in range(sizes[i])]
    pairs += [QAPair(f"junk {j}", "") for j in range(12)]
    folds = cross_validation_folds(pairs, seed=0)
    assert len(folds) == CV_FOLDS
    held_in_scope: list[str] = []
    for fold in folds:
        trained = [pairs[i] for i in fold.train_rows]
        unknown = {p.answer for p in pairs if p.answer} - {p.answer for p in trained}
        assert len(unknown) == 2  # a fifth of the ten answers, whole
        # Their questions are held out as untaught: what an unknown question looks like.
        untaught = {p.question for p in pairs if p.answer in unknown}
        held_untaught = zip(fold.held_out, fold.untaught, strict=True)
        assert untaught == {p.question for p, u in held_untaught if u}
        assert len(trained) + len(fold.held_out) == len(pairs)
        held_in_scope += [
            p.question
            for p, u in zip(fold.held_out, fold.untaught, strict=True)
            if not u and not p.out_of_scope
        ]
        assert any(p.question.startswith("junk") for p in fold.held_out)
    assert len(held_in_scope) == len(set(held_in_scope))  # each question held out once at most
    single = {p.question for p in pairs if p.answer in {"answer 0", "answer 4", "answer 8"}}
    assert not single & set(held_in_scope)  # an answer's only question is never held out alone


def test_without_validation_the_rule_comes_from_cross_validation(tmp_path: Path) -> None:
    topics = ["weather", "music", "food", "sport", "travel", "money", "books", "games"]
    pairs = [
        QAPair(f"{opener} {topic} {ending}", f"All about {topic}.")
        for topic in topics
        for opener, ending in [("tell me about", ""), ("what about", "?"), ("I like", "a lot"),
                               ("do you know", "well"), ("talk about", "please")]
    ]  # fmt: skip
    result = train(pairs, tmp_path, seed=3)
    metrics = result.metrics
    assert metrics["validation"] == CROSS_VALIDATION
    assert metrics["n_train"] == len(pairs) + metrics["n_bundled_negatives"]  # served: all pairs
    assert metrics["n"] > 100 and 0.0 < metrics["oos_recall"] <= 1.0
    assert 0.0 < metrics["threshold"] < 1.0
    model = AnswerModel.load(result.path)
    assert (model.threshold, model.margin) == (metrics["threshold"], metrics["margin"])
    assert model.predict("tell me about music").answer == "All about music."
    assert model.predict("asdfgh").fallback
    # The rule reads the network's probabilities at the gate's own temperature, mixed with the
    # sentence model's for the questions the network and the linear model are unsure of.
    assert model.gate_temperature == pytest.approx(metrics["gate_temperature"], rel=1e-3)
    questions = ["tell me about music", "asdfgh"]
    gate, answer_probs = model.gate_and_answer_probabilities(questions)
    features = model.featurizer.transform(questions)
    network_gate = softmax(model.network.logits(features) / model.gate_temperature)
    mixture = model.mixture
    assert model.sentence is not None and mixture.sentence_gate_share > 0.0
    sentence_probs = softmax(
        model.sentence.scores(sentence_vectors(questions), questions) / model.sentence_temperature
    )
    share = mixture.sentence_gate_share
    mixed = network_gate * (1 - share) + sentence_probs * share
    best = without_oos(answer_probs, model.oos_class).max(axis=1)
    # The known question is sure before the sentence model is asked; the gibberish is not.
    assert best[0] >= mixture.sentence_below > best[1]
    np.testing.assert_allclose(gate[0], network_gate[0], rtol=1e-5)
    np.testing.assert_allclose(gate[1], mixed[1], rtol=1e-5)


def test_the_gate_temperature_is_the_one_telling_untaught_questions_apart() -> None:
    # Taught questions have a close runner-up; untaught ones are a clear but weaker best: at the
    # likelihood's temperature (1) the untaught ones look surer, a softer gate ranks them below.
    taught = np.array([[6.0, 5.0, 0, 0, 0, 0]] * 20)
    untaught = np.array([[3.0, 0, 0, 0, 0, 0]] * 20)
    labels = np.array([0] * 20 + [UNTAUGHT] * 20)
    assert softmax(untaught)[0].max() > softmax(taught)[0].max()

    def chosen(logits: np.ndarray) -> float:
        return choose_gate_temperature(logits, softmax(logits), labels, None, 0.7, 1.0)

    assert chosen(np.vstack([taught, untaught])) == 1.5
    # When every temperature ranks them apart alike, the likelihood's one stays.
    assert chosen(np.vstack([taught, untaught / 3])) == 1.0


def test_with_validation_a_linear_model_helps_choose_the_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    validation = [QAPair(q, a) for q, a in PARAPHRASES] + [QAPair(q, "") for q in OUT_OF_SCOPE]
    result = train(TRAINING_PAIRS, tmp_path, val_pairs=validation, seed=7)
    assert result.metrics["validation"] == "given"
    assert result.metrics["linear_temperature"] > 0
    model = AnswerModel.load(result.path)
    assert model.linear is not None and model.linear_share == 0.5
    assert model.linear.kernel.shape == (model.featurizer.size, len(model.classes))
    questions = [q for q, _ in PARAPHRASES] + OUT_OF_SCOPE
    batch = model.predict_batch(questions)
    for one, question in zip(batch, questions, strict=True):
        single = model.predict(question)
        assert (one.answer_id, one.fallback) == (single.answer_id, single.fallback)
        assert one.confidence == pytest.approx(single.confidence, abs=1e-5)
    right = sum(p.answer == answer for p, (_, answer) in zip(batch, PARAPHRASES, strict=False))
    assert right >= len(PARAPHRASES) - 1
    # A batch longer than PIPELINE_CHUNK is answered in chunks (featurized while the previous
    # one is multiplied), and from BY_COLUMNS_FROM texts on with CSC features: to the same
    # probabilities as in one piece of CSR features.
    monkeypatch.setattr(predictor, "BY_COLUMNS_FROM", len(questions) + 1)
    whole = model.gate_and_answer_probabilities(questions)
    for chunk, by_columns_from in ((len(questions), 1), (3, len(questions) + 1), (3, 1)):
        monkeypatch.setattr(predictor, "PIPELINE_CHUNK", chunk)
        monkeypatch.setattr(predictor, "BY_COLUMNS_FROM", by_columns_from)
        pipelined = model.gate_and_answer_probabilities(questions)
        for part, same_part in zip(pipelined, whole, strict=True):
            np.testing.assert_allclose(part, same_part, rtol=1e-6, atol=1e-7)
        answers = [p.answer_id for p in model.predict_batch(questions)]
        assert answers == [p.answer_id for p in batch]
    without = train(TRAINING_PAIRS, tmp_path, val_pairs=validation, seed=7, linear_share=0.0)
    with np.load(without.path / WEIGHTS_FILE) as arrays:
        assert LINEAR_KERNEL not in arrays.files
    assert AnswerModel.load(without.path).linear is None


def test_the_gate_decides_the_fallback_and_probs_the_answer() -> None:
    probs = np.array([[0.1, 0.6, 0.3], [0.5, 0.3, 0.2]])
    gate = np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])
    decision = decide(probs, 2, threshold=0.25, margin=0.0, gate=gate)
    # The out-of-scope class (2) wins in the gate, not in probs: both rows fall back.
    assert decision.fallback.tolist() == [True, True]
    assert decision.top_class.tolist() == [1, 0]  # chosen from probs
    assert decision.confidence.tolist() == [0.6, 0.5]
    gate = np.array([[0.2, 0.7, 0.1], [0.4, 0.35, 0.25]])
    decision = decide(probs, 2, threshold=0.25, margin=0.1, gate=gate)
    assert decision.fallback.tolist() == [False, True]  # row 1: the gate's top two are close


def test_training_without_answers_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no answered questions"):
        train([QAPair("q", ""), QAPair("r", " ")], tmp_path)


def test_evaluate_reports_accuracy_recall_and_speed(model: AnswerModel) -> None:
    pairs = [QAPair(q, a) for q, a in PARAPHRASES] + [QAPair(q, "") for q in OUT_OF_SCOPE]
    result = evaluate(model, pairs)
    # All but one paraphrase answered (test_paraphrases_in_chinese_and_english_...).
    assert result["in_scope_accuracy"] >= 7 / 8 and result["oos_recall"] == 1.0
    assert (result["n"], result["n_in_scope"], result["n_oos"]) == (11, 8, 3)
    assert result["threshold"] == model.threshold
    assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["p99"]
    assert 0.0 <= result["calibration_error"] <= 1.0
    assert result["throughput_per_s"] > 0


def test_train_and_eval_command_lines(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data, oos = tmp_path / "data.csv", tmp_path / "oos.csv"
    write_pairs_csv([p for p in TRAINING_PAIRS if not p.out_of_scope], data)
    write_pairs_csv([QAPair(q, "") for q in OUT_OF_SCOPE], oos)
    models = tmp_path / "models"
    argv = ["--data", str(data), "--oos", str(oos), "--model-dir", str(models), "--progress-json"]
    assert train_main(argv) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[-1]["event"] == "done"
    assert events[-1]["version"] == ModelRegistry(models).current_version()
    assert {"in_scope_accuracy", "oos_recall", "threshold"} <= set(events[-1]["metrics"])
    assert any(event["event"] == "epoch" for event in events)

    assert (
        eval_main(["--data", str(data), "--oos", str(oos), "--model-dir", str(models), "--json"])
        == 0
    )
    figures = json.loads(capsys.readouterr().out)
    assert {"in_scope_accuracy", "oos_recall", "threshold", "n", "latency_ms"} <= set(figures)
    assert {"suggested_rate", "answered_or_suggested"} <= set(figures)
    assert figures["n"] == len(TRAINING_PAIRS) - 6 + len(OUT_OF_SCOPE)

    report = tmp_path / "report"
    assert (
        eval_main(["--data", str(data), "--model-dir", str(models), "--report", str(report)]) == 0
    )
    assert {p.name for p in report.iterdir()} == {
        "per_answer.csv",
        "confusions.csv",
        "confidence.png",
    }


def test_train_command_line_fails_clearly_on_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("question,answer\nq,a,extra\n", encoding="utf-8")
    assert (
        train_main(["--data", str(bad), "--model-dir", str(tmp_path / "m"), "--progress-json"]) == 2
    )
    output = capsys.readouterr()
    message = "bad.csv, line 2: expected 2 fields, found 3"
    assert json.loads(output.out.splitlines()[-1]) == {"event": "error", "message": message}
    assert output.err.strip() == f"error: {message}"
    assert eval_main(["--data", str(bad), "--model-dir", str(tmp_path / "m")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {message}"
    good = tmp_path / "good.csv"
    good.write_text("question,answer\nq,a\n", encoding="utf-8")
    assert eval_main(["--data", str(good), "--model-dir", str(tmp_path / "m")]) == 1
    assert "no current model" in capsys.readouterr().err
