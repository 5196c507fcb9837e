"""The application layer in one object. Front ends (the Telegram handlers, the console, the
`qabot` CLI) hold an `App` and call its use cases, which alone reach the store, the model
serving, training and the registry:

- `app.answering`: the reply path (answers, "did you mean" presses, non-text messages);
- `app.models`: the model life cycle (serving, retraining behind the gate, rollback, versions);
- `app.learning`: the learning loop (/teach, ratings, suggestions, /review, /stats);
- `app.groups`: when the bot speaks in group chats (/ask, mentions, /autoanswer);
- `app.handoff`: questions passed to people in the support chat, and their answers;
- `app.privacy`: users' own data (/mydata, /forget, retention);
- `app.exports`: conversations and the training set out, Q&A files in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from bot.app.answering import Answering
from bot.app.exports import Exports
from bot.app.groups import GroupChats
from bot.app.handoff import HandoffDesk
from bot.app.known_answers import KnownAnswers
from bot.app.learning import LearningLoop
from bot.app.models import ModelLifecycle
from bot.app.privacy import Privacy
from bot.app.review_queue import ReviewQueues
from bot.app.workers import ChildWorker
from bot.settings import Settings
from bot.storage.exchange_writer import ExchangeWriter
from bot.storage.learning_records import LearningRecords
from bot.storage.store import BUNDLED, Store
from model.datasets import read_pairs

log = logging.getLogger(__name__)

DATA = Path(__file__).resolve().parent.parent / "data"
# The bilingual Q&A set a new bot starts from.
BUNDLED_PAIRS = DATA / "seed_qa.csv"
# Paraphrases of the bundled questions, held out of training: for evaluations and benchmarks.
BUNDLED_PARAPHRASES = DATA / "seed_paraphrases_test.csv"


@contextlib.asynccontextmanager
async def opened_app(settings: Settings) -> AsyncIterator[App]:
    """The application layer for a command that does not answer questions (the command line's):
    the same use cases as the Telegram commands, with no model process."""
    store = Store(settings.database_url)
    app = App(settings, store, serving=False)
    try:
        yield app
    finally:
        app.worker.close()
        await store.close()


class App:
    def __init__(self, settings: Settings, store: Store, *, serving: bool = True) -> None:
        """`serving`: answer questions (a model process beside this one when the settings ask
        for it); a command-line tool that only reads or writes the store passes False."""
        self.settings = settings
        self.store = store
        # How many messages the front end is handling (Telegram's update processor tells; the
        # console handles one at a time). Only with others in progress do questions wait to
        # share a model call or a commit: a lone question is answered without delay.
        self.messages_in_progress: Callable[[], int] = lambda: 1
        self.writer = ExchangeWriter(
            store, busy=self._busy, max_pending_bytes=settings.outage_queue_mb * 2**20
        )
        # The heavy Python work (review queue, exports) runs there, off the event loop.
        self.worker = ChildWorker()
        records = LearningRecords(store)
        known = KnownAnswers()
        self.known_answers = known
        # A version trained in another process (`qabot train`, another replica) was trained on
        # a training set that may have changed here unseen (an import, a /teach there): the
        # exact-match table follows it, as the model does.
        self.models = ModelLifecycle(
            settings, store, records, busy=self._busy, serving=serving,
            on_new_version=lambda: known.reload(store),
        )  # fmt: skip
        self.answering = Answering(self.models, known, records, self.writer)
        self.learning = LearningLoop(
            store, records, ReviewQueues(records, self.worker), self.models, known, self.writer
        )
        self.groups = GroupChats(store, self.answering)
        self.handoff = HandoffDesk(settings, store, self.writer)
        self.privacy = Privacy(store, self.writer, settings.retention_days)
        self.exports = Exports(store, self.writer, settings.home, self.worker)

    def _busy(self) -> bool:
        return self.messages_in_progress() > 1

    async def start(self) -> None:
        """Ready to answer: the exchange writer, the current model (and its process), the
        taught questions."""
        # Exports a crash left behind hold users' conversations.
        await asyncio.to_thread(self.exports.remove_stale, 0)
        await self.writer.start()
        self.worker.start()
        await self.models.start()
        await self.known_answers.reload(self.store)

    async def stop(self) -> None:
        await self.models.stop()
        await self.writer.stop()
        self.worker.close()

    async def open_for_review(self) -> None:
        """What the learning loop needs without answering (`qabot review`): the current
        model's rules and featurizer, and the training set's questions."""
        await self.models.open_rules()
        await self.known_answers.reload(self.store)

    async def prepare_first_run(self) -> None:
        """Load the bundled Q&A set into an empty store and train a first model if there is
        none (`qabot run`)."""
        if await self.store.count_pairs() == 0:
            pairs = await asyncio.to_thread(read_pairs, BUNDLED_PAIRS)
            added = await self.store.add_pairs(pairs, source=BUNDLED)
            log.info("loaded %d bundled Q&A pairs", added)
            await self.known_answers.reload(self.store)
        if self.models.current is None:
            log.info("no model yet: training the first one (this takes a minute)")

            async def show(event: dict[str, Any]) -> None:
                if event.get("event") == "epoch":
                    log.info("training epoch %s/%s", event.get("epoch"), event.get("epochs"))

            outcome = await self.models.retrain(show)
            log.info("first model %s is live", outcome.trained.version)
