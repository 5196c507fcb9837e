"""The review queue: the logged questions an admin should decide, grouped (by wording, similar
wordings in the live model's feature space, or the answer users confirmed) and ordered by what
deciding them is expected to teach. Built in the child process from the rows the store reads."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import gc
import os
import pickle
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast, overload

import numpy as np

from bot.app.similarity import Featurizer, SimilarWordings
from bot.app.workers import ChildWorker
from bot.storage.learning_records import (
    REVIEW_BELOW_CONFIDENCE,
    LearningRecords,
    QueueRows,
    read_decision_rows,
    read_queue_rows,
    review_key,
)
from bot.storage.store import Store
from model.datasets import answer_key
from model.predictor import AnswerModel

if TYPE_CHECKING:
    from sqlalchemy import Row

# Wordings whose feature vectors are at least this similar (cosine) are reviewed together.
SIMILAR_QUESTIONS = 0.7
# The coverage weight of a review item whose likely answer is not known (see review_priority).
UNKNOWN_ANSWER_COVERAGE = 1.5
# How many items at the head of the review queue the live model scores again (rescored_head):
# more than an admin decides between two retrainings.
RESCORED_HEAD = 200


class ReviewKind(enum.StrEnum):
    """What a review item asks of the admin."""

    # Questions that need an answer: map, write one, mark out of scope, or ignore.
    QUESTION = "question"
    # Questions whose answer users confirmed (👍, and no 👎 on them): approve them all with
    # `answer` in one press (LearningLoop.approve_confirmed), or ignore them.
    CONFIRMED = "confirmed"


class ReviewReason(enum.StrEnum):
    """Why a question is in the review queue (counted per item; `qabot review` prints these
    words, Telegram the catalog's review_reason_<name> in the admin's language)."""

    PERSON = "answered by a person"
    THUMBS_DOWN = "👎"
    CHOSEN = "chosen by the asker"
    NONE_OF_THESE = "none of these"
    FALLBACK = "fallback"
    LOW_CONFIDENCE = "low confidence"
    THUMBS_UP = "👍"


def _empty_counter() -> Counter[str]:
    """An empty Counter without Counter.__init__, which runs Python code (update(None)): a
    third of the cost of a review item, of which a queue builds thousands."""
    return Counter.__new__(Counter)


@dataclass
class ReviewItem:
    """A group of logged questions decided at once. QUESTION: similar questions, the same up to
    case, spaces and punctuation and, when a model is there to compare them, wordings close in
    its feature space. CONFIRMED: the questions users confirmed one answer for.

    `wordings` holds every question of the group (one per match key): a decision covers them
    all. The queue is ordered by `priority` (see review_priority)."""

    key: str
    question: str  # the most recent wording
    exchange_id: int  # its exchange: the item's handle in buttons
    count: int = 0  # how often its questions were asked (answers by a person not counted)
    kind: ReviewKind = ReviewKind.QUESTION
    # CONFIRMED: the answer users confirmed, as it was sent (Telegram HTML), and its id.
    answer: str | None = None
    answer_id: str | None = None
    # How many of its asks were likely answered wrong: 1 for a 👎 or "none of these", else
    # 1 - the confidence stored with the reply (the model's own estimate at the time).
    expected_wrong: float = 0.0
    # The answers the model gave or the askers chose (not 👎'd): answer id -> how often.
    likely_answers: Counter[str] = field(default_factory=_empty_counter)
    # The answers users rated 👎: answer id -> on how many asks.
    rejected_answers: Counter[str] = field(default_factory=_empty_counter)
    priority: float = 0.0
    # CONFIRMED: match key -> the exchange of its first 👍, so that a press approves only the
    # questions confirmed when the item was shown (exchange_id is its newest then).
    first_confirmed: dict[str, int] = field(default_factory=dict)
    reasons: Counter[str] = field(default_factory=_empty_counter)
    suggestions: list[tuple[int, str]] = field(default_factory=list)  # (feedback id, text)
    # Answers people gave in the support chat (hand-off): (exchange id, answer).
    person_answers: list[tuple[int, str]] = field(default_factory=list)
    # Answers the askers chose among "did you mean" buttons: answer text → (choice id, presses).
    choices: dict[str, tuple[int, int]] = field(default_factory=dict)
    wordings: dict[str, str] = field(default_factory=dict)  # match key → a wording
    exchange_ids: set[int] = field(default_factory=set)

    def absorb(self, other: ReviewItem) -> None:
        self.count += other.count
        self.expected_wrong += other.expected_wrong
        self.likely_answers.update(other.likely_answers)
        self.rejected_answers.update(other.rejected_answers)
        self.reasons.update(other.reasons)
        self.suggestions += other.suggestions
        self.person_answers += other.person_answers
        for answer, (choice_id, presses) in other.choices.items():
            self.add_choice(choice_id, answer, presses)
        self.wordings.update(other.wordings)
        self.exchange_ids |= other.exchange_ids

    def add_choice(self, choice_id: int, answer: str, presses: int = 1) -> None:
        first_id, seen = self.choices.get(answer, (choice_id, 0))
        self.choices[answer] = (first_id, seen + presses)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its field values, counters as dicts and the kind as its value, which
        pickle in C: a 17,000-item queue pickles in 0.16 s instead of 0.25 s, into 2.8 MB
        instead of 7.8 MB (each item pickled alone names the classes of its fields again)."""
        return (_unpickled_item, tuple(map(_plain, map(self.__getattribute__, _ITEM_FIELDS))))


_ITEM_FIELDS = tuple(f.name for f in fields(ReviewItem))
_ITEM_COUNTERS = tuple(f.name for f in fields(ReviewItem) if f.default_factory is _empty_counter)


def _plain(value: object) -> object:
    if type(value) is Counter:
        return dict(value)
    return value.value if type(value) is ReviewKind else value


def _unpickled_item(*values: Any) -> ReviewItem:
    item = ReviewItem.__new__(ReviewItem)
    vars(item).update(zip(_ITEM_FIELDS, values, strict=True))
    item.kind = ReviewKind(item.kind)
    for name in _ITEM_COUNTERS:
        setattr(item, name, Counter(getattr(item, name)))
    return item


class ReviewQueue(Sequence[ReviewItem]):
    """The review items, most instructive first, as the child process built them: pickled one
    after another in one string, each unpickled when asked for, so a 20,000-item queue reaches
    this process as three objects, and costs it (and its event loop) little more than the one
    item shown."""

    def __init__(self, items: Sequence[ReviewItem], similar_computed: int = 0) -> None:
        pickled = [pickle.dumps(item, pickle.HIGHEST_PROTOCOL) for item in items]
        self._pickled = b"".join(pickled)
        self._ends = np.cumsum([len(item) for item in pickled], dtype=np.int64)
        ids = sorted((i, n) for n, item in enumerate(items) for i in item.exchange_ids)
        self._exchange_ids = np.array([i for i, _ in ids], dtype=np.int64)
        self._positions = np.array([n for _, n in ids], dtype=np.int64)
        self.built_by_pid = os.getpid()
        # How many times the child computed the similar pairs (rather than remembered them).
        self.similar_computed = similar_computed

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, index: int) -> ReviewItem: ...
    @overload
    def __getitem__(self, index: slice) -> list[ReviewItem]: ...
    def __getitem__(self, index: int | slice) -> ReviewItem | list[ReviewItem]:
        if isinstance(index, slice):
            return [self._item(n) for n in range(len(self))[index]]
        return self._item(range(len(self))[index])  # IndexError past the end, as a list's

    def _item(self, n: int) -> ReviewItem:
        start = int(self._ends[n - 1]) if n else 0
        return cast(ReviewItem, pickle.loads(memoryview(self._pickled)[start : self._ends[n]]))

    def group_of(self, exchange_id: int) -> ReviewItem | None:
        """The item holding this exchange, if queued."""
        at = int(np.searchsorted(self._exchange_ids, exchange_id))
        if at < len(self._exchange_ids) and self._exchange_ids[at] == exchange_id:
            return self[int(self._positions[at])]
        return None


class RememberedProbabilities:
    """A model's probabilities of questions, each predicted once: from one decision to the
    next, the head of the review queue holds the same questions but one or two."""

    def __init__(self) -> None:
        self._model: AnswerModel | None = None
        self._rows: dict[str, np.ndarray] = {}  # question -> its probabilities

    def of(self, model: AnswerModel) -> Callable[[list[str]], np.ndarray]:
        if model is not self._model:
            self._model, self._rows = model, {}
        rows = self._rows

        def probabilities(questions: list[str]) -> np.ndarray:
            new = [q for q in dict.fromkeys(questions) if q not in rows]
            if new:
                rows.update(zip(new, model.probabilities(new), strict=True))
            return np.array([rows[q] for q in questions])

        return probabilities


# The child process's memory: the featurizers and the live model read, and the similar pairs
# last computed.
_featurizers: dict[Path, Featurizer] = {}
_live_models: dict[Path, AnswerModel] = {}
_similar_wordings = SimilarWordings(SIMILAR_QUESTIONS)
# ... the rows of the log last read (by log_state), and the live model's probabilities of the
# questions at the head of the queue.
_log_rows: dict[tuple[Any, ...], QueueRows] = {}
_head_probabilities = RememberedProbabilities()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage collection meanwhile: building a queue makes a few hundred thousand objects,
    hardly any of them in a reference cycle (those wait for the next collection), and the
    collections they would set off, each scanning them again, took a quarter of the child's
    CPU."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@collector_paused()
def build_review_queue(
    database_url: str,
    known_keys: set[str] | frozenset[str],
    features_path: Path | None,
    model_path: Path | None = None,
    log_state: tuple[Any, ...] | None = None,
) -> ReviewQueue:
    """The review queue (see ReviewQueues.build), read from a store of its own: what
    the child process runs. log_state: what the log's rows were read at (the reader, then what
    changes when they do); when it is the last build's, only the decisions and the training
    set's counts are read again (after a review decision, as /review shows the next item)."""

    async def read() -> QueueRows:
        store = Store(database_url)
        try:
            remembered = _log_rows.get(log_state) if log_state is not None else None
            if remembered is None:
                return await read_queue_rows(store)
            decided, wordings_per_answer = await read_decision_rows(store)
            return replace(remembered, decided=decided, wordings_per_answer=wordings_per_answer)
        finally:
            await store.close()
            await store.engine.dispose()

    rows = asyncio.run(read())
    _log_rows.clear()  # one store's rows at a time
    if log_state is not None:
        _log_rows[log_state] = rows
    model = None
    featurizer: Featurizer | None = None
    if model_path is not None:
        if model_path not in _live_models:
            _live_models.clear()  # one model at a time
            _live_models[model_path] = AnswerModel.load(model_path)
        model = _live_models[model_path]
        featurizer = model.featurizer
    elif features_path is not None:
        if features_path not in _featurizers:
            from model.text import Featurizer as TextFeaturizer

            _featurizers.clear()
            _featurizers[features_path] = TextFeaturizer.load(features_path)
        featurizer = _featurizers[features_path]
    items = grouped_queue(rows, known_keys, featurizer, _similar_wordings)
    if model is not None:
        items = rescored_head(
            items, model, rows.wordings_per_answer, predict=_head_probabilities.of(model)
        )
    return ReviewQueue(items, _similar_wordings.computed)


def grouped_queue(
    rows: QueueRows,
    known_keys: set[str] | frozenset[str],
    featurizer: Featurizer | None,
    similar_wordings: SimilarWordings,
) -> list[ReviewItem]:
    """The review items of these rows, most instructive first (see review_priority); given a
    featurizer, similar wordings are grouped (their pairs remembered by similar_wordings).
    Questions users confirmed an answer for (👍, and no 👎 on any of their asks) are grouped
    by that answer instead."""
    person_answers = rows.person_answers
    feedback_by_exchange: dict[int, list[Row[*tuple[Any, ...]]]] = {}
    for rated in rows.feedback:
        feedback_by_exchange.setdefault(rated.exchange_id, []).append(rated)
    choice_by_exchange = {choice.exchange_id: choice for choice in rows.choices}
    confirmed = _confirmed_groups(rows, known_keys, feedback_by_exchange)
    confirmed_item = {key: item for item in confirmed for key in item.wordings}
    items: dict[str, ReviewItem] = {}
    # Newest first: the first row of a group is its latest wording. (Unpacked: a Row's
    # attributes cost 0.5 µs each, and the loop reads a dozen for each of 20,000 rows.)
    for exchange_id, question, fallback, confidence, answer_id in rows.exchanges:
        key = review_key(question)
        if not key or key in rows.decided or key in known_keys:
            continue
        if key in confirmed_item:  # another ask of a confirmed question: counted there
            if exchange_id not in person_answers:
                confirmed_item[key].count += 1
                confirmed_item[key].expected_wrong += 1 - _clamped(confidence)
            confirmed_item[key].exchange_ids.add(exchange_id)
            continue
        item = items.get(key)
        if item is None:
            item = items[key] = ReviewItem(key, question, exchange_id, wordings={key: question})
        item.exchange_ids.add(exchange_id)
        if exchange_id in person_answers:  # the answer to a question counted already
            item.reasons[ReviewReason.PERSON] += 1
            item.person_answers.append((exchange_id, person_answers[exchange_id]))
            continue
        item.count += 1
        thumbs_down = False
        for rated in feedback_by_exchange.get(exchange_id, ()):
            if rated.rating < 0:
                item.reasons[ReviewReason.THUMBS_DOWN] += 1
                thumbs_down = True
            if rated.suggestion:
                item.suggestions.append((rated.id, rated.suggestion))
        choice = choice_by_exchange.get(exchange_id)
        if choice is not None and choice.answer:
            item.reasons[ReviewReason.CHOSEN] += 1
            item.add_choice(choice.id, choice.answer)
            item.likely_answers[answer_key(choice.answer)] += 1
        elif choice is not None:
            item.reasons[ReviewReason.NONE_OF_THESE] += 1
        elif fallback:
            item.reasons[ReviewReason.FALLBACK] += 1
        elif confidence < REVIEW_BELOW_CONFIDENCE:
            item.reasons[ReviewReason.LOW_CONFIDENCE] += 1
        surely_wrong = thumbs_down or (choice is not None and not choice.answer)
        item.expected_wrong += 1.0 if surely_wrong else 1 - _clamped(confidence)
        if answer_id is not None and thumbs_down:
            item.rejected_answers[answer_id] += 1
        elif answer_id is not None and choice is None:
            item.likely_answers[answer_id] += 1
    queue = sorted(items.values(), key=lambda item: -item.count)
    if featurizer is not None and len(queue) >= 2:
        similar = similar_wordings.pairs(
            [item.key for item in queue], [item.question for item in queue], featurizer
        )
        queue = merge_similar(queue, similar)
    return prioritized(queue + confirmed, rows.wordings_per_answer)


def _confirmed_groups(
    rows: QueueRows,
    known_keys: set[str] | frozenset[str],
    feedback_by_exchange: dict[int, list[Row[*tuple[Any, ...]]]],
) -> list[ReviewItem]:
    """One CONFIRMED item per answer: the undecided questions rated 👍 with it, unless one of
    their asks in the window was rated 👎 or they were confirmed with different answers."""
    rated_down = {
        exchange_id
        for exchange_id, ratings in feedback_by_exchange.items()
        if any(rated.rating < 0 for rated in ratings)
    }
    disputed = {review_key(row.question) for row in rows.exchanges if row.id in rated_down}
    answer_of: dict[str, str] = {}
    for row in rows.confirmed:
        key = review_key(row.question)
        if answer_of.setdefault(key, row.answer_id) != row.answer_id:
            disputed.add(key)
    groups: dict[str, ReviewItem] = {}
    for row in rows.confirmed:  # newest first
        key = review_key(row.question)
        if not key or key in rows.decided or key in known_keys or key in disputed:
            continue
        item = groups.get(row.answer_id)
        if item is None:
            item = groups[row.answer_id] = ReviewItem(
                f"confirmed:{row.answer_id}", row.question, row.id,
                kind=ReviewKind.CONFIRMED, answer=row.answer, answer_id=row.answer_id,
            )  # fmt: skip
        item.wordings.setdefault(key, row.question)
        item.first_confirmed[key] = row.id  # newest first: the last one is the first
        item.exchange_ids.add(row.id)
        item.count += 1
        item.reasons[ReviewReason.THUMBS_UP] += 1
        item.expected_wrong += 1 - _clamped(row.confidence)
        item.likely_answers[row.answer_id] += 1
    return list(groups.values())


def prioritized(queue: list[ReviewItem], wordings_per_answer: dict[str, int]) -> list[ReviewItem]:
    """The items with their priority set, highest first (ties: the most asked, then the most
    recent)."""
    typical = _typical_wordings(wordings_per_answer)
    for item in queue:
        item.priority = review_priority(item, wordings_per_answer, typical)
    return sorted(queue, key=_priority_order)


def rescored_head(
    queue: list[ReviewItem],
    model: AnswerModel,
    wordings_per_answer: dict[str, int],
    head: int = RESCORED_HEAD,
    *,
    predict: Callable[[list[str]], np.ndarray] | None = None,
) -> list[ReviewItem]:
    """The queue with its first `head` QUESTION items scored again with the live model's
    predictions of their wordings, and reordered among themselves (still ahead of the rest).

    The log's confidences are those of the model that replied: after a retraining, many of the
    questions a weaker model was unsure of are answered well, and reviewing them teaches little.
    An ask counts as likely wrong by the live model's uncertainty, 1 - (p1 - p2) for the
    probabilities of its two likeliest answers, or 1 when its likeliest answer is one users
    rated 👎 for the group. The out-of-scope class is left out, as in the confidence the log
    stores: a question the model leaves unanswered stays one that people ask and the bot does
    not answer, for the admin to answer or confirm as out of scope.

    Only the head is predicted: the admin sees no further before the queue is built again, and
    predicting a full queue would cost seconds at each build. predict: the model's probabilities
    of questions (model.probabilities; the child remembers them, see RememberedProbabilities)."""
    rescored = [item for item in queue[:head] if item.kind == ReviewKind.QUESTION]
    if not rescored:
        return queue
    probabilities = (predict or model.probabilities)([item.question for item in rescored])
    answer_ids = list(model.classes)
    if model.oos_class is not None:
        probabilities = np.delete(probabilities, model.oos_class, axis=1)
        del answer_ids[model.oos_class]
    ranked = np.sort(probabilities, axis=1)
    second = ranked[:, -2] if probabilities.shape[1] > 1 else 0.0
    uncertainties = 1.0 - (ranked[:, -1] - second)
    best_classes = probabilities.argmax(axis=1)
    typical = _typical_wordings(wordings_per_answer)
    for item, uncertainty, best in zip(
        rescored, uncertainties.tolist(), best_classes.tolist(), strict=True
    ):
        answer_id = answer_ids[best]
        rejected = item.rejected_answers[answer_id] if answer_id is not None else 0
        item.expected_wrong = rejected + (item.count - rejected) * uncertainty
        item.likely_answers = Counter({answer_id: 1} if answer_id and not rejected else {})
        item.priority = review_priority(item, wordings_per_answer, typical)
    ahead = sorted(queue[:head], key=_priority_order)
    return ahead + queue[head:]


def _typical_wordings(wordings_per_answer: dict[str, int]) -> float:
    """How many wordings a typical answer has in the training set (the median; at least 1)."""
    return (
        max(float(np.median(list(wordings_per_answer.values()))), 1.0)
        if wordings_per_answer
        else 1.0
    )


def _priority_order(item: ReviewItem) -> tuple[float, int, int]:
    """Highest priority first; ties: the most asked, then the most recent."""
    return (-item.priority, -item.count, -item.exchange_id)


def review_priority(
    item: ReviewItem, wordings_per_answer: dict[str, int], typical_wordings: float
) -> float:
    """What deciding the item is expected to teach: the replies it would have put right (its
    expected wrong answers: frequency, the model's uncertainty and users' 👎 in one sum), times
    a coverage weight that favours answers with few wordings in the training set, where a new
    wording helps the model most: 1 + t / (t + k), for k wordings of the item's likely answer
    and t wordings for a typical answer (2 for a new answer, 1.5 for a typical one, towards 1
    for a well-covered one; 1.5 when no answer is likely, as for a fallback).

    Cheap by design: it uses what the log stored with each reply (the confidence and the answer
    given at the time) rather than predicting every queued question again."""
    if item.likely_answers:
        [(answer_id, _)] = item.likely_answers.most_common(1)
        wordings = wordings_per_answer.get(answer_id, 0)
        coverage = 1 + typical_wordings / (typical_wordings + wordings)
    else:
        coverage = UNKNOWN_ANSWER_COVERAGE
    return item.expected_wrong * coverage


def _clamped(confidence: float | None) -> float:
    return min(max(confidence or 0.0, 0.0), 1.0)


def merge_similar(
    queue: list[ReviewItem], similar: tuple[np.ndarray, np.ndarray]
) -> list[ReviewItem]:
    """Fold each item into the first (more frequent) item whose wording is similar enough;
    similar: the (earlier, later) positions of the similar pairs of wordings in the queue."""
    earlier, later = similar
    order = np.lexsort((earlier, later))  # by the later item, then the earlier one
    merged_into: dict[int, int] = {}
    # Each item's pairs come after those of every item before it, all of them settled.
    for i, j in zip(earlier[order].tolist(), later[order].tolist(), strict=True):
        if j not in merged_into and i not in merged_into:
            queue[i].absorb(queue[j])
            merged_into[j] = i
    groups = [item for index, item in enumerate(queue) if index not in merged_into]
    return sorted(groups, key=lambda item: -item.count)


class ReviewQueues:
    """The review queue of a store, built by the child process and remembered."""

    def __init__(self, records: LearningRecords, worker: ChildWorker | None = None) -> None:
        """`worker`: the child process for heavy work (the App's; a new one started on first
        use when none is given)."""
        self.records = records
        self.worker = worker if worker is not None else ChildWorker()
        self._queue: tuple[tuple[Any, ...], ReviewQueue] | None = None  # (signature, queue)
        # Names this reader's rows in the child, which other stores may share.
        self._reader = uuid.uuid4().hex

    async def build(
        self,
        known_keys: set[str] | frozenset[str] = frozenset(),
        features_path: Path | None = None,
        model_path: Path | None = None,
    ) -> ReviewQueue:
        """Questions answered with the fallback, with low confidence, rated 👎, or answered by a
        "did you mean" press, grouped by wording (and, given the file of the model's
        featurizer, with similar wordings); and questions rated 👍, grouped by the answer they
        confirmed. Most instructive first (see review_priority; given the live model's
        directory, the head of the queue is scored with its predictions, see rescored_head);
        groups already decided or in the training set are left out.

        Built by the child process, which reads the rows itself: with a full window that is a
        second or more of Python work, which in this process (even in a thread, holding the
        GIL) would stall the event loop. The queue is remembered while the log, the decisions,
        the feedback, the training set and the model stay the same."""
        changes = await self.records.review_changes()
        signature = (*changes, hash(known_keys), str(features_path), str(model_path))
        if self._queue is not None and self._queue[0] == signature:
            return self._queue[1]
        url = self.records.store.engine.url.render_as_string(hide_password=False)
        # A decision changes only the decisions and the training set: the child then reads
        # those again, and keeps the log's rows it read for this store last time.
        log_state = (self._reader, *changes[:3], *changes[4:8])
        queue = await self.worker.run(
            build_review_queue, url, known_keys, features_path, model_path, log_state
        )
        self._queue = (signature, queue)
        return queue
