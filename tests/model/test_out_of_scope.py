"""The bundled out-of-scope questions: a small FAQ without out-of-scope rows still falls back on
what it does not know, and the negatives never take the admin's own questions."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.datasets import QAPair, read_pairs
from model.negatives import BUNDLED_OUT_OF_SCOPE, bundled_negatives, far_from
from model.predictor import AnswerModel
from model.text import match_key
from model.train import TrainConfig, negatives_for, train

UNRELATED = read_pairs(Path(__file__).parents[1] / "data" / "unrelated_questions.csv")
NAME = "I'm the Acme help bot: ask me about your orders."
FAQ_EN = {
    "To reset your password, use the link on the sign-in page.": [
        "how do I reset my password", "I forgot my password", "password reset",
        "can't log in, lost my password",
    ],
    "Orders ship within two working days.": [
        "when will my order ship", "how long does shipping take", "where is my parcel",
        "my order hasn't arrived yet",
    ],
    "You can return any item within 30 days for a full refund.": [
        "what is your return policy", "can I return an item", "how do I send something back",
        "I want to return my shoes",
    ],
    "Write to support@acme.example or call 555-0100.": [
        "how can I contact you", "what's your phone number", "customer service email",
        "I need to talk to someone",
    ],
    NAME: ["what's your name", "who are you", "tell me about yourself", "are you a bot"],
}  # fmt: skip
FAQ_ZH = {
    "请在登录页面点击“忘记密码”重置密码。": [
        "怎么重置密码", "我忘记密码了", "密码找不回来", "登录不了怎么办",
    ],
    "订单会在两个工作日内发货。": ["什么时候发货", "快递要多久", "我的包裹到哪了", "订单还没到"],
    "收到商品三十天内可以无理由退货。": [
        "怎么退货", "可以退货吗", "退货政策是什么", "东西不想要了能退吗",
    ],
    "客服电话是 400-800-0100。": ["怎么联系客服", "客服电话多少", "我要找人工客服", "有客服邮箱吗"],
    "我是 Acme 的客服机器人。": ["你叫什么名字", "你是谁", "介绍一下你自己", "你是机器人吗"],
}  # fmt: skip


def faq_pairs(faq: dict[str, list[str]]) -> list[QAPair]:
    return [QAPair(question, answer) for answer, questions in faq.items() for question in questions]


def is_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_the_bundled_set_is_bilingual_and_apart_from_the_test_questions() -> None:
    negatives = bundled_negatives()
    chinese = sum(is_chinese(p.question) for p in negatives)
    assert all(p.out_of_scope for p in negatives)
    assert chinese >= 300 and len(negatives) - chinese >= 300
    assert BUNDLED_OUT_OF_SCOPE.name == "out_of_scope.csv"
    bundled_keys = {match_key(p.question) for p in negatives}
    assert not bundled_keys & {match_key(p.question) for p in UNRELATED}


def test_negatives_close_to_the_admins_questions_are_dropped() -> None:
    negatives = bundled_negatives()
    admin = [*FAQ_EN[NAME], "what's the weather like today"]
    kept = {p.question for p in far_from(negatives, admin)}
    for dropped in ("what's your name", "tell me about yourself", "what's the weather like today"):
        assert dropped not in kept
    for unrelated in ("asdfghjkl", "how do I cook rice", "给我讲个笑话", "😀"):
        assert unrelated in kept
    assert len(kept) > 0.9 * len(negatives)


def test_the_bundled_negatives_join_only_data_with_few_out_of_scope_rows_of_its_own() -> None:
    faq = [QAPair(q, answer) for answer, questions in FAQ_EN.items() for q in questions]
    config = TrainConfig()

    def with_own(count: int) -> list[QAPair]:
        return [*faq, *(QAPair(f"unrelated question {i}", "") for i in range(count))]

    assert len(negatives_for(with_own(config.min_own_out_of_scope - 1), config)) > 300
    assert negatives_for(with_own(config.min_own_out_of_scope), config) == []
    # With out-of-scope questions in the validation data, fewer of its own are enough.
    few = with_own(config.min_own_out_of_scope_validated)
    assert config.min_own_out_of_scope_validated < config.min_own_out_of_scope
    assert len(negatives_for(few, config)) > 300
    assert negatives_for(few, config, validated=True) == []
    assert len(negatives_for(with_own(1), config, validated=True)) > 300


@pytest.mark.slow
@pytest.mark.parametrize("faq", [FAQ_EN, FAQ_ZH], ids=["english", "chinese"])
def test_a_five_answer_faq_without_out_of_scope_rows_falls_back_on_unrelated_questions(
    faq: dict[str, list[str]], tmp_path: Path
) -> None:
    result = train(faq_pairs(faq), tmp_path, seed=0)
    model = AnswerModel.load(result.path)
    chinese = is_chinese(next(iter(faq)))
    unrelated = [p.question for p in UNRELATED if is_chinese(p.question) == chinese]
    fell_back = [p.fallback for p in model.predict_batch(unrelated)]
    assert sum(fell_back) / len(unrelated) >= 0.9, [
        q for q, f in zip(unrelated, fell_back, strict=True) if not f
    ]
    # The admin's own questions stay answered, those the bundled set holds too.
    for answer, questions in faq.items():
        for prediction in model.predict_batch(questions):
            assert prediction.answer == answer
