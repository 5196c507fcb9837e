"""Serving: a trained model directory answered in NumPy (TensorFlow is never imported here)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from model.suggestions import SuggestionRule, offered, top_answers
from model.text import Featurizer

if TYPE_CHECKING:
    from scipy import sparse

META_FILE = "meta.json"
FEATURES_FILE = "features.json"
WEIGHTS_FILE = "weights.npz"
ANSWERS_FILE = "answers.json"
# Version of the model directory layout; bumped whenever files change meaning.
FORMAT_VERSION = 4
# Arrays of the linear model in WEIGHTS_FILE (beside the network's l0, l1, ...).
LINEAR_KERNEL, LINEAR_BIAS = "linear.kernel", "linear.bias"
# Arrays of the sentence model (versions trained before it have none).
SENTENCE_KERNEL, SENTENCE_BIAS = "sentence.kernel", "sentence.bias"
SENTENCE_CENTERS = "sentence.centers"
# Batches larger than this are answered in chunks of this size, as a pipeline: a worker thread
# multiplies each chunk's features by the weights (scipy and NumPy release the GIL there) while
# the calling thread featurizes the next chunks and then turns the probabilities into
# predictions (mostly Python). On two cores a batch of 1,000 takes about a third less time.
PIPELINE_CHUNK = 250
# From this many texts on, features are built in CSC, the faster layout for batches (see
# Featurizer.transform); fewer texts are featurized and multiplied faster in CSR.
BY_COLUMNS_FROM = 48

_worker: ThreadPoolExecutor | None = None
_worker_lock = threading.Lock()


def _pipeline_worker() -> ThreadPoolExecutor:
    """The one thread that computes the probabilities of pipelined chunks."""
    global _worker
    with _worker_lock:
        if _worker is None:
            _worker = ThreadPoolExecutor(1, thread_name_prefix="qabot-model")
        return _worker


# A prediction in plain numbers: best in-scope class, its probability, fallback, the top
# classes with their probabilities (best first), and how many of those are offered as
# suggestions (the first ones; 0: none).
PredictionRow = tuple[int, float, bool, list[int], list[float], int]


class Suggestion(NamedTuple):
    """An answer offered as a "did you mean …?" button."""

    answer_id: str
    answer: str
    # The best-known wording of the answer: its most typical training question.
    wording: str


class Prediction(NamedTuple):
    """The model's reply to one text: an answer, or the fallback with the best guesses.
    (A named tuple: a batch makes one per text, at a third of a frozen dataclass's cost.)

    suggestions: empty unless the model hesitates between a few answers; then up to three
    Suggestions, the likeliest first, to offer as "did you mean …?" buttons (showing each
    one's wording). They come with a fallback (instead of the fallback text) or, less often,
    with an answer given unsure (then that answer is the first suggestion). Chosen by the rule in
    the model's meta (model/suggestions.py).
    """

    answer_id: str | None
    answer: str | None
    confidence: float
    fallback: bool
    candidates: tuple[tuple[str, str, float], ...]
    suggestions: tuple[Suggestion, ...] = ()


@dataclass(frozen=True)
class Decision:
    """Predictions as arrays: best in-scope class, its probability, and fallback, per text."""

    top_class: np.ndarray  # int, best in-scope class
    confidence: np.ndarray  # its probability
    fallback: np.ndarray  # bool


def without_oos(probs: np.ndarray, oos_class: int | None) -> np.ndarray:
    """A copy of probs in which the out-of-scope class can never be the best."""
    in_scope = probs.copy()
    if oos_class is not None:
        in_scope[:, oos_class] = -1.0
    return in_scope


def decide(
    probs: np.ndarray,
    oos_class: int | None,
    threshold: float,
    margin: float,
    gate: np.ndarray | None = None,
) -> Decision:
    """Fallback when the out-of-scope class wins, confidence is low, or the top two are close.

    gate: the probabilities those three tests read (default probs); probs then only choose the
    answer and give its confidence.
    """
    gate = probs if gate is None else gate
    in_scope = without_oos(gate, oos_class)
    if in_scope.shape[1] > 1:
        best_two = -np.partition(-in_scope, 1, axis=1)[:, :2]
        gap = best_two[:, 0] - best_two[:, 1]
        gate_confidence = best_two[:, 0]
    else:
        gap = np.ones(len(gate))
        gate_confidence = in_scope[:, 0]
    fallback = (gate_confidence < threshold) | (gap < margin)
    if oos_class is not None:
        fallback |= gate.argmax(axis=1) == oos_class
    if gate is not probs:
        in_scope = without_oos(probs, oos_class)
    top_class = in_scope.argmax(axis=1)
    confidence = in_scope[np.arange(len(probs)), top_class]
    return Decision(top_class=top_class, confidence=confidence, fallback=fallback)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


def sparse_product(features: sparse.spmatrix, kernel: np.ndarray) -> np.ndarray:
    """features @ kernel as a dense float32 array."""
    if features.shape[0] == 1 and features.format == "csr":
        # One row: gathering the few kernel rows it uses beats a sparse product.
        return (features.data @ kernel[features.indices])[None, :]
    return np.asarray(features @ kernel, dtype=np.float32)


class Network:
    """The trained MLP in NumPy: sparse features, then dense layers with ReLU between them."""

    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray]]):
        self.layers = layers

    @classmethod
    def from_npz(cls, arrays: dict[str, np.ndarray]) -> Network:
        layers: list[tuple[np.ndarray, np.ndarray]] = []
        while f"l{len(layers)}.kernel" in arrays:
            layers.append((arrays[f"l{len(layers)}.kernel"], arrays[f"l{len(layers)}.bias"]))
        if not layers:
            raise ValueError("no network weights found")
        return cls(layers)

    def to_npz(self) -> dict[str, np.ndarray]:
        arrays = {}
        for i, (kernel, bias) in enumerate(self.layers):
            arrays[f"l{i}.kernel"] = kernel
            arrays[f"l{i}.bias"] = bias
        return arrays

    def logits(self, features: sparse.spmatrix) -> np.ndarray:
        kernel, bias = self.layers[0]
        hidden = sparse_product(features, kernel)
        hidden += bias
        for kernel, bias in self.layers[1:]:
            np.maximum(hidden, 0.0, out=hidden)
            hidden = hidden @ kernel + bias
        return hidden


class Linear:
    """A linear model over the same features (class scores = features @ kernel + bias)."""

    def __init__(self, kernel: np.ndarray, bias: np.ndarray):
        self.kernel, self.bias = kernel, bias

    def scores(self, features: sparse.spmatrix) -> np.ndarray:
        return sparse_product(features, self.kernel) + self.bias


def blend(
    network_probs: np.ndarray, linear_probs: np.ndarray | None, linear_share: float
) -> np.ndarray:
    """The answer probabilities: the network's, mixed with the linear model's when there is one."""
    if linear_probs is None or linear_share <= 0.0:
        return network_probs
    mixed = linear_probs * linear_share
    mixed += network_probs * (1.0 - linear_share)
    return mixed


class SentenceModel:
    """A linear model over sentence vectors (model/sentences.py), each less its language's
    center: scores = centered vectors @ kernel + bias. It knows what words mean from the
    encoder's pretraining, where the network and the linear model know only the n-grams of the
    FAQ's own wordings."""

    def __init__(self, kernel: np.ndarray, bias: np.ndarray, centers: np.ndarray | None = None):
        self.kernel, self.bias, self.centers = kernel, bias, centers

    def scores(self, vectors: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        from model.sentences import language_centered

        return language_centered(vectors, texts, self.centers) @ self.kernel + self.bias


@dataclass(frozen=True)
class Temperatures:
    """Softmax temperatures of a version: the network's answer probabilities (fitted for
    likelihood), the gate the fallback rule reads (see calibration.choose_gate_temperature), the
    linear model's and the sentence model's scores."""

    network: float
    gate: float
    linear: float
    sentence: float = 1.0


@dataclass(frozen=True)
class Mixture:
    """How a version's members make its two probability tables (all of it is in its meta).

    The answer probabilities blend the network's and the linear model's (linear_share); the
    gate, which the fallback rule reads, is the network's at its own temperature. For the
    questions whose best answer under that blend is below sentence_below, the sentence model's
    probabilities are mixed into both (sentence_share, sentence_gate_share): the others are
    answered without encoding them, which keeps the median answer fast (decision 0013).
    """

    temperatures: Temperatures
    linear_share: float = 0.0
    sentence_share: float = 0.0
    sentence_gate_share: float = 0.0
    sentence_below: float = 1.0

    def probabilities(
        self,
        logits: np.ndarray,
        linear_scores: np.ndarray | None,
        sentence_scores: Callable[[np.ndarray], np.ndarray] | None,
        oos_class: int | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(gate, answer probabilities) of the members' outputs; sentence_scores gives the
        sentence model's scores of the rows it is passed (None: no sentence model)."""
        temperatures = self.temperatures
        network_probs = softmax(logits / temperatures.network)
        gate = network_probs
        if temperatures.gate != temperatures.network:
            gate = softmax(logits / temperatures.gate)
        linear_probs = None
        if linear_scores is not None:
            linear_probs = softmax(linear_scores / temperatures.linear)
        probs = blend(network_probs, linear_probs, self.linear_share)
        if sentence_scores is None or self.sentence_share <= 0.0:
            return gate, probs
        unsure = np.flatnonzero(without_oos(probs, oos_class).max(axis=1) < self.sentence_below)
        if not unsure.size:
            return gate, probs
        sentence_probs = softmax(sentence_scores(unsure) / temperatures.sentence)
        gate, probs = gate.copy(), probs.copy()
        probs[unsure] = _mixed(probs[unsure], sentence_probs, self.sentence_share)
        gate[unsure] = _mixed(gate[unsure], sentence_probs, self.sentence_gate_share)
        return gate, probs


def _mixed(probs: np.ndarray, other: np.ndarray, share: float) -> np.ndarray:
    return probs * (1.0 - share) + other * share


@dataclass(frozen=True)
class Weights:
    """The network's, the linear model's and the sentence model's weights (the largest file)."""

    network: Network
    linear: Linear | None
    sentence: SentenceModel | None = None

    @classmethod
    def load(cls, path: Path) -> Weights:
        with np.load(path / WEIGHTS_FILE) as arrays:
            network = Network.from_npz({name: arrays[name] for name in arrays.files})
            linear = sentence = None
            if LINEAR_KERNEL in arrays.files:
                linear = Linear(arrays[LINEAR_KERNEL], arrays[LINEAR_BIAS])
            if SENTENCE_KERNEL in arrays.files:
                centers = arrays[SENTENCE_CENTERS] if SENTENCE_CENTERS in arrays.files else None
                sentence = SentenceModel(arrays[SENTENCE_KERNEL], arrays[SENTENCE_BIAS], centers)
        if sentence is not None:
            from model.sentences import load_encoder

            load_encoder()
        return cls(network, linear, sentence)


class AnswerModel:
    """A loaded model version: featurizer, network (linear and sentence models), answers,
    fallback rule.

    The network's probabilities decide whether to answer (fallback rule); the answer given is the
    best of their blend with the linear model's: the two make different mistakes, while the
    linear model's confidence tells out-of-scope questions apart worse than the network's. The
    sentence model joins both for the questions they are unsure of (Mixture).

    `load(path, weights=False)` reads only the small files (rules, answers): the featurizer and
    the weights are read on first use. The bot does that when a model process answers for it
    (bot/serving/model_process.py), so the weights are held in that process only.
    """

    def __init__(
        self,
        path: Path,
        meta: dict,
        classes: list[str | None],
        answers: dict[str, str],
        wordings: dict[str, str] | None = None,
    ):
        self.path = path
        self.meta = meta
        self.version: str = meta["version"]
        self.threshold: float = float(meta["threshold"])
        self.margin: float = float(meta.get("margin", 0.0))
        self.temperature: float = float(meta.get("temperature", 1.0))
        # Versions trained before the gate had its own temperature read the network's.
        self.gate_temperature: float = float(meta.get("gate_temperature", self.temperature))
        self.metrics: dict = meta.get("metrics", {})
        self.suggestion_rule = SuggestionRule.from_json(meta.get("suggestions"))
        self.linear_temperature: float = float(meta.get("linear_temperature", 1.0))
        self.sentence_temperature: float = float(meta.get("sentence_temperature", 1.0))
        self.classes = classes
        self._answers = answers
        self._featurizer: Featurizer | None = None
        self._weights: Weights | None = None
        self._loading = threading.Lock()
        self.oos_class: int | None = classes.index(None) if None in classes else None
        wordings = wordings or {}
        # (answer id, answer text) and the Suggestion per class, as predictions name them. The
        # out-of-scope class gets empty ones: predictions name in-scope classes only.
        self._labels: list[tuple[str, str]] = [
            ("", "") if answer_id is None else (answer_id, answers[answer_id])
            for answer_id in classes
        ]
        self._suggestions: list[Suggestion] = [
            Suggestion("", "", "")
            if answer_id is None
            else Suggestion(answer_id, answers[answer_id], wordings.get(answer_id, ""))
            for answer_id in classes
        ]

    @classmethod
    def load(cls, path: Path, *, weights: bool = True) -> AnswerModel:
        path = Path(path)
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(
                f"model {path.name} has format {meta.get('format')}, this code reads format "
                f"{FORMAT_VERSION}: train a new model"
            )
        table = json.loads((path / ANSWERS_FILE).read_text(encoding="utf-8"))
        model = cls(path, meta, table["classes"], table["answers"], table.get("wordings"))
        if weights:
            model.load_all()
        return model

    def load_all(self) -> None:
        """Read the featurizer and the weights now rather than on first use."""
        self.weights()
        _ = self.featurizer

    @property
    def holds_weights(self) -> bool:
        return self._weights is not None

    @property
    def is_loaded(self) -> bool:
        """Whether predicting needs no file read first (featurizer and weights in memory)."""
        return self._weights is not None and self._featurizer is not None

    @property
    def featurizer(self) -> Featurizer:
        with self._loading:
            if self._featurizer is None:
                self._featurizer = Featurizer.load(self.path / FEATURES_FILE)
            return self._featurizer

    def weights(self) -> Weights:
        with self._loading:
            if self._weights is None:
                self._weights = Weights.load(self.path)
            return self._weights

    @property
    def network(self) -> Network:
        return self.weights().network

    @property
    def linear(self) -> Linear | None:
        return self.weights().linear

    @property
    def linear_share(self) -> float:
        return float(self.meta.get("linear_share", 0.0)) if self.linear is not None else 0.0

    @property
    def sentence(self) -> SentenceModel | None:
        return self.weights().sentence

    @cached_property
    def mixture(self) -> Mixture:
        """How the members make the probabilities (read from the meta once, with the weights)."""
        meta = self.meta
        with_sentences = self.sentence is not None
        return Mixture(
            Temperatures(
                self.temperature,
                self.gate_temperature,
                self.linear_temperature,
                self.sentence_temperature,
            ),
            self.linear_share,
            float(meta.get("sentence_share", 0.0)) if with_sentences else 0.0,
            float(meta.get("sentence_gate_share", 0.0)) if with_sentences else 0.0,
            float(meta.get("sentence_below", 1.0)),
        )

    def answers(self) -> dict[str, str]:
        return dict(self._answers)

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated answer probabilities (rows follow texts, columns follow self.classes)."""
        return self.gate_and_answer_probabilities(texts)[1]

    def gate_and_answer_probabilities(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(network probabilities at the gate's temperature, for the fallback rule; blended
        ones, for the answer)."""
        gates, answers = zip(*self._probabilities_by_chunk(texts), strict=True)
        if len(gates) == 1:
            return gates[0], answers[0]
        return np.concatenate(gates), np.concatenate(answers)

    def _probabilities_by_chunk(self, texts: Sequence[str]) -> Iterator[tuple[np.ndarray, ...]]:
        """gate_and_answer_probabilities of texts, one chunk of PIPELINE_CHUNK texts at a time:
        all chunks are featurized here while the worker thread computes their probabilities."""
        if len(texts) <= PIPELINE_CHUNK:
            yield self._probabilities(texts, self._features(texts))
            return
        worker = _pipeline_worker()
        chunks = []
        for start in range(0, len(texts), PIPELINE_CHUNK):
            chunk_texts = texts[start : start + PIPELINE_CHUNK]
            chunks.append(
                worker.submit(self._probabilities, chunk_texts, self._features(chunk_texts))
            )
        for chunk in chunks:
            yield chunk.result()

    def _features(self, texts: Sequence[str]) -> sparse.spmatrix:
        return self.featurizer.transform(texts, by_columns=len(texts) >= BY_COLUMNS_FROM)

    def _probabilities(
        self, texts: Sequence[str], features: sparse.spmatrix
    ) -> tuple[np.ndarray, np.ndarray]:
        weights = self.weights()
        linear_scores = None
        if weights.linear is not None and self.linear_share > 0.0:
            linear_scores = weights.linear.scores(features)
        sentence_scores = None
        if weights.sentence is not None:
            sentence = weights.sentence

            def sentence_scores(rows: np.ndarray) -> np.ndarray:
                from model.sentences import sentence_vectors

                asked = [texts[row] for row in rows.tolist()]
                return sentence.scores(sentence_vectors(asked), asked)

        logits = weights.network.logits(features)
        return self.mixture.probabilities(logits, linear_scores, sentence_scores, self.oos_class)

    def predict(self, text: str) -> Prediction:
        return self.predict_batch([text])[0]

    def predict_batch(self, texts: Sequence[str]) -> list[Prediction]:
        return self.predictions(self.prediction_rows(texts))

    def prediction_rows(self, texts: Sequence[str]) -> list[PredictionRow]:
        """predict_batch's result in plain numbers (what a model process sends back)."""
        if not texts:
            return []
        # Each chunk's rows are made while the worker computes the next chunks.
        return [
            row
            for gate, probs in self._probabilities_by_chunk(texts)
            for row in self._rows(gate, probs)
        ]

    def predictions(self, rows: Sequence[PredictionRow]) -> list[Prediction]:
        """Predictions, with the answers named, from prediction_rows."""
        labels, suggestions = self._labels, self._suggestions
        no_answer: tuple[str | None, str | None] = (None, None)
        return [
            Prediction(
                *(no_answer if fallback else labels[best]),
                confidence,
                fallback,
                tuple([(*labels[c], p) for c, p in zip(top, top_probs, strict=True)]),
                tuple([suggestions[c] for c in top[:offered_count]]),
            )
            for best, confidence, fallback, top, top_probs, offered_count in rows
        ]

    def _rows(self, gate: np.ndarray, probs: np.ndarray) -> list[PredictionRow]:
        decision = decide(probs, self.oos_class, self.threshold, self.margin, gate)
        in_scope = without_oos(probs, self.oos_class)
        if self.oos_class is not None:
            # Too few answers for MAX_SUGGESTIONS: the out-of-scope class must not be among them.
            in_scope = np.delete(in_scope, self.oos_class, axis=1)
        top, top_probs = top_answers(in_scope)
        if self.oos_class is not None:
            top += top >= self.oos_class
        # Offered answers are the first ones of top (probabilities sorted, one threshold).
        offered_counts = offered(top_probs, self.suggestion_rule).sum(axis=1)
        return list(
            zip(
                decision.top_class.tolist(),
                decision.confidence.tolist(),
                decision.fallback.tolist(),
                top.tolist(),
                top_probs.tolist(),
                offered_counts.tolist(),
                strict=True,
            )
        )
