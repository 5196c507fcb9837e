"""A simulated deployment of the bot, driven through its application layer: the same `App`
use cases the Telegram handlers call (answering, ratings and "did you mean" presses, /review
and its decisions, /retrain behind the promotion gate), on a SQLite file, with the training
worker and the model process the bot runs. Shared by bench/learning_curve.py and its test.

The bot starts from a few wordings per answer, imported and trained as an admin does
(`qabot import`, `qabot train`). Each day users ask questions whose answers the bot is not told;
users who rate, rate every answer truthfully (and press the right "did you mean" button); an
admin decides a number of review items, knowing the true answers, and retrains at the end of
the day. While a retraining runs, the next day's first questions are asked: the bot keeps
answering, and how long those replies waited is measured.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from bot.app.app import App
from bot.app.models import RetrainOutcome
from bot.app.review_queue import ReviewKind
from bot.settings import Settings
from bot.storage.learning_records import review_key
from bot.storage.store import ChatInfo, Store, UserInfo, upgrade_database
from model.datasets import QAPair, answer_key, write_pairs_csv
from model.predictor import AnswerModel, Prediction

ADMIN_ID = 1
# Replies slower than this while a model trains count as stalled.
SLOW_REPLY_MS = 100.0
# Questions in flight at once (users asking at the same time).
CONCURRENT_USERS = 8

Reviewer = Literal["queue", "random"]


@dataclass(frozen=True)
class Question:
    text: str
    answer: str  # the true answer; empty: out of scope (the bot is never told)
    user_id: int


@dataclass(frozen=True)
class Plan:
    """What every deployment of one run shares: the starting set, each day's questions (asked
    in this order) and which users rate."""

    start: list[QAPair]
    days: list[list[Question]]
    raters: frozenset[int]
    test: list[QAPair]  # in-scope pairs, and out-of-scope ones with an empty answer
    reviews_per_day: int
    during_training: int  # questions of each day asked while the last retraining runs


def make_plan(
    train: Sequence[QAPair],
    test: Sequence[QAPair],
    *,
    start_k: int,
    questions_per_day: int,
    reviews_per_day: int,
    days: int,
    seed: int,
    rate_share: float,
    users: int = 500,
    during_training: int = 200,
) -> Plan:
    """k wordings of each answer to start from (none out of scope); the rest of `train` (its
    out-of-scope rows included) is the pool the users' questions are drawn from, with
    replacement (people ask the same question again)."""
    rng = np.random.default_rng(seed)
    by_answer: dict[str, list[QAPair]] = {}
    for pair in train:
        if not pair.out_of_scope:
            by_answer.setdefault(pair.answer, []).append(pair)
    start: list[QAPair] = []
    taken: set[int] = set()
    for answer in sorted(by_answer):
        pairs = by_answer[answer]
        for i in rng.permutation(len(pairs))[:start_k]:
            start.append(pairs[i])
            taken.add(id(pairs[i]))
    pool = [pair for pair in train if id(pair) not in taken]
    if not pool:
        raise ValueError("no questions left for the users to ask: lower --start-k")
    user_ids = np.arange(1000, 1000 + users)
    raters = frozenset(int(u) for u in user_ids if rng.random() < rate_share)
    plan_days = []
    for _ in range(days):
        drawn = rng.integers(len(pool), size=questions_per_day)
        askers = rng.choice(user_ids, size=questions_per_day)
        plan_days.append(
            [
                Question(pool[i].question, pool[i].answer.strip(), int(u))
                for i, u in zip(drawn, askers, strict=True)
            ]
        )
    return Plan(
        start,
        plan_days,
        raters,
        list(test),
        reviews_per_day,
        min(during_training, questions_per_day),
    )


@dataclass(frozen=True)
class TestFigures:
    in_scope_accuracy: float | None
    oos_recall: float | None
    accuracy: float  # right replies over all test questions (a fallback is right out of scope)


def score(predictions: Sequence[Prediction], test: Sequence[QAPair]) -> TestFigures:
    """Figures as `qabot eval` counts them: an in-scope question is right when its answer is
    given (a fallback is wrong), an out-of-scope one when the bot falls back."""
    right_in = right_out = n_in = n_out = 0
    for pair, prediction in zip(test, predictions, strict=True):
        if pair.out_of_scope:
            n_out += 1
            right_out += prediction.fallback
        else:
            n_in += 1
            right_in += prediction.answer_id == answer_key(pair.answer)
    return TestFigures(
        right_in / n_in if n_in else None,
        right_out / n_out if n_out else None,
        (right_in + right_out) / max(n_in + n_out, 1),
    )


@dataclass
class Day:
    """One day of a deployment, its retraining included."""

    day: int
    asked: int = 0
    answered: int = 0  # replies with an answer (not the fallback or "did you mean")
    answered_right: int = 0
    ratings: int = 0
    choices: int = 0
    decisions: Counter[str] = field(default_factory=Counter)  # map / write / oos / ...
    labels: int = 0  # admin decisions since the start
    wordings_labeled: int = 0  # pairs those decisions added, since the start
    training_pairs: int = 0
    promoted: bool | None = None
    gate: dict[str, object] = field(default_factory=dict)  # the gate's own figures
    candidate: TestFigures | None = None
    previous: TestFigures | None = None  # the model it was compared with
    live: TestFigures | None = None  # the model serving after the gate's decision
    # Wall time of the day's parts: asking, reviewing, retraining, measuring on the test data.
    ask_seconds: float = 0.0
    review_seconds: float = 0.0
    train_seconds: float = 0.0
    test_seconds: float = 0.0
    replies_during_training: int = 0
    slow_replies_during_training: int = 0
    max_reply_ms_during_training: float = 0.0
    # The same for the other replies: what a loaded machine costs without any training.
    slow_replies_otherwise: int = 0

    @property
    def gate_right(self) -> bool | None:
        """The gate decided right unless it promoted a candidate more than a point worse on the
        test data, or kept out one more than a point better (within a point either is right:
        two trainings on the same data differ by about that much)."""
        if self.promoted is None or self.candidate is None or self.previous is None:
            return None
        difference = self.candidate.accuracy - self.previous.accuracy
        return difference >= -0.01 if self.promoted else difference <= 0.01


class Deployment:
    """One bot (its own home folder and SQLite file) and its users and admin."""

    def __init__(
        self,
        plan: Plan,
        home: Path,
        reviewer: Reviewer,
        seed: int,
        *,
        training_worker: str | None = None,
        model_process: bool = True,
    ) -> None:
        """training_worker: the module /retrain runs (tests train a small stand-in);
        model_process: answer in a model process beside the bot's, as `qabot run` does."""
        self.plan = plan
        self.training_worker = training_worker
        self.model_process = model_process
        self.home = home
        self.reviewer = reviewer
        self.rng = np.random.default_rng([seed, 1])
        self.truth: dict[str, str] = {}  # review key of every question asked -> true answer
        self.logged: list[str] = []  # questions asked, in order (the random admin's choice)
        self.labels = 0
        self.wordings_labeled = 0
        self.approved: list[QAPair] = []  # every pair an admin decision added
        self.figures: dict[str, TestFigures] = {}  # by model version
        self.app: App | None = None
        self.in_flight = 0
        self.training_started = asyncio.Event()

    async def open(self) -> App:
        settings = Settings(
            QABOT_HOME=self.home, QABOT_ADMIN_IDS=str(ADMIN_ID), QABOT_RATE_LIMIT="0",
            QABOT_MODEL_PROCESS="1" if self.model_process else "0", _env_file=None,
        )  # fmt: skip
        settings.home.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(upgrade_database, settings.database_url)
        store = Store(settings.database_url)
        self.app = App(settings, store)
        if self.training_worker is not None:
            self.app.models.trainer.worker_module = self.training_worker
        await self.app.start()
        # As Telegram's update processor tells it: questions share model calls and commits
        # only when others are in flight.
        self.app.messages_in_progress = lambda: max(1, self.in_flight)
        return self.app

    async def close(self) -> None:
        if self.app is not None:
            await self.app.stop()
            await self.app.store.close()

    async def start(self) -> Day:
        """Day 0: the admin imports the starting file and trains (`qabot import`, then `qabot
        train`, which promotes whatever it trains)."""
        app = self._app()
        data = self.home / "start.csv"
        write_pairs_csv(self.plan.start, data)
        await app.exports.import_pairs(data)
        await app.known_answers.reload(app.store)
        started = time.perf_counter()
        outcome = await app.models.retrain(force=True)
        day = Day(0, train_seconds=time.perf_counter() - started)
        day.promoted = outcome.promoted
        day.live = await self.test_figures()
        day.training_pairs = await app.store.count_pairs()
        return day

    def _app(self) -> App:
        assert self.app is not None, "open() first"
        return self.app

    async def test_figures(self, model: AnswerModel | None = None) -> TestFigures:
        """The model's figures on the test questions (the live model by default), predicted in
        one batch."""
        app = self._app()
        model = model or app.models.current
        assert model is not None
        if model.version not in self.figures:
            predictions = await app.models.predict_batch(
                model, [p.question for p in self.plan.test]
            )
            self.figures[model.version] = score(predictions, self.plan.test)
        return self.figures[model.version]

    # -- users ------------------------------------------------------------------------------

    async def ask(
        self, questions: Sequence[Question], day: Day, *, paced_over: float | None = None
    ) -> None:
        """Users ask these questions, CONCURRENT_USERS at a time; paced_over: spread over this
        many seconds while a retraining runs (the rest at once when it ends earlier)."""
        started = time.perf_counter()
        queue = list(reversed(questions))
        pause = (paced_over or 0.0) * CONCURRENT_USERS / max(len(questions), 1)

        async def user() -> None:
            while queue:
                await self.ask_one(queue.pop(), day)
                if paced_over is not None and self._app().models.training:
                    await asyncio.sleep(pause)

        await asyncio.gather(*(user() for _ in range(CONCURRENT_USERS)))
        day.ask_seconds += time.perf_counter() - started

    async def ask_one(self, question: Question, day: Day) -> None:
        app = self._app()
        self.truth.setdefault(review_key(question.text), question.answer)
        self.logged.append(question.text)
        chat = ChatInfo(question.user_id, "private")
        user = UserInfo(question.user_id, language_code="en")
        training = app.models.training
        self.in_flight += 1
        started = time.perf_counter()
        try:
            reply = await app.answering.reply(chat, user, question.text)
        finally:
            self.in_flight -= 1
        waited_ms = (time.perf_counter() - started) * 1000
        if training or app.models.training:
            day.replies_during_training += 1
            day.slow_replies_during_training += waited_ms > SLOW_REPLY_MS
            day.max_reply_ms_during_training = max(day.max_reply_ms_during_training, waited_ms)
        else:
            day.slow_replies_otherwise += waited_ms > SLOW_REPLY_MS
        day.asked += 1
        truth = answer_key(question.answer) if question.answer else None
        if not reply.fallback:
            day.answered += 1
            day.answered_right += reply.answer_id == truth
        if question.user_id not in self.plan.raters or reply.exchange_id is None:
            return
        if reply.suggestions:  # "did you mean": the right button, or "none of these"
            chosen = next((s.answer_id for s in reply.suggestions if s.answer_id == truth), None)
            await app.answering.choose(reply.exchange_id, chosen, chat_id=chat.id, user_id=user.id)
            day.choices += 1
        elif not reply.fallback:  # answers carry 👍/👎 buttons, fallbacks do not
            rating = 1 if reply.answer_id == truth else -1
            await app.learning.rate(reply.exchange_id, user.id, rating, chat_id=chat.id)
            day.ratings += 1

    # -- the admin --------------------------------------------------------------------------

    async def review(self, day: Day) -> None:
        started = time.perf_counter()
        for _ in range(self.plan.reviews_per_day):
            decided = await (
                self.review_next() if self.reviewer == "queue" else self.review_random()
            )
            if decided is None:
                break
            day.decisions[decided] += 1
        day.labels, day.wordings_labeled = self.labels, self.wordings_labeled
        day.review_seconds = time.perf_counter() - started

    async def review_next(self) -> str | None:
        """/review, then the button an admin who knows the answers presses: for questions, the
        live model's guess when it is right (→), else ✍️ write the answer, or 🚫 out of scope;
        for a group whose answer users confirmed, ✅ approve all when most of its questions
        have that answer, else ignore it. None when the queue is empty."""
        learning = self._app().learning
        queue = await learning.review_queue()
        if not queue:
            return None
        item = queue[0]
        if item.kind == ReviewKind.CONFIRMED:
            questions = list(item.wordings.values())
            truth = self._true_answer(questions, item.question)
            if item.answer and truth and answer_key(truth) == answer_key(item.answer):
                approval = await learning.approve_confirmed(item.exchange_id, ADMIN_ID)
                if approval is not None and approval.approved:
                    self._count(approval.questions, approval.answer)
                    return "approve confirmed"
            await learning.ignore(questions, ADMIN_ID)
            self.labels += 1
            return "ignore confirmed"
        questions = await learning.review_group(item.exchange_id)
        answer = self._true_answer(questions, item.question)
        if not answer:
            await learning.mark_out_of_scope(questions, ADMIN_ID)
            self._count(questions, "")
            return "out of scope"
        key = answer_key(answer)
        mapped = any(a == key for a, _, _ in await learning.candidate_answers(item))
        if mapped:
            answer = await learning.answer_by_id(key) or answer
        await learning.approve(questions, answer, ADMIN_ID)
        self._count(questions, answer)
        return "map" if mapped else "write"

    async def review_random(self) -> str | None:
        """The baseline admin: a logged question drawn at random (none already decided or in
        the training set), answered or marked out of scope on its own."""
        app = self._app()
        while self.logged:
            question = self.logged.pop(int(self.rng.integers(len(self.logged))))
            if app.known_answers.lookup(question) is not None:
                continue
            answer = self.truth[review_key(question)]
            if answer:
                decided = await app.learning.approve([question], answer, ADMIN_ID)
            else:
                decided = await app.learning.mark_out_of_scope([question], ADMIN_ID)
            if decided:
                self._count([question], answer)
                return "answer" if answer else "out of scope"
        return None

    def _true_answer(self, questions: Sequence[str], shown: str) -> str:
        """What the admin decides for a group: the answer most of its wordings have (the shown
        question's on a tie)."""
        answers = Counter(self.truth.get(review_key(q), "") for q in questions)
        best = max(answers.values())
        shown_answer = self.truth.get(review_key(shown), "")
        if answers[shown_answer] == best:
            return shown_answer
        return answers.most_common(1)[0][0]

    def _count(self, questions: Sequence[str], answer: str) -> None:
        self.labels += 1
        self.wordings_labeled += len(questions)
        self.approved += [QAPair(q, answer) for q in questions]

    def report(self, day: Day) -> None:
        """A line on standard error as each day ends: long runs show they advance."""
        live = day.live
        print(
            f"{self.reviewer} bot, day {day.day}: {live}, promoted {day.promoted}, "
            f"{day.labels} labels; asking {day.ask_seconds:.0f} s, reviewing "
            f"{day.review_seconds:.0f} s, training {day.train_seconds:.0f} s, testing "
            f"{day.test_seconds:.0f} s",
            file=sys.stderr,
            flush=True,
        )

    # -- retraining -------------------------------------------------------------------------

    async def retrain(self, day: Day) -> RetrainOutcome:
        """/retrain: train a candidate and let the gate decide."""
        app = self._app()
        previous = await self.test_figures()
        self.training_started.clear()

        async def progress(event: dict[str, object]) -> None:
            self.training_started.set()  # the worker runs: it reports its data checks first

        started = time.perf_counter()
        try:
            outcome = await app.models.retrain(progress)
        finally:
            self.training_started.set()
        day.train_seconds = time.perf_counter() - started
        day.previous = previous
        day.promoted = outcome.promoted
        day.gate = {"candidate": outcome.candidate, "live": outcome.live}
        return outcome

    async def judge(self, day: Day, outcome: RetrainOutcome) -> None:
        """The candidate's and the serving model's figures on the test questions."""
        app = self._app()
        started = time.perf_counter()
        if outcome.promoted:
            day.candidate = await self.test_figures()
        else:
            candidate = await asyncio.to_thread(AnswerModel.load, outcome.trained.path)
            day.candidate = await self.test_figures(candidate)
        day.live = await self.test_figures()
        day.training_pairs = await app.store.count_pairs()
        day.test_seconds = time.perf_counter() - started


@dataclass
class Run:
    days: list[Day]  # day 0 (the starting set trained), then each planned day
    approved: list[QAPair]  # every pair the admin's decisions added
    training_pairs: list[QAPair]  # the store's training set at the end


async def start_deployment(plan: Plan, home: Path) -> Day:
    """Day 0 alone (Deployment.start), in this home: deployments of the same plan start from
    the same trained set, so a copy of this home can start each of them (run_deployment's
    `started`)."""
    deployment = Deployment(plan, home, "queue", 0)
    await deployment.open()
    try:
        return await deployment.start()
    finally:
        await deployment.close()


async def run_deployment(
    plan: Plan,
    home: Path,
    reviewer: Reviewer,
    seed: int,
    *,
    training_worker: str | None = None,
    model_process: bool = True,
    started: Day | None = None,
) -> Run:
    """A deployment through the planned days, each retraining included; started: day 0 when
    the home holds it already (start_deployment)."""
    deployment = Deployment(
        plan, home, reviewer, seed, training_worker=training_worker, model_process=model_process
    )
    app = await deployment.open()
    try:
        days = [started or await deployment.start()]
        deployment.report(days[0])
        pending: tuple[Day, asyncio.Task[RetrainOutcome]] | None = None
        for number, questions in enumerate(plan.days, start=1):
            day = Day(number)
            if pending is not None:
                # The bot keeps answering while yesterday's retraining runs.
                await deployment.training_started.wait()
                # Spread over about as long as the last training took.
                await deployment.ask(
                    questions[: plan.during_training], day, paced_over=days[-1].train_seconds
                )
                yesterday, task = pending
                await deployment.judge(yesterday, await task)
                days.append(yesterday)
                deployment.report(yesterday)
                questions = questions[plan.during_training :]
            await deployment.ask(questions, day)
            await deployment.review(day)
            pending = (day, asyncio.create_task(deployment.retrain(day)))
        if pending is not None:
            last, task = pending
            await deployment.judge(last, await task)
            days.append(last)
            deployment.report(last)
        return Run(days, deployment.approved, await app.store.training_pairs())
    finally:
        await deployment.close()


async def full_data_figures(pairs: Sequence[QAPair], test: Sequence[QAPair], home: Path) -> Day:
    """The model a bot trains when every training question is labeled: imported and trained
    as the starting set is."""
    return await start_deployment(Plan(list(pairs), [], frozenset(), list(test), 0, 0), home)
