"""The model life cycle: which version serves, loading it (into the model process when there
is one), retraining behind the promotion gate, promotion, rollback, and the versions with their
figures. The one road for Telegram's /retrain, /models, /rollback and the CLI's train, models,
rollback."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bot.app.gate import (
    NO_LIVE_MODEL,
    NO_LIVE_RECORD,
    WORSE,
    PairedComparison,
    compare,
    paired_outcomes,
    unseen_rated,
)
from bot.serving.batching import PredictionBatcher
from bot.serving.model_process import ModelCallError, ModelProcess, ModelProcessError
from bot.serving.retraining import ProgressCallback, TrainedVersion, TrainingRunner
from bot.settings import Settings
from bot.storage.learning_records import LearningRecords
from bot.storage.store import Store
from model.held_out import HeldOutRecord
from model.predictor import META_FILE, AnswerModel, Prediction
from model.registry import ModelRegistry, VersionInfo

log = logging.getLogger(__name__)

# How often a replica looks for a model promoted elsewhere (by another replica or the CLI).
MODEL_WATCH_SECONDS = 2.0


class EmptyTrainingSetError(Exception):
    """There is no pair to train on."""


@dataclass(frozen=True)
class RetrainOutcome:
    trained: TrainedVersion
    promoted: bool
    # Share of right answers (score), right answers and questions (n) of the new version and of
    # the live one on the questions they were compared on; live is None when not compared.
    candidate: dict[str, Any]
    live: dict[str, Any] | None
    # The paired comparison (bot/app/gate.py); None when there was nothing to compare with ...
    comparison: PairedComparison | None = None
    # ... and then why (NO_LIVE_MODEL, NO_LIVE_RECORD).
    unpaired: str | None = None
    forced: bool = False

    @property
    def gate_figures(self) -> dict[str, Any]:
        """What the gate decided and on what figures (kept with the model version)."""
        figures = {"candidate": self.candidate, "live": self.live, "promoted": self.promoted}
        if self.comparison is not None:
            figures.update(self.comparison.figures())
        return {**figures, "forced": self.forced, "unpaired": self.unpaired}


class ModelLifecycle:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        records: LearningRecords,
        *,
        busy: Callable[[], bool],
        serving: bool = True,
        on_new_version: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """on_new_version: called after a version replaced the one served (a promotion or a
        rollback, here or in another process): what else must follow the training set."""
        self.store = store
        self.on_new_version = on_new_version
        self.records = records
        self.registry = ModelRegistry(settings.models_dir)
        self.trainer = TrainingRunner(
            settings.models_dir,
            settings.home / "training",
            settings.seed,
            niceness=settings.training_niceness,
            threads=settings.training_threads,
        )
        self.current: AnswerModel | None = None
        self.process = ModelProcess() if serving and settings.model_process else None
        self.batcher = PredictionBatcher(busy=busy, model_process=self.process)
        self._watch_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the model process, load the current version and watch for promotions."""
        if self.process is not None:
            try:
                await self.process.start()
            except ModelProcessError as error:
                log.error("%s: answering in the bot's own process", error)
                self.process = self.batcher.model_process = None
        await self.reload()
        self._watch_task = asyncio.create_task(self._watch(), name="model-watch")

    async def stop(self) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
            await asyncio.gather(self._watch_task, return_exceptions=True)
        if self.process is not None:
            await self.process.stop()

    async def reload(self) -> None:
        """Load the registry's current version unless it is the one already serving."""
        current = self.registry.current_version()
        if current is None or (self.current is not None and self.current.version == current):
            return
        try:
            model = await self.load(self.registry.path(current))
        except (OSError, ValueError, ModelCallError) as error:
            # A broken or outdated version: keep serving what we have (`qabot run` trains a
            # new model when there is none).
            log.error("cannot load model %s: %s", current, error)
            return
        replaced, self.current = self.current, model
        log.info("serving model %s (threshold %.3f)", model.version, model.threshold)
        if replaced is not None and self.on_new_version is not None:
            await self.on_new_version()

    async def open_rules(self) -> None:
        """The current version's rules and featurizer without its weights (they stay on disk):
        what reviewing needs in a process that does not answer (`qabot review`)."""
        current = self.registry.current_version()
        if current is not None:
            path = self.registry.path(current)
            self.current = await asyncio.to_thread(AnswerModel.load, path, weights=False)

    async def load(self, path: Path) -> AnswerModel:
        """The model in this directory; its weights are loaded by the model process when there
        is one that runs, else here (in a worker thread: they can be a hundred megabytes)."""
        model = await asyncio.to_thread(AnswerModel.load, path, weights=False)
        process = self.process
        if process is not None and not process.gave_up:
            try:
                await process.load(path)
                return model
            except ModelProcessError as error:
                log.error("%s: loading model %s in the bot's own process", error, path.name)
        await asyncio.to_thread(model.load_all)
        return model

    async def predict(self, text: str) -> Prediction | None:
        """The current model's prediction for one question (batched with others in flight);
        None when there is no model yet."""
        model = self.current
        return None if model is None else await self.batcher.predict(model, text)

    async def predict_batch(self, model: AnswerModel, texts: list[str]) -> list[Prediction]:
        """Predictions for many texts at once (admin work: scoring, review), computed by the
        model process when it serves this model, else in a worker thread."""
        process = self.process
        if process is not None and process.serves(model.path):
            try:
                return model.predictions(await process.predict(model.path, texts))
            except ModelProcessError:
                pass  # it died meanwhile: predict here
        return await asyncio.to_thread(model.predict_batch, texts)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(MODEL_WATCH_SECONDS)
            try:
                await self.reload()
            except Exception:  # whatever goes wrong, the watcher must keep watching
                log.exception("could not load the current model; still serving the previous one")

    @property
    def training(self) -> bool:
        """A training run of this process is in progress."""
        return self.trainer.busy

    async def retrain(
        self, on_progress: ProgressCallback | None = None, *, force: bool = False
    ) -> RetrainOutcome:
        """Train a candidate on the whole training set in a worker process; compare it with the
        live model on questions neither was trained on (gate.py); promote it (and serve it, no
        restart) unless it is significantly worse, or when forced."""
        pairs = await self.store.training_pairs()
        trained = await self.trainer.train(pairs, on_progress)
        # A version that cannot be loaded goes no further.
        candidate_model = await self.load(trained.path)
        outcome = await self._judge(trained, candidate_model, force)
        metrics = {**trained.metrics, "gate": outcome.gate_figures}
        await self.store.record_model_version(trained.version, len(pairs), metrics, promoted=False)
        if outcome.promoted:
            await self.promote(trained.version)
        return outcome

    async def _judge(
        self, trained: TrainedVersion, candidate_model: AnswerModel, force: bool
    ) -> RetrainOutcome:
        live_model = self.current
        candidate_record, live_record = await asyncio.to_thread(
            lambda: (
                HeldOutRecord.load(trained.path),
                None if live_model is None else HeldOutRecord.load(live_model.path),
            )
        )
        if live_model is None or candidate_record is None or live_record is None:
            unpaired = NO_LIVE_MODEL if live_model is None else NO_LIVE_RECORD
            alone = {"score": None, "right": None, "n": 0}
            return RetrainOutcome(trained, True, alone, None, unpaired=unpaired, forced=force)
        rated = unseen_rated(await self.records.rated_exchanges(), candidate_record, live_record)
        questions = [r.question for r in rated]
        comparison = compare(
            paired_outcomes(candidate_record, live_record),
            rated,
            await self.predict_batch(candidate_model, questions) if questions else [],
            await self.predict_batch(live_model, questions) if questions else [],
        )
        promoted = force or comparison.verdict != WORSE
        return RetrainOutcome(
            trained,
            promoted,
            candidate=comparison.score(comparison.candidate_right),
            live=comparison.score(comparison.live_right),
            comparison=comparison,
            forced=force,
        )

    async def train_and_promote(
        self, on_progress: ProgressCallback | None = None
    ) -> RetrainOutcome:
        """`qabot train`: /retrain force, from a process that does not answer questions (the
        live version's rules are read for the comparison). EmptyTrainingSetError when there is
        no pair to train on."""
        if await self.store.count_pairs() == 0:
            raise EmptyTrainingSetError("the training set is empty")
        await self.open_rules()
        return await self.retrain(on_progress, force=True)

    async def promote(self, version: str) -> None:
        await asyncio.to_thread(self.registry.promote, version)
        await self._record_promotion(version)
        await self._serve_current()

    async def rollback(self) -> str:
        """Serve the previously promoted version again, at once (raises RegistryError when
        there is none)."""
        version = await asyncio.to_thread(self.registry.rollback)
        await self._record_promotion(version)
        await self._serve_current()
        return version

    async def record_current(self) -> None:
        """Record the registry's live version as promoted (`qabot train --data` promotes in the
        bot's model folder without the application)."""
        version = self.registry.current_version()
        if version is not None:
            await self._record_promotion(version)

    async def _record_promotion(self, version: str) -> None:
        """The store's model_versions follow the registry: the version promoted last is the
        one live. A version trained elsewhere (`qabot train --data` into the bot's models, a
        copied model folder) is recorded then, with its figures (its number of pairs unknown)."""
        if not await self.store.mark_promoted(version):
            meta = self.registry.path(version) / META_FILE
            metrics = await asyncio.to_thread(lambda: json.loads(meta.read_text())["metrics"])
            await self.store.record_model_version(version, 0, metrics, promoted=True)

    async def _serve_current(self) -> None:
        """Serve the version just promoted at once, when this process answers questions
        (others, and command-line tools, see it with the registry's watch)."""
        if self._watch_task is not None:
            await self.reload()

    async def versions(self) -> list[VersionInfo]:
        """The model versions with their figures, newest first; which one is live. A retrained
        version's figures include the gate's decision (metrics["gate"], RetrainOutcome.
        gate_figures)."""
        versions = await asyncio.to_thread(self.registry.versions)
        gate = await self.store.gate_figures()
        return [
            replace(v, metrics={**v.metrics, "gate": gate[v.name]}) if v.name in gate else v
            for v in versions
        ]
