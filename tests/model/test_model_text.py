"""Text normalisation, the featurizer and the Q&A file formats (no TensorFlow needed)."""

from __future__ import annotations

import io
import json
import re
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from model.datasets import QAPair, answer_key, read_pairs, write_pairs_csv
from model.text import (
    CharacterFilter,
    FeatureSpec,
    Featurizer,
    KeyTable,
    _words,
    char_ngram_key,
    match_key,
    normalize,
)


def test_normalize_folds_width_case_controls_and_spaces() -> None:
    assert normalize("  ＨＥＬＬＯ，\u3000Ｗｏｒｌｄ！ ") == "hello, world!"
    assert normalize("Straße\x00\x07 ok\u200b") == "strasse ok"
    assert normalize("a\t\n\r  b") == "a b"
    assert normalize("你好！") == "你好!"
    assert normalize("") == ""


@given(st.text(max_size=60))
def test_words_are_those_of_the_normalized_text(text: str) -> None:
    assert _words(text) == re.findall(r"\w+", normalize(text))


def test_match_key_ignores_punctuation_and_spaces() -> None:
    assert match_key("Hello, World!") == match_key("hello world") == "helloworld"
    assert match_key("你好！") == match_key("你好") == "你好"
    assert match_key("你的名字是什么？") == "你的名字是什么"
    assert match_key("👍") == "👍"  # symbols are content, not punctuation


@given(st.text(max_size=60))
def test_match_key_keeps_exactly_what_is_neither_space_nor_punctuation(text: str) -> None:
    expected = [
        ch
        for ch in normalize(text)
        if not ch.isspace() and not unicodedata.category(ch).startswith("P")
    ]
    assert list(match_key(text)) == expected


def test_character_filter_stays_bounded() -> None:
    drop_digits = CharacterFilter(str.isdigit)
    assert "a1b2".translate(drop_digits) == "ab"
    "".join(map(chr, range(0x4E00, 0x4E00 + CharacterFilter.MAX_ENTRIES + 10))).translate(
        drop_digits
    )
    assert len(drop_digits) <= CharacterFilter.MAX_ENTRIES
    assert "x9y".translate(drop_digits) == "xy"


def test_featurizer_uses_character_ngrams_for_chinese() -> None:
    featurizer = Featurizer.fit(["你喜欢什么样的食物", "你的名字是什么"])
    row = featurizer.transform(["你喜欢吃什么食物"])
    # Shares "你", "喜欢", "什么", "食物" with the first question although no word is shared.
    assert row.nnz >= 6
    first, second = featurizer.transform(["你喜欢什么样的食物", "你的名字是什么"])
    assert (row @ first.T).toarray()[0, 0] > (row @ second.T).toarray()[0, 0]


def test_character_ngram_keys_match_the_vocabulary() -> None:
    featurizer = Featurizer.fit(["ab", "ab c"], FeatureSpec(char_ngrams=(1, 3)))
    expected = {" a", "ab", "b ", " ab", "ab ", "a", "b", "c", " c", "c ", " c ", "b c"}
    assert sorted(featurizer.char_keys.tolist()) == sorted({char_ngram_key(g) for g in expected})
    assert featurizer.words == ["ab", "ab c", "c"]


def test_key_table_finds_every_key_and_only_those() -> None:
    rng = np.random.default_rng(0)
    keys = np.unique(rng.integers(1, 2**63, size=5000, dtype=np.uint64))
    table = KeyTable(keys)
    shuffled = rng.permutation(len(keys))
    np.testing.assert_array_equal(table.lookup(keys[shuffled]), shuffled)
    absent = np.setdiff1d(rng.integers(1, 2**63, size=5000, dtype=np.uint64), keys)
    assert (table.lookup(absent) == -1).all()
    assert KeyTable(np.array([], dtype=np.uint64)).lookup(keys[:3]).tolist() == [-1, -1, -1]


def test_featurizer_rows_are_normalised_per_block() -> None:
    featurizer = Featurizer.fit(["what is your name", "tell me a joke", "how old are you"])
    matrix = featurizer.transform(["what is your name", "tell me a joke please", "", "😀"])
    norms = np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel()
    # Word block and character block each have norm 1; unknown text gives an empty row.
    np.testing.assert_allclose(norms, [2.0, 2.0, 0.0, 0.0], atol=1e-5)


_WORDS_FOR_BATCHES = ["what", "is", "your", "name", "你好", "名字", "a", ""]
_BATCH_FEATURIZER = Featurizer.fit(
    ["what is your name", "你好 你的名字", "is a name your name", "a", "your 你好 name"],
    FeatureSpec(word_ngrams=(1, 3)),
)


@given(
    st.lists(
        st.lists(st.sampled_from(_WORDS_FOR_BATCHES), max_size=5).map(" ".join)
        | st.text(max_size=12),
        max_size=6,
    )
)
def test_a_batch_gets_the_features_each_text_gets_alone(texts: list[str]) -> None:
    # Texts of a batch share one word list and one string of characters: no n-gram may cross.
    # Both layouts count repeated n-grams alike.
    for by_columns in (False, True):
        batch = _BATCH_FEATURIZER.transform(texts, by_columns=by_columns)
        assert batch.format == ("csc" if by_columns else "csr")
        for row, text in zip(batch.toarray(), texts, strict=True):
            np.testing.assert_allclose(row, _BATCH_FEATURIZER.transform([text]).toarray()[0])


def test_featurizer_survives_a_json_round_trip(tmp_path: Path) -> None:
    spec = FeatureSpec(word_ngrams=(1, 2), char_ngrams=(2, 4), min_df=1)
    featurizer = Featurizer.fit(["Where is the bank?", "银行在哪里", "open the bank account"], spec)
    featurizer.save(tmp_path / "features.json")
    loaded = Featurizer.load(tmp_path / "features.json")
    texts = ["where's the BANK", "银行几点开门", "x"]
    assert loaded.spec == spec
    np.testing.assert_array_equal(
        loaded.transform(texts).toarray(), featurizer.transform(texts).toarray()
    )


def test_min_df_drops_rare_terms() -> None:
    questions = ["alpha beta", "alpha gamma", "alpha delta", "omega"]
    kept = Featurizer.fit(questions, FeatureSpec(min_df=2))
    assert "alpha" in kept.words and "beta" not in kept.words
    assert char_ngram_key("alp") in kept.char_keys
    assert char_ngram_key("ome") not in kept.char_keys
    assert "omega" in Featurizer.fit(questions).words


def test_read_pairs_csv_with_bom_and_out_of_scope_rows(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_bytes(
        '\ufeffquestion,answer\n你好,你好！\n"Hi, there","Hello, friend"\nbuy stocks?,\n'.encode()
    )
    pairs = read_pairs(path)
    assert pairs == [
        QAPair("你好", "你好！"),
        QAPair("Hi, there", "Hello, friend"),
        QAPair("buy stocks?", ""),
    ]
    assert [p.out_of_scope for p in pairs] == [False, False, True]


def test_read_pairs_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    lines = [{"question": "q1", "answer": "a1"}, {"question": "q2", "answer": None}]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n", encoding="utf-8")
    assert read_pairs(path) == [QAPair("q1", "a1"), QAPair("q2", "")]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.csv", "question,answer\nq1,a1\nq2,a2,extra\n", "bad.csv, line 3"),
        ("bad.csv", "q,a\nq1,a1\n", "bad.csv, line 1"),
        ("bad.csv", "", "bad.csv: empty file"),
        ("bad.csv", "question,answer\n ,a1\n", "bad.csv, line 2: empty question"),
        ("bad.jsonl", '{"question": "q", "answer": "a"}\n{oops\n', "bad.jsonl, line 2"),
        ("bad.jsonl", '["q", "a"]\n', "bad.jsonl: a JSON array; Q&A files are JSON Lines"),
        ("bad.txt", "question,answer\n", "unsupported file type"),
    ],
)
def test_read_pairs_reports_malformed_input(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        read_pairs(path)


def test_read_pairs_rejects_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("question,answer\ncafé,oui\n".encode("latin-1"))
    with pytest.raises(ValueError, match="latin.csv: not UTF-8"):
        read_pairs(path)


def test_write_pairs_csv_round_trips(tmp_path: Path) -> None:
    pairs = [QAPair('say "hi", please', "hi,\nthere"), QAPair("你好", "你好！"), QAPair("oos", "")]
    path = tmp_path / "out.csv"
    write_pairs_csv(pairs, path)
    assert read_pairs(path) == pairs
    buffer = io.StringIO()
    write_pairs_csv(pairs, buffer)
    assert buffer.getvalue() == path.read_text(encoding="utf-8")


def test_answer_key_is_stable_and_normalised() -> None:
    assert answer_key("你好！") == answer_key("  你好！\n")
    assert answer_key("caf\u00e9") == answer_key("cafe\u0301")  # NFC
    assert answer_key("a") != answer_key("b")
    assert len(answer_key("x")) == 12 and int(answer_key("x"), 16) >= 0
