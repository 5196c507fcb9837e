"""Training: Keras fits the network in this (worker) process; the result is a model version.

TensorFlow is imported inside the functions that need it, so importing this module is cheap
and the serving process never loads TensorFlow.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import random
import re
import sys
import tempfile
import time
import unicodedata
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from scipy import sparse

from model.calibration import (
    DEFAULT_THRESHOLD,
    OUT_OF_SCOPE,
    UNKNOWN_ANSWER,
    UNTAUGHT,
    FallbackRule,
    choose_gate_temperature,
    choose_rule,
    fit_temperature,
    scores,
    should_fall_back,
)
from model.chinese import has_chinese
from model.commands import DATA_REFUSED, train_parser
from model.data_checks import REFUSED, DataReport, check_pairs
from model.datasets import QAPair, answer_key, read_pair_files
from model.figures import CROSS_VALIDATION, GIVEN, NO_VALIDATION, WORDS, figure_phrases
from model.held_out import HeldOutRecord, held_out_record
from model.negatives import bundled_negatives, far_from
from model.predictor import (
    ANSWERS_FILE,
    FEATURES_FILE,
    FORMAT_VERSION,
    LINEAR_BIAS,
    LINEAR_KERNEL,
    META_FILE,
    SENTENCE_BIAS,
    SENTENCE_CENTERS,
    SENTENCE_KERNEL,
    WEIGHTS_FILE,
    Linear,
    Mixture,
    Network,
    SentenceModel,
    Temperatures,
    decide,
    without_oos,
)
from model.registry import ModelRegistry
from model.sentences import VectorCache, bundled_language_centers
from model.suggestions import (
    SuggestionRule,
    choose_suggestion_rule,
    suggestion_figures,
    top_answers,
)
from model.text import MAX_FEATURE_CHARS, FeatureSpec, Featurizer, match_key, words_of

# Without validation pairs, the fallback rule is chosen by cross-validation (see
# cross_validation_folds): CV_FOLDS folds, or a single one from SINGLE_FOLD_FROM pairs on (the
# served model is then fitted twice, not four times). Each fold holds out a share of the answers
# whole, as unknown: what a question the model was never taught looks like.
CV_FOLDS = 3
SINGLE_FOLD_FROM = 5000
SINGLE_FOLD_SHARE = 0.1
UNKNOWN_ANSWER_SHARE = 0.2
MIN_ANSWERS_FOR_UNKNOWN = 3
MIN_VALIDATION_SIZE = 10
# Small sets converge only with enough optimizer steps.
MIN_STEPS_PER_EPOCH = 20
MIN_BATCH_SIZE = 16
MIN_TRAINING_STEPS = 200
# From this many training questions on, n-grams seen in one question only are dropped
# (LARGE_SET_FEATURES); smaller sets keep every n-gram: each example counts.
MIN_PAIRS_FOR_PRUNING = 2000
LARGE_SET_FEATURES = FeatureSpec(min_df=2)
# Passes of the sentence model's solver below MIN_PAIRS_FOR_PRUNING questions (see TrainConfig).
SMALL_SET_SOLVER_PASSES = 100
# An answer's first words (at most this many; Chinese counted in segmented words) are one more
# training question of it (answer_wordings): a short answer reads like a question, a long one
# mostly starts with its topic.
ANSWER_WORDING_MAX_WORDS = 8
# The rest of a real FAQ's answer holds the words its users ask with ("... and includes coffee,
# Wi-Fi and a hot desk"): each clause of it, in runs of at most ANSWER_CLAUSE_MAX_WORDS words, is
# one more training question of it (answer_clauses), weighing less than an admin's question: an
# answer also says what nobody asks. A long answer gives its first ANSWER_CLAUSES_PER_ANSWER runs
# only, so that it does not outweigh the others; a single word says too little. Decision 0011.
ANSWER_CLAUSE_WEIGHT = 0.3
ANSWER_CLAUSE_MAX_WORDS = 8
ANSWER_CLAUSE_MIN_WORDS = 2
ANSWER_CLAUSES_PER_ANSWER = 8
# Where an answer's clauses end: sentence and clause marks (a Latin full stop only before a
# space or the end, not in "1.5"), Chinese ones, line breaks.
_CLAUSE_BREAKS = re.compile(r"[.!?;:](?=\s|$)|[。！？；，：\n]")
# Underscores and runs of them join the words of identifier-like answers ("pin_change").
_IDENTIFIER_JOINS = re.compile(r"_+")
# Score of the classes the linear model never saw in training (far below any other score).
UNSEEN_CLASS_SCORE = -10.0

Progress = Callable[[dict], None]


@dataclass(frozen=True)
class TrainConfig:
    """Tuning knobs. Their defaults, and what was tried against them: decision 0006."""

    hidden_units: int = 256
    epochs: int = 4
    batch_size: int = 256
    learning_rate: float = 4e-3
    dropout: float = 0.5
    label_smoothing: float = 0.0
    # The fallback rule is the most accurate one that still catches this share of the validation
    # OOS questions; above 0.6 so that unseen data, too, keeps a recall of 60 %.
    target_oos_recall: float = 0.7
    # None: FeatureSpec() for small sets, LARGE_SET_FEATURES from MIN_PAIRS_FOR_PRUNING on.
    features: FeatureSpec | None = None
    # Weight of the linear model in the answer probabilities (0: network only). Its temperature
    # is fitted on the held-out questions (validation data or the cross-validation folds), so a
    # set too small for folds uses the network only.
    linear_share: float = 0.5
    linear_c: float = 1.0
    # Passes of the SVM's solver (scikit-learn's default: 1000): its answers settle long before
    # its own tolerance is met.
    linear_max_iter: int = 15
    # The sentence model (model/sentences.py; decision 0013) joins the answer probabilities and
    # the gate for the questions whose best answer under the network and the linear model is
    # below sentence_below; its shares in each are chosen on the held-out questions among
    # these (no shares: no sentence model). Its solver's C and passes on a large set (on CLINC150
    # it settles in 43; 15 answer as well beside the network, at a third of the time); a smaller
    # set gets SMALL_SET_SOLVER_PASSES, which cost little there.
    sentence_shares: tuple[float, ...] = (0.5, 0.8)
    sentence_gate_shares: tuple[float, ...] = (0.3, 0.6, 0.9)
    sentence_below: float = 0.9
    sentence_c: float = 10.0
    sentence_max_iter: int = 15
    # The bundled out-of-scope questions (model/negatives.py) join data with fewer out-of-scope
    # questions of its own than this (0: never) ...
    min_own_out_of_scope: int = 200
    # ... or than this when the validation data has out-of-scope questions: the rule is then
    # chosen on the admin's own off-topic questions, and dozens of them in training teach the
    # class. On CLINC150 (100 of its own) the bundled ones only pushed the validation recall past
    # the target, for 0.3 points of in-scope accuracy (decision 0001).
    min_own_out_of_scope_validated: int = 50


@dataclass(frozen=True)
class TrainResult:
    version: str
    path: Path
    metrics: dict
    promoted: bool


@dataclass(frozen=True)
class LabelledSet:
    questions: list[str]
    labels: np.ndarray  # class index, or OUT_OF_SCOPE / UNKNOWN_ANSWER (validation only)


def train(
    pairs: list[QAPair],
    registry_root: Path,
    *,
    val_pairs: list[QAPair] | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    promote: bool = True,
    **tuning: object,
) -> TrainResult:
    """Train a model version from pairs (empty answer = out-of-scope) into the registry.

    Data with few out-of-scope questions of its own gets the bundled ones (model/negatives.py).
    The temperature and the fallback rule are chosen on val_pairs when given; otherwise by
    cross-validation (cross_validation_folds), and the served model is then fitted on all pairs.
    """
    config = TrainConfig(**tuning)  # type: ignore[arg-type]
    report = progress or (lambda event: None)
    started, started_cpu = time.perf_counter(), time.process_time()
    validated = any(p.out_of_scope for p in val_pairs or ())
    negatives = negatives_for(pairs, config, validated)
    admin_pairs, pairs = pairs, [*pairs, *negatives]
    answers = {answer_key(p.answer): p.answer for p in pairs if not p.out_of_scope}
    if not answers:
        raise ValueError("training data has no answered questions (every answer is empty)")
    classes: list[str | None] = [*sorted(answers)]
    if any(p.out_of_scope for p in pairs):
        classes.append(None)
    class_index = {answer_id: i for i, answer_id in enumerate(classes)}
    oos_class = class_index.get(None)

    held_out: list[HeldOut] = []
    held_pairs: list[list[QAPair]] = []  # the questions of each held_out
    vectors = None
    if config.sentence_shares:
        vectors = VectorCache(bundled_language_centers())
    # On a large set the sentence model takes the linear model's place: the network with the
    # sentence model answers as well as with both (decision 0013), and the linear model costs a
    # fifth of the training there.
    with_linear = config.linear_share > 0.0 and (
        vectors is None or len(pairs) < MIN_PAIRS_FOR_PRUNING
    )
    if val_pairs:
        validation_kind = GIVEN
        val_set = _labelled(val_pairs, class_index)
        final = _fit(
            pairs, val_set, class_index, config, seed, _tagged(report, "final"), with_linear,
            vectors,
        )  # fmt: skip
        held_out.append(_held_out(final, val_set, vectors))
        held_pairs.append(val_pairs)
    else:
        folds = cross_validation_folds(pairs, seed, _fold_count(len(pairs)))
        validation_kind = CROSS_VALIDATION if folds else NO_VALIDATION
        with_linear = with_linear and bool(folds)
        if not folds:
            # The sentence model's temperature and shares are fitted on held-out questions too.
            vectors = None
        for number, fold in enumerate(folds, start=1):
            fold_set = _labelled(fold.held_out, class_index)
            fold_set.labels[fold.untaught] = UNTAUGHT
            fold_report = _tagged(report, f"fold {number}/{len(folds)}")
            fitted = _fit(
                [pairs[i] for i in fold.train_rows], fold_set, class_index, config, seed,
                fold_report, with_linear, vectors,
            )  # fmt: skip
            held_out.append(_held_out(fitted, fold_set, vectors))
            held_pairs.append(fold.held_out)
        # The served model learns from every pair; the folds only chose its fallback rule.
        final = _fit(
            pairs, None, class_index, config, seed, _tagged(report, "final"), with_linear, vectors
        )
    featurizer, features = final.featurizer, final.features

    suggestion_rule = SuggestionRule()
    record = HeldOutRecord(trained=frozenset(match_key(p.question) for p in admin_pairs))
    mixture = Mixture(Temperatures(1.0, 1.0, 1.0))
    if held_out:
        rule, mixture, figures, suggestion_rule = _choose_fallback(held_out, oos_class, config)
        # What the promotion gate compares versions on (model/held_out.py).
        record = held_out_record(
            admin_pairs, held_out, held_pairs, classes, rule, mixture, frozenset(negatives)
        )
    else:
        rule = FallbackRule(DEFAULT_THRESHOLD, 0.0)
        figures = {"in_scope_accuracy": None, "oos_recall": None}
    temperatures = mixture.temperatures
    n_validation = sum(len(h.labels) for h in held_out)

    metrics = {
        "validation": validation_kind,
        **{k: None if v is None or np.isnan(v) else v for k, v in figures.items()},
        "threshold": rule.threshold,
        "margin": rule.margin,
        "temperature": round(temperatures.network, 4),
        "gate_temperature": round(temperatures.gate, 4),
        "linear_temperature": round(temperatures.linear, 4) if final.linear is not None else None,
        "sentence_temperature": (
            round(temperatures.sentence, 4) if final.sentence is not None else None
        ),
        "n": n_validation,
        "n_train": len(pairs),
        "n_bundled_negatives": len(negatives),
        "n_classes": len(classes),
        "n_features": featurizer.size,
        "seed": seed,
        "train_seconds": round(time.perf_counter() - started, 2),
        # CPU of every thread of the process: the measure that holds on a shared machine.
        "train_cpu_seconds": round(time.process_time() - started_cpu, 2),
    }
    wordings = typical_wordings(pairs, featurizer, features)
    registry = ModelRegistry(registry_root)
    with registry.new_version() as (version, staging):
        record.save(staging)
        _write_version(
            staging, version, seed, config, rule, mixture, metrics, final, classes, answers,
            suggestion_rule, wordings,
        )  # fmt: skip
    if promote:
        registry.promote(version)
    return TrainResult(
        version=version, path=registry.path(version), metrics=metrics, promoted=promote
    )


def _tagged(report: Progress, phase: str) -> Progress:
    return lambda event: report({**event, "phase": phase})


def feature_spec(train_pairs: Sequence[QAPair], config: TrainConfig) -> FeatureSpec:
    """The features of a training on train_pairs: config.features, else by the set's size;
    without glosses when no answered question holds Chinese."""
    spec = config.features
    if spec is None:
        # Counted without the answers' texts: they must not tip a set over the line.
        large = len(train_pairs) >= MIN_PAIRS_FOR_PRUNING
        spec = LARGE_SET_FEATURES if large else FeatureSpec()
    if spec.chinese_glosses and not any(
        has_chinese(p.question) for p in train_pairs if not p.out_of_scope
    ):
        # Glosses link the FAQ's own Chinese to English: an FAQ without Chinese questions (the
        # bundled out-of-scope ones may have some) keeps the features it had without them.
        spec = replace(spec, chinese_glosses=False)
    return spec


@dataclass(frozen=True)
class Fitted:
    """The members fitted on one training set, and the features of its pairs."""

    featurizer: Featurizer
    network: Network
    linear: Linear | None
    sentence: SentenceModel | None
    features: sparse.csr_matrix


def _fit(
    train_pairs: list[QAPair],
    val_set: LabelledSet | None,
    class_index: dict[str | None, int],
    config: TrainConfig,
    seed: int,
    report: Progress,
    with_linear: bool,
    vectors: VectorCache | None = None,
) -> Fitted:
    """Fit the featurizer, the network, (with_linear) the linear model and (with vectors) the
    sentence model on train_pairs and the answer_wordings and answer_clauses of their answers
    (val_set only reports progress)."""
    n_pairs = len(train_pairs)
    wordings, clauses = answer_wordings(train_pairs), answer_clauses(train_pairs)
    train_set = _labelled([*train_pairs, *wordings, *clauses], class_index)
    importance = np.ones(len(train_set.labels), dtype=np.float32)
    importance[len(importance) - len(clauses) :] = ANSWER_CLAUSE_WEIGHT
    spec = feature_spec(train_pairs, config)
    featurizer = Featurizer.fit(train_set.questions, spec)
    report(
        {
            "event": "start",
            "n_train": n_pairs,
            "n_val": 0 if val_set is None else len(val_set.questions),
            "n_classes": len(class_index),
            "n_features": featurizer.size,
        }
    )
    oos_class = class_index.get(None)
    features = featurizer.transform(train_set.questions)
    targets = _targets(train_set.labels, oos_class)
    weights = _example_weights(train_set.labels, importance)
    n_classes = len(class_index)
    # The linear models train in threads beside the network (their solvers release the GIL).
    with ThreadPoolExecutor(max_workers=2) as executor:
        linear = sentence = None
        if with_linear:
            linear = executor.submit(
                _fit_linear, features, targets, weights, n_classes, config.linear_c, seed,
                config.linear_max_iter,
            )  # fmt: skip
        if vectors is not None:
            sentence = executor.submit(
                _fit_sentence_model, vectors, train_set.questions, targets, weights, n_classes,
                config,
            )  # fmt: skip
        network = _fit_network(
            features,
            targets,
            weights,
            n_classes,
            config,
            seed,
            report,
            None if val_set is None else featurizer.transform(val_set.questions),
            None if val_set is None else _targets(val_set.labels, oos_class),
        )
        return Fitted(
            featurizer,
            network,
            None if linear is None else linear.result(),
            None if sentence is None else sentence.result(),
            features[:n_pairs],
        )


def answer_wordings(pairs: Sequence[QAPair]) -> list[QAPair]:
    """One more question for each answer of pairs: its text, underscores read as spaces, cut
    after its first ANSWER_WORDING_MAX_WORDS words. A real FAQ's answer says what it is about
    ("Orders ship within two working days.", "The standing desks are in the east corner, ...");
    an identifier-like one names it ("pin_change"). Wordings already asked as a question are
    left out. Decision 0008."""
    answers: dict[str, str] = {}
    for pair in pairs:
        if not pair.out_of_scope:
            answers.setdefault(answer_key(pair.answer), pair.answer)
    asked = {match_key(p.question) for p in pairs}
    wordings = []
    for answer in answers.values():
        wording = _IDENTIFIER_JOINS.sub(" ", answer).strip()
        words = words_of(wording)
        if len(words) > ANSWER_WORDING_MAX_WORDS:
            wording = _first_words(wording, words[:ANSWER_WORDING_MAX_WORDS])
        if words and match_key(wording) not in asked:
            asked.add(match_key(wording))
            wordings.append(QAPair(wording, answer))
    return wordings


def _first_words(text: str, words: Sequence[str]) -> str:
    """text (NFKC, casefolded, as words_of reads it) up to the end of words, its first words."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    end = 0
    for word in words:
        found = folded.find(word, end)
        if found < 0:
            break
        end = found + len(word)
    return folded[:end]


def answer_clauses(pairs: Sequence[QAPair]) -> list[QAPair]:
    """More questions for each answer of pairs: the clauses of its text (_CLAUSE_BREAKS), each
    cut into even runs of at most ANSWER_CLAUSE_MAX_WORDS words (_word_runs), NFKC and casefolded
    as the featurizer reads them; at most ANSWER_CLAUSES_PER_ANSWER of an answer, its first. A
    run already asked as a question or given by answer_wordings is left out, so an identifier-like
    or one-clause short answer gives none. Decision 0011."""
    answers: dict[str, str] = {}
    for pair in pairs:
        if not pair.out_of_scope:
            answers.setdefault(answer_key(pair.answer), pair.answer)
    taken = {match_key(p.question) for p in [*pairs, *answer_wordings(pairs)]}
    clauses = []
    for answer in answers.values():
        text = unicodedata.normalize("NFKC", _IDENTIFIER_JOINS.sub(" ", answer)).casefold()
        runs = (
            run
            for clause in _CLAUSE_BREAKS.split(text)
            for run in _word_runs(clause, ANSWER_CLAUSE_MAX_WORDS)
        )
        kept = 0
        for run in runs:
            if kept == ANSWER_CLAUSES_PER_ANSWER:
                break
            if match_key(run) not in taken:
                taken.add(match_key(run))
                clauses.append(QAPair(run, answer))
                kept += 1
    return clauses


def _word_runs(text: str, max_words: int) -> list[str]:
    """text (NFKC, casefolded) cut into even runs of at most max_words of its words, each run
    with ANSWER_CLAUSE_MIN_WORDS words or more (a shorter text gives none). Only the beginning
    of a long text is read, as the featurizer reads it."""
    text = text[:MAX_FEATURE_CHARS]
    words = words_of(text)
    if len(words) < ANSWER_CLAUSE_MIN_WORDS:
        return []
    n_runs = math.ceil(len(words) / max_words)
    size = math.ceil(len(words) / n_runs)
    ends, position = [], 0
    for word in words:
        found = text.find(word, position)
        position = position if found < 0 else found + len(word)
        ends.append(position)
    # A cut inside a token of Latin text ("8:00", "wi-fi") moves on to the space after it.
    cuts = [0, *(_token_end(text, end) for end in ends[size - 1 : -1 : size]), len(text)]
    runs = (_trimmed(text[start:stop]) for start, stop in itertools.pairwise(cuts))
    return [run for run in runs if run]


def _trimmed(text: str) -> str:
    """text without the spaces and punctuation at its ends."""
    start, stop = 0, len(text)
    while start < stop and _is_space_or_punctuation(text[start]):
        start += 1
    while stop > start and _is_space_or_punctuation(text[stop - 1]):
        stop -= 1
    return text[start:stop]


def _is_space_or_punctuation(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch)[0] == "P"


def _token_end(text: str, position: int) -> int:
    """position, or the end of the Latin token it falls inside."""
    while position < len(text) and not text[position].isspace() and not has_chinese(text[position]):
        position += 1
    return position


def _example_weights(labels: np.ndarray, importance: np.ndarray | None = None) -> np.ndarray:
    """Training weight per example: its importance (default 1), but out-of-scope questions
    outweighing the answered ones (a small FAQ and the bundled negatives) share the weight of
    the answered questions. Unweighted, 700 negatives beside a 20-question FAQ drown it:
    cross-validated, not one of its held-out questions was answered."""
    out_of_scope = labels == OUT_OF_SCOPE
    weights = np.ones(len(labels), dtype=np.float32) if importance is None else importance.copy()
    n_oos, n_answered = float(weights[out_of_scope].sum()), float(weights[~out_of_scope].sum())
    if n_oos > n_answered:
        weights[out_of_scope] *= n_answered / n_oos
    return weights


def _fit_linear(
    features: sparse.csr_matrix,
    targets: np.ndarray,
    weights: np.ndarray,
    n_classes: int,
    c: float,
    seed: int,
    max_iter: int = TrainConfig.linear_max_iter,
) -> Linear | None:
    """A one-vs-rest linear SVM; None when the training data has a single class."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    if len(np.unique(targets)) < 2:
        return None
    # Stopping at linear_max_iter is meant: not worth a warning. (A filter for the process:
    # catch_warnings is not thread-safe, and this runs beside the network's thread.)
    warnings.filterwarnings(
        "ignore", message="Liblinear failed to converge", category=ConvergenceWarning
    )
    svm = LinearSVC(C=c, max_iter=max_iter, random_state=seed)
    svm.fit(features, targets, sample_weight=weights)
    coef, intercept = svm.coef_, svm.intercept_
    if len(svm.classes_) == 2:
        # A binary SVM has one score, for its second class: the first one gets its opposite.
        coef, intercept = np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
    return Linear(*_all_classes(svm.classes_, coef, intercept, n_classes))


def _fit_sentence_model(
    vectors: VectorCache,
    questions: list[str],
    targets: np.ndarray,
    weights: np.ndarray,
    n_classes: int,
    config: TrainConfig,
) -> SentenceModel | None:
    """A multinomial logistic regression over the centered sentence vectors of questions; None
    for a single class. (Encoding them is most of its time: it runs beside the network.)"""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(targets)) < 2:
        return None
    # Stopping at sentence_max_iter is meant (see _fit_linear).
    warnings.filterwarnings(
        "ignore", message="lbfgs failed to converge", category=ConvergenceWarning
    )
    passes = config.sentence_max_iter
    if len(questions) < MIN_PAIRS_FOR_PRUNING:
        passes = max(passes, SMALL_SET_SOLVER_PASSES)
    model = LogisticRegression(C=config.sentence_c, max_iter=passes)
    model.fit(vectors.centered(questions), targets, sample_weight=weights)
    coef, intercept = model.coef_, model.intercept_
    if len(model.classes_) == 2:
        # Binary: one score for the second class; the softmax of (-s/2, s/2) gives the same odds.
        coef, intercept = np.vstack([-coef, coef]) / 2, np.concatenate([-intercept, intercept]) / 2
    return SentenceModel(*_all_classes(model.classes_, coef, intercept, n_classes), vectors.centers)


def _all_classes(
    fitted_classes: np.ndarray, coef: np.ndarray, intercept: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """(kernel, bias) over all n_classes from a model fitted on some of them: the classes it
    never saw score UNSEEN_CLASS_SCORE."""
    kernel = np.zeros((coef.shape[1], n_classes), dtype=np.float32)
    bias = np.full(n_classes, UNSEEN_CLASS_SCORE, dtype=np.float32)
    kernel[:, fitted_classes] = coef.T
    bias[fitted_classes] = intercept
    return kernel, bias


def _fold_count(n_pairs: int) -> int:
    return CV_FOLDS if n_pairs < SINGLE_FOLD_FROM else 1


@dataclass(frozen=True)
class Fold:
    train_rows: list[int]
    held_out: list[QAPair]
    untaught: np.ndarray  # bool per held-out pair: its answer is held out whole


def cross_validation_folds(
    pairs: Sequence[QAPair], seed: int, n_folds: int = CV_FOLDS
) -> list[Fold]:
    """The folds over pairs; empty when too little can be held out.

    A fold holds out: UNKNOWN_ANSWER_SHARE of the answers whole, their questions marked untaught
    (the rule learns what a question of the domain the model was never taught looks like); a share
    of the other answers' questions (1/n_folds, or SINGLE_FOLD_SHARE for one fold), never an
    answer's last one; and the same share of the out-of-scope questions.
    """
    rng = np.random.default_rng(seed)
    rows_of: dict[str, list[int]] = defaultdict(list)
    for row, pair in enumerate(pairs):
        rows_of["" if pair.out_of_scope else answer_key(pair.answer)].append(row)
    keys = [key for key in sorted(rows_of) if key]
    keys = [keys[i] for i in rng.permutation(len(keys))]
    n_unknown = 0
    if len(keys) >= MIN_ANSWERS_FOR_UNKNOWN:
        n_unknown = max(1, round(len(keys) * UNKNOWN_ANSWER_SHARE))
    fold_of: dict[int, int] = {}
    for key, rows in rows_of.items():
        if key and len(rows) < 2:
            continue
        if n_folds == 1:
            rows = sorted(rows, key=lambda row: _stable_order(pairs[row], seed))
            count = int(len(rows) * SINGLE_FOLD_SHARE)
            fold_of.update(dict.fromkeys(rows[:count], 0))
        else:
            rows = rng.permutation(rows).tolist()
            offset = int(rng.integers(n_folds))
            fold_of.update({row: (j + offset) % n_folds for j, row in enumerate(rows)})
    folds = []
    for fold in range(n_folds):
        unknown = {keys[(fold * n_unknown + t) % len(keys)] for t in range(n_unknown)}
        held, untaught, train_rows = [], [], []
        for row, pair in enumerate(pairs):
            is_untaught = not pair.out_of_scope and answer_key(pair.answer) in unknown
            if is_untaught or fold_of.get(row) == fold:
                held.append(pair)
                untaught.append(is_untaught)
            else:
                train_rows.append(row)
        folds.append(Fold(train_rows, held, np.asarray(untaught, dtype=bool)))
    if sum(len(fold.held_out) for fold in folds) < MIN_VALIDATION_SIZE:
        return []
    return folds


def _stable_order(pair: QAPair, seed: int) -> bytes:
    """A question's place among its answer's questions when they are dealt to the single fold of
    a large set: by a hash, not drawn at random, so that two versions of a growing training set
    mostly hold out the same questions (the promotion gate compares versions on those,
    bot/app/gate.py). With several folds every question is held out once whatever the order."""
    return hashlib.sha1(f"{seed}:{match_key(pair.question)}".encode()).digest()


def negatives_for(
    pairs: Sequence[QAPair], config: TrainConfig, validated: bool = False
) -> list[QAPair]:
    """The bundled out-of-scope questions to add: none when the data has enough of its own
    (validated: the validation data has out-of-scope questions), and none close to one of its
    answered questions."""
    enough = config.min_own_out_of_scope_validated if validated else config.min_own_out_of_scope
    if sum(p.out_of_scope for p in pairs) >= enough:
        return []
    known = {match_key(p.question) for p in pairs}
    negatives = [p for p in bundled_negatives() if match_key(p.question) not in known]
    return far_from(negatives, [p.question for p in pairs if not p.out_of_scope])


@dataclass(frozen=True)
class HeldOut:
    """What the fitted models said about held-out questions (one fold, or the validation set)."""

    logits: np.ndarray
    linear_scores: np.ndarray | None
    labels: np.ndarray
    sentence_scores: np.ndarray | None = None

    @classmethod
    def joined(cls, held_out: Sequence[HeldOut]) -> HeldOut:
        """The folds' held-out questions as one set (a member's scores where every fold has
        them)."""

        def scores_of(parts: list[np.ndarray | None]) -> np.ndarray | None:
            present = [part for part in parts if part is not None]
            return np.concatenate(present) if len(present) == len(parts) else None

        return cls(
            np.concatenate([h.logits for h in held_out]),
            scores_of([h.linear_scores for h in held_out]),
            np.concatenate([h.labels for h in held_out]),
            scores_of([h.sentence_scores for h in held_out]),
        )

    def probabilities(
        self, mixture: Mixture, oos_class: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(gate, answer probabilities) of these questions under mixture."""
        sentence = self.sentence_scores
        return mixture.probabilities(
            self.logits,
            self.linear_scores,
            None if sentence is None else sentence.__getitem__,
            oos_class,
        )


def _held_out(fitted: Fitted, held: LabelledSet, vectors: VectorCache | None) -> HeldOut:
    features = fitted.featurizer.transform(held.questions)
    linear_scores = None if fitted.linear is None else fitted.linear.scores(features)
    sentence_scores = None
    if fitted.sentence is not None and vectors is not None:
        sentence_scores = fitted.sentence.scores(vectors(held.questions), held.questions)
    return HeldOut(fitted.network.logits(features), linear_scores, held.labels, sentence_scores)


def _choose_fallback(
    held_out: Sequence[HeldOut], oos_class: int | None, config: TrainConfig
) -> tuple[FallbackRule, Mixture, dict, SuggestionRule]:
    """(rule, mixture, figures at the rule, "did you mean" rule) on the held-out questions of
    every fold together."""
    held = HeldOut.joined(held_out)
    logits, labels = held.logits, held.labels
    targets = _targets(labels, oos_class)
    temperature = fit_temperature(logits, targets)
    linear_temperature, linear_share = 1.0, 0.0
    if held.linear_scores is not None:
        linear_temperature = fit_temperature(held.linear_scores, targets)
        linear_share = config.linear_share
    sentence_temperature = 1.0
    if held.sentence_scores is not None:
        sentence_temperature = fit_temperature(held.sentence_scores, targets)
    temperatures = Temperatures(temperature, temperature, linear_temperature, sentence_temperature)

    def at_shares(sentence_share: float, gate_share: float) -> tuple[FallbackRule, Mixture, dict]:
        mixture = Mixture(
            temperatures, linear_share, sentence_share, gate_share, config.sentence_below
        )
        _, probs = held.probabilities(mixture, oos_class)
        gate_temperature = choose_gate_temperature(
            logits, probs, labels, oos_class, config.target_oos_recall, temperature
        )
        mixture = replace(mixture, temperatures=replace(temperatures, gate=gate_temperature))
        gate, probs = held.probabilities(mixture, oos_class)
        rule = choose_rule(probs, labels, oos_class, config.target_oos_recall, gate)
        return rule, mixture, scores(probs, labels, oos_class, rule, gate)

    shares = [(0.0, 0.0)]
    if held.sentence_scores is not None:
        shares = list(itertools.product(config.sentence_shares, config.sentence_gate_shares))
    rule, mixture, figures = max(
        (at_shares(*pair) for pair in shares),
        key=lambda chosen: (
            _nan_low(chosen[2]["in_scope_accuracy"]),
            _nan_low(chosen[2]["oos_recall"]),
        ),
    )
    gate, probs = held.probabilities(mixture, oos_class)
    suggestion_rule, suggested = _suggestions(probs, gate, labels, oos_class, rule)
    return rule, mixture, {**figures, **suggested}, suggestion_rule


def _nan_low(value: float) -> float:
    return -1.0 if value is None or np.isnan(value) else value


def _suggestions(
    probs: np.ndarray,
    gate: np.ndarray,
    labels: np.ndarray,
    oos_class: int | None,
    rule: FallbackRule,
) -> tuple[SuggestionRule, dict[str, float]]:
    """The "did you mean" rule chosen on held-out questions, and its figures there (in-scope
    questions answered with buttons; right answer given or among them)."""
    in_scope = ~should_fall_back(labels)
    if not in_scope.any():
        return SuggestionRule(), {}
    decision = decide(probs, oos_class, rule.threshold, rule.margin, gate)
    answered_right = ~decision.fallback & (decision.top_class == labels)
    top, top_probs = top_answers(without_oos(probs, oos_class))
    chosen = choose_suggestion_rule(top, top_probs, answered_right, labels, in_scope)
    on_in_scope = (top[in_scope], top_probs[in_scope], answered_right[in_scope], labels[in_scope])
    return chosen, suggestion_figures(*on_in_scope, chosen)


def typical_wordings(
    pairs: Sequence[QAPair],
    featurizer: Featurizer,
    features: sparse.csr_matrix | None = None,
) -> dict[str, str]:
    """Each answer's best-known wording: its training question nearest (cosine) to the mean of
    its questions' features; ties go to the shorter question. features: those of pairs, when
    already made."""
    answered_rows = [row for row, p in enumerate(pairs) if not p.out_of_scope]
    answered = [pairs[row] for row in answered_rows]
    if not answered:
        return {}
    if features is None:
        features = featurizer.transform([p.question for p in answered])
    else:
        features = features[answered_rows]
    by_answer: dict[str, list[int]] = {}
    for row, pair in enumerate(answered):
        by_answer.setdefault(answer_key(pair.answer), []).append(row)
    wordings = {}
    for key, rows in by_answer.items():
        block = features[rows]
        closeness = block @ np.asarray(block.mean(axis=0)).ravel()
        best = min(range(len(rows)), key=lambda i: (-closeness[i], len(answered[rows[i]].question)))
        wordings[key] = answered[rows[best]].question.strip()
    return wordings


def _labelled(pairs: Sequence[QAPair], class_index: dict[str | None, int]) -> LabelledSet:
    labels = [
        OUT_OF_SCOPE if p.out_of_scope else class_index.get(answer_key(p.answer), UNKNOWN_ANSWER)
        for p in pairs
    ]
    return LabelledSet([p.question for p in pairs], np.asarray(labels, dtype=np.int64))


def _targets(labels: np.ndarray, oos_class: int | None) -> np.ndarray:
    """Training class indices: out-of-scope examples go to the OOS class."""
    return np.where(labels == OUT_OF_SCOPE, -1 if oos_class is None else oos_class, labels)


# What TensorFlow writes through absl while it is imported, before it reads
# TF_CPP_MIN_LOG_LEVEL: absl's preamble and INFO lines ("oneDNN custom operations are on ...").
_TENSORFLOW_IMPORT_CHATTER = re.compile(rb"WARNING: All log messages before absl::|I\d{4} ")


@contextmanager
def _tensorflow_import_chatter_dropped() -> Iterator[None]:
    """Around TensorFlow's import: its C++ log lines would fall among `qabot train`'s data
    report; anything else written meanwhile (errors) is passed on."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    stderr = os.dup(2)
    with tempfile.TemporaryFile() as written:
        os.dup2(written.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(stderr, 2)
            os.close(stderr)
            written.seek(0)
            lines = written.read().splitlines(keepends=True)
            kept = [line for line in lines if not _TENSORFLOW_IMPORT_CHATTER.match(line)]
            os.write(2, b"".join(kept))


def _fit_network(
    features: sparse.csr_matrix,
    targets: np.ndarray,
    weights: np.ndarray,
    n_classes: int,
    config: TrainConfig,
    seed: int,
    report: Progress,
    val_features: sparse.csr_matrix | None,
    val_targets: np.ndarray | None,
) -> Network:
    """Fit the Keras network; progress reports each epoch (with validation accuracy if any)."""
    with _tensorflow_import_chatter_dropped():
        import keras
        import tensorflow as tf

    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()

    from model.keras_network import LazyAdam, build_network

    model = build_network(
        features.shape[1], n_classes, hidden_units=config.hidden_units, dropout=config.dropout
    )
    model.compile(
        optimizer=LazyAdam(config.learning_rate),
        loss=keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=config.label_smoothing
        ),
    )
    one_hot = np.eye(n_classes, dtype=np.float32)[targets]
    batch_size, repeats = _schedule(len(targets), config)
    if repeats > 1:
        features = sparse.vstack([features] * repeats, format="csr")
        one_hot = np.tile(one_hot, (repeats, 1))
        weights = np.tile(weights, repeats)

    def export() -> Network:
        layers = (model.get_layer("l0"), model.get_layer("l1"))
        return Network([(layer.kernel.numpy(), layer.bias.numpy()) for layer in layers])

    class ReportEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            event = {
                "event": "epoch",
                "epoch": epoch + 1,
                "epochs": config.epochs,
                "loss": round(float((logs or {}).get("loss", float("nan"))), 4),
            }
            if val_targets is not None:
                predicted = export().logits(val_features).argmax(axis=1)
                event["val_accuracy"] = round(float((predicted == val_targets).mean()), 4)
            report(event)

    model.fit(
        features,
        one_hot,
        sample_weight=weights,
        epochs=config.epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=0,
        callbacks=[ReportEpoch()],
    )
    return export()


def _schedule(n_examples: int, config: TrainConfig) -> tuple[int, int]:
    """(batch size, repeats of the data per epoch): small sets need more, smaller steps."""
    batch_size = int(np.clip(n_examples // MIN_STEPS_PER_EPOCH, MIN_BATCH_SIZE, config.batch_size))
    steps_per_pass = math.ceil(n_examples / batch_size)
    repeats = math.ceil(MIN_TRAINING_STEPS / (config.epochs * steps_per_pass))
    return batch_size, max(1, repeats)


def _write_version(
    directory: Path,
    version: str,
    seed: int,
    config: TrainConfig,
    rule: FallbackRule,
    mixture: Mixture,
    metrics: dict,
    fitted: Fitted,
    classes: list[str | None],
    answers: dict[str, str],
    suggestion_rule: SuggestionRule,
    wordings: dict[str, str],
) -> None:
    temperatures = mixture.temperatures
    with_sentences = fitted.sentence is not None and mixture.sentence_share > 0.0
    meta = {
        "format": FORMAT_VERSION,
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "threshold": rule.threshold,
        "margin": rule.margin,
        "temperature": temperatures.network,
        "gate_temperature": temperatures.gate,
        "linear_share": mixture.linear_share if fitted.linear is not None else 0.0,
        "linear_temperature": temperatures.linear,
        "sentence_share": mixture.sentence_share if with_sentences else 0.0,
        "sentence_gate_share": mixture.sentence_gate_share if with_sentences else 0.0,
        "sentence_below": mixture.sentence_below,
        "sentence_temperature": temperatures.sentence,
        "suggestions": suggestion_rule.to_json(),
        "seed": seed,
        "config": asdict(config),
        "metrics": metrics,
    }
    fitted.featurizer.save(directory / FEATURES_FILE)
    arrays = fitted.network.to_npz()
    if fitted.linear is not None:
        arrays[LINEAR_KERNEL], arrays[LINEAR_BIAS] = fitted.linear.kernel, fitted.linear.bias
    if with_sentences and fitted.sentence is not None:
        sentence = fitted.sentence
        arrays[SENTENCE_KERNEL], arrays[SENTENCE_BIAS] = sentence.kernel, sentence.bias
        if sentence.centers is not None:
            arrays[SENTENCE_CENTERS] = sentence.centers
    # numpy's stub types **kwds as if a key could be its allow_pickle flag.
    np.savez(directory / WEIGHTS_FILE, **arrays)  # type: ignore[arg-type]
    (directory / ANSWERS_FILE).write_text(
        json.dumps(
            {"classes": classes, "answers": answers, "wordings": wordings},
            ensure_ascii=False,
            indent=1,
        ),
        encoding="utf-8",
    )
    # meta.json last: a directory without it is never taken for a complete version.
    (directory / META_FILE).write_text(
        json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8"
    )


def main(argv: list[str] | None = None) -> int:
    args = train_parser().parse_args(argv)
    emit = _json_printer if args.progress_json else print_progress
    try:
        pairs = read_pair_files(args.data, args.oos)
        val_paths = [args.val] if args.val else []
        val_pairs = read_pair_files(val_paths, [args.oos_val] if args.oos_val else []) or None
    except ValueError as error:  # a file it cannot read: refused as data it cannot train on
        if args.progress_json:
            emit({"event": "error", "message": str(error)})
        print(f"error: {error}", file=sys.stderr)
        return DATA_REFUSED
    report = check_pairs(pairs)
    emit({"event": "data_report", "report": report.to_dict()})
    if report.refused:  # the report's errors said why
        print(f"error: {REFUSED}", file=sys.stderr)
        return DATA_REFUSED
    try:
        result = train(
            pairs,
            args.model_dir,
            val_pairs=val_pairs,
            seed=args.seed,
            progress=emit,
            promote=not args.no_promote,
        )
    except (OSError, ValueError) as error:
        if args.progress_json:
            emit({"event": "error", "message": str(error)})
        print(f"error: {error}", file=sys.stderr)
        return 1
    emit(
        {
            "event": "done",
            "version": result.version,
            "path": str(result.path),
            "promoted": result.promoted,
            "metrics": result.metrics,
        }
    )
    return 0


def _json_printer(event: dict) -> None:
    print(json.dumps(event, ensure_ascii=False), flush=True)


def print_progress(event: dict) -> None:
    kind = event["event"]
    if kind == "data_report":
        for line in DataReport.from_dict(event["report"]).lines():
            print(line, file=sys.stderr)
    elif kind == "start":
        phase = event["phase"]
        purpose = f"{phase} to choose the fallback rule, " if phase.startswith("fold") else ""
        print(
            f"training {purpose}on {event['n_train']} questions, {event['n_classes']} answers, "
            f"{event['n_features']} features; validating on {event['n_val']}",
            file=sys.stderr,
        )
    elif kind == "epoch":
        extra = f", val accuracy {event['val_accuracy']:.3f}" if "val_accuracy" in event else ""
        print(
            f"epoch {event['epoch']}/{event['epochs']}: loss {event['loss']:.4f}{extra}",
            file=sys.stderr,
        )
    elif kind == "done":
        metrics = event["metrics"]
        print(
            f"model {event['version']} written to {event['path']}"
            f"{' and promoted' if event['promoted'] else ''}"
        )
        for phrase in figure_phrases(metrics) or [WORDS["none"]]:
            print(f"  {phrase}")
        print(
            f"  fallback: confidence below {metrics['threshold']} or top two within "
            f"{metrics['margin']}; temperature {metrics['temperature']}"
        )
        print(f"  trained in {metrics['train_seconds']} s")


if __name__ == "__main__":
    sys.exit(main())
