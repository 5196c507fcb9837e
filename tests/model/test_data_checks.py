"""Data checks before training: each finding on a file built to show it, and the refusal of
data no useful model can come from (`qabot train` exits with code 2, nothing is written)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from model import data_checks
from model.data_checks import DataReport, check_pairs
from model.datasets import QAPair, answer_key, read_pairs

RESET = "Use the link on the sign-in page to reset your password."
HOURS = "We are open from 9:00 to 17:00, Monday to Friday."


def pairs_of(*rows: tuple[str, str]) -> list[QAPair]:
    return [QAPair(question, answer) for question, answer in rows]


GOOD = [
    ("how do I reset my password", RESET), ("I forgot my password", RESET),
    ("when are you open", HOURS), ("what are your opening hours", HOURS),
]  # fmt: skip


def codes(report: DataReport) -> list[str]:
    return [f.code for f in report.findings]


def test_a_sound_set_has_no_findings() -> None:
    report = check_pairs(pairs_of(*GOOD, ("asdf qwer", "")))
    assert report.findings == ()
    assert not report.refused
    assert (report.n_pairs, report.n_answers, report.n_out_of_scope) == (5, 2, 1)


@pytest.mark.parametrize("rows", [GOOD[:2], [("spam", ""), ("eggs", "")]])
def test_fewer_than_two_answers_is_refused(rows: list[tuple[str, str]]) -> None:
    report = check_pairs(pairs_of(*rows))
    assert codes(report) == [data_checks.TOO_FEW_ANSWERS]
    assert report.refused
    assert "at least two different answers" in report.refusal()


def test_answers_with_a_single_wording_are_named() -> None:
    report = check_pairs(pairs_of(*GOOD, ("where is your shop", "At 1 Main Street.")))
    (finding,) = report.findings
    assert finding.code == data_checks.SINGLE_WORDING and finding.severity == "warning"
    assert finding.rows == (5,) and finding.answers == (answer_key("At 1 Main Street."),)
    assert "other ways of asking" in finding.message
    assert not report.refused


def test_the_same_question_under_two_answers() -> None:
    report = check_pairs(pairs_of(*GOOD, ("When are you OPEN?", RESET)))
    (finding,) = report.findings
    assert finding.code == data_checks.CONFLICTING_QUESTION
    assert finding.rows == (3, 5)
    assert set(finding.answers) == {answer_key(RESET), answer_key(HOURS)}


def test_near_duplicate_answers() -> None:
    almost = RESET.replace("sign-in page", "sign in page")
    report = check_pairs(pairs_of(*GOOD, ("password help", almost), ("lost my password", almost)))
    (finding,) = report.findings
    assert finding.code == data_checks.NEAR_DUPLICATE_ANSWERS
    assert set(finding.answers) == {answer_key(RESET), answer_key(almost)}
    assert finding.rows == (1, 2, 5, 6)


def test_very_short_and_very_long_entries() -> None:
    long_question = "please tell me " * 30
    report = check_pairs(
        pairs_of(
            *GOOD, ("?", HOURS), (long_question, RESET), ("hours please", "x" * 5000), ("嗨", HOURS)
        )
    )
    found = {(f.code, f.rows) for f in report.findings}
    assert (data_checks.SHORT_ENTRY, (5,)) in found  # "嗨" ("hi"), row 8, is a word
    assert (data_checks.LONG_ENTRY, (6,)) in found
    assert (data_checks.LONG_ENTRY, (7,)) in found


def test_near_duplicate_answers_are_shown_where_they_differ() -> None:
    hours = "Our holiday hours: closed on 1 January. All other public holidays 10:00–18:00."
    hyphen = hours.replace("–", "-")
    report = check_pairs(pairs_of(*GOOD, ("holidays?", hours), ("christmas?", hyphen)))
    (finding,) = [f for f in report.findings if f.code == data_checks.NEAR_DUPLICATE_ANSWERS]
    assert "(“… holidays 10:00–18:00.” / “… holidays 10:00-18:00.”;" in finding.message


def test_an_answer_too_long_asked_several_ways_is_one_answer_too_long() -> None:
    terms = "Terms of membership. " + "Clause: fees are due in advance. " * 200
    asked = [(f"terms and conditions {n}", terms) for n in range(5)]
    report = check_pairs(pairs_of(*GOOD, *asked))
    (finding,) = [f for f in report.findings if f.code == data_checks.LONG_ENTRY]
    assert finding.rows == (5, 6, 7, 8, 9)
    assert finding.message.startswith("1 answer longer than 4096 characters (“Terms of ")


def test_findings_quote_the_questions_an_admin_can_search_for() -> None:
    """Row numbers led nowhere: a spreadsheet counts the header as row 1, and the training set
    /retrain checks has no rows an admin can see."""
    singles = [(f"question number {n}", f"Answer number {n}.") for n in range(5)]
    report = check_pairs(pairs_of(*GOOD, *singles))
    (finding,) = report.findings
    assert "(“question number 0”, “question number 1”, “question number 2” and 2 more)" in (
        finding.message
    )
    assert report.lines()[0] == "data: 9 questions, 7 answers, 0 out-of-scope questions"


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        ([], "the data has no questions."),
        ([("spam", ""), ("eggs", "")], "every question has an empty answer (out of scope)"),
        (GOOD[:1], "the data has a single answer"),
    ],
)
def test_the_refusal_says_what_the_data_lacks(rows: list[tuple[str, str]], reason: str) -> None:
    report = check_pairs(pairs_of(*rows))
    assert reason in report.refusal()


def test_the_report_survives_json() -> None:
    report = check_pairs(pairs_of(*GOOD, ("When are you OPEN?", RESET), ("?", HOURS)))
    assert all(f.values for f in report.findings)
    assert DataReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report


def test_qabot_train_refuses_a_one_answer_file(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QABOT_HOME", str(tmp_path / "home"))
    data = tmp_path / "one-answer.csv"
    data.write_text(
        f"question,answer\nhow do I reset my password,{RESET}\nforgot password,{RESET}\n",
        encoding="utf-8",
    )
    assert len(read_pairs(data)) == 2
    models = tmp_path / "models"
    assert main(["train", "--data", str(data), "--model-dir", str(models)]) == 2
    err = capsys.readouterr().err
    assert "training refused, nothing was trained or promoted" in err
    assert err.count("at least two different answers") == 1  # said once, in the report
    assert "data: 2 questions, 1 answer, 0 out-of-scope questions" in err
    assert not models.exists() or not any(models.iterdir())


async def test_retrain_refuses_a_one_answer_training_set(settings, store, models_dir: Path) -> None:
    from bot.app.app import App
    from bot.serving.retraining import TrainingRefusedError

    await store.add_pairs(pairs_of(*GOOD[:2], ("reset password please", RESET)), source="imported")
    app = App(settings, store)
    await app.start()
    try:
        live = app.models.registry.current_version()
        with pytest.raises(TrainingRefusedError) as refused:
            await app.models.retrain(force=True)
        assert refused.value.report.refused
        assert "at least two different answers" in str(refused.value)
        assert app.models.registry.current_version() == live
        assert [v.name for v in app.models.registry.versions()] == [live]
    finally:
        await app.stop()
