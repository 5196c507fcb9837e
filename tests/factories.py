"""Small builders of test data."""

from __future__ import annotations

from bot.storage.store import ChatInfo, ExchangeRecord, UserInfo


def record(
    chat_id: int = 1, user_id: int | None = 1, question: str = "hi", **fields
) -> ExchangeRecord:
    return ExchangeRecord(
        chat=ChatInfo(chat_id, "private"),
        user=UserInfo(user_id, f"u{user_id}", "Ann", "en") if user_id is not None else None,
        question=question,
        answer=fields.pop("answer", "hello"),
        answer_id=fields.pop("answer_id", "abc"),
        confidence=fields.pop("confidence", 0.9),
        fallback=fields.pop("fallback", False),
        model_version=fields.pop("model_version", "v1"),
        latency_ms=fields.pop("latency_ms", 1.5),
        **fields,
    )
