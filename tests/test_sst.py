"""Specifications of eslp.sst and eslp.language: the three SST formats, the leakage protocol and the sentence sets."""

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from conftest import TINY_TREES, write_trees
from eslp import language, sst
from eslp.errors import ESLPError
from eslp.params import LanguagePrepareParams, SentencesParams


def prepare_params(source: Path, format: str = "trees", **changes) -> LanguagePrepareParams:
    values = {
        "format": format,
        "source": str(source),
        "csv_train": "train.csv",
        "csv_dev": "dev.csv",
        "csv_test": "test.csv",
        "max_vocabulary": 20000,
        "min_count": 1,
        "strict": False,
    }
    values.update(changes)
    return LanguagePrepareParams(**values)


def rows_of(table: pd.DataFrame, split: str) -> list[tuple[str, float, bool]]:
    part = table[table["split"] == split]
    return list(zip(part["text"], part["score"], part["sentence"]))


def texts_of(table: pd.DataFrame, split: str, sentence: bool | None = None) -> list[str]:
    part = table[table["split"] == split]
    if sentence is not None:
        part = part[part["sentence"] == sentence]
    return part["text"].tolist()


# --- trees -----------------------------------------------------------------------------


def test_parse_tree_every_node_root_last():
    nodes = sst.parse_tree("(3 (2 The) (4 (3 good) (2 film)))", "train.txt:1")

    assert nodes == [
        (2, ["The"]),
        (3, ["good"]),
        (2, ["film"]),
        (4, ["good", "film"]),
        (3, ["The", "good", "film"]),
    ]


@pytest.mark.parametrize(
    "line, problem",
    [
        ("(3 (2 The) (2 film)", "unbalanced '('"),
        ("(3 (2 The) (2 film)))", "unbalanced ')'"),
        ("(x (2 The) (2 film))", "expected a 0-4 label after '('"),
        ("(3 (2 The) (7 film))", "label 7 is outside 0-4"),
        ("The (2 film)", "word 'The' outside any bracket"),
        ("(3 (2 The) (2 film)) again", "word 'again' outside any bracket"),
        ("", "unbalanced '('"),
    ],
)
def test_parse_tree_damaged_raises(line, problem):
    with pytest.raises(ESLPError, match=f"^train.txt:7: {re.escape(problem)}"):
        sst.parse_tree(line, "train.txt:7")


def test_parse_tree_two_trees_raises():
    with pytest.raises(ESLPError):
        sst.parse_tree("(3 (2 The) (3 film)) (2 again)", "train.txt:7")


def test_read_trees_damaged_names_file_line(tmp_path):
    folder = write_trees(tmp_path / "trees")
    train = folder / "train.txt"
    train.write_text(TINY_TREES["train"][0] + "\n(3 (2 The) (3 film)\n", encoding="utf-8")

    with pytest.raises(ESLPError, match=f"^{re.escape(str(train))}:2: unbalanced"):
        sst.read_trees(folder)


def test_read_trees_missing_file_raises(tmp_path):
    folder = write_trees(tmp_path / "trees")
    (folder / "dev.txt").unlink()

    with pytest.raises(ESLPError, match=f"^{re.escape(str(folder / 'dev.txt'))}: SST tree file not found"):
        sst.read_trees(folder)


def test_label_to_score_bin_middles():
    assert [sst.label_to_score(label) for label in range(5)] == pytest.approx([0.1, 0.3, 0.5, 0.7, 0.9])


def test_read_trees_scores_from_labels(tmp_path):
    folder = write_trees(tmp_path / "trees", {"train": ["(0 (1 (2 a) (3 b)) (4 c))"], "dev": ["(2 d)"], "test": ["(2 e)"]})

    table, _ = sst.read_trees(folder)

    assert rows_of(table, "train") == [
        ("a", pytest.approx(0.5), False),
        ("b", pytest.approx(0.7), False),
        ("a b", pytest.approx(0.3), False),
        ("c", pytest.approx(0.9), False),
        ("a b c", pytest.approx(0.1), True),
    ]


def test_read_trees_train_keeps_phrases(tmp_path):
    table, _ = sst.read_trees(write_trees(tmp_path / "trees"))

    # The five training trees have 7, 9, 7, 9 and 9 nodes.
    assert len(texts_of(table, "train")) == 41
    assert texts_of(table, "train", sentence=True) == [
        "A wonderful film .",
        "The acting is good .",
        "A terrible mess .",
        "The plot is dull .",
        "It is a film .",
    ]


def test_read_trees_dev_test_only_sentences(tmp_path):
    table, _ = sst.read_trees(write_trees(tmp_path / "trees"))

    assert rows_of(table, "dev") == [
        ("A great film", pytest.approx(0.9), True),
        ("A awful mess", pytest.approx(0.1), True),
    ]
    assert texts_of(table, "test") == ["The good acting", "The dull plot", "A film"]
    assert table.loc[table["split"] == "test", "sentence"].all()


def test_read_trees_unescapes_brackets(tmp_path):
    trees = {"train": [r"(3 (2 -LRB-) (3 (3 fun) (2 -RRB-)) (2 and\/or))"], "dev": ["(2 d)"], "test": ["(2 e)"]}

    table, _ = sst.read_trees(write_trees(tmp_path / "trees", trees))

    assert texts_of(table, "train", sentence=True) == ["( fun ) and/or"]


def test_read_trees_blank_lines_skipped(tmp_path):
    folder = write_trees(tmp_path / "trees")
    (folder / "dev.txt").write_text("\n" + TINY_TREES["dev"][0] + "\n\n", encoding="utf-8")

    table, _ = sst.read_trees(folder)

    assert texts_of(table, "dev") == ["A great film"]


# --- release files ---------------------------------------------------------------------


def write_lines(path: Path, lines: list[str], newline: str = "\n", bom: bool = False) -> Path:
    data = "".join(line + newline for line in lines).encode("utf-8")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


RELEASE_SENTENCES = [
    # (datasetSentences.txt text, datasetSplit.txt code)
    ("A clichÃ©s film .", 1),  # UTF-8 decoded as Latin-1, the release's known mojibake
    ("-LRB- Good -RRB- fun .", 1),
    ("Naïve but fun .", 1),  # correct UTF-8, which must stay as it is
    ("A dull plot .", 2),
    ("A fine film .", 3),
    ("An unknown sentence .", 1),  # no dictionary phrase
]

RELEASE_DICTIONARY = {
    # Phrases are spelled as the release's dictionary.txt spells them: correct accents and real brackets.
    "A clichés film .": 0,
    "( Good ) fun .": 1,
    "Naïve but fun .": 2,
    "A dull plot .": 3,
    "A fine film .": 4,
    "clichés": 5,
    "A clichés": 6,
    "Good": 7,
    "fun .": 8,
    "dull": 9,
    "a|b c": 10,
}

RELEASE_SCORES = {0: 0.2, 1: 0.8, 2: 0.65, 3: 0.1, 4: 0.9, 5: 0.3, 6: 0.35, 7: 0.7, 8: 0.6, 9: 0.15, 10: 0.5, 11: 0.5}


def write_release(
    folder: Path,
    sentences=RELEASE_SENTENCES,
    dictionary=RELEASE_DICTIONARY,
    scores=RELEASE_SCORES,
    newline: str = "\n",
    bom: bool = False,
) -> Path:
    """Write the four release files that the ``release`` format reads, in the release's exact layout."""
    folder.mkdir(parents=True, exist_ok=True)
    write_lines(folder / "dictionary.txt", [f"{phrase}|{phrase_id}" for phrase, phrase_id in dictionary.items()], newline, bom)
    write_lines(
        folder / "sentiment_labels.txt",
        ["phrase ids|sentiment values"] + [f"{phrase_id}|{score}" for phrase_id, score in scores.items()],
        newline,
        bom,
    )
    write_lines(
        folder / "datasetSentences.txt",
        ["sentence_index\tsentence"] + [f"{index}\t{text}" for index, (text, _) in enumerate(sentences, start=1)],
        newline,
        bom,
    )
    write_lines(
        folder / "datasetSplit.txt",
        ["sentence_index,splitset_label"] + [f"{index},{code}" for index, (_, code) in enumerate(sentences, start=1)],
        newline,
        bom,
    )
    return folder


def test_dictionary_phrase_with_pipe(tmp_path):
    path = write_lines(tmp_path / "dictionary.txt", ["a|b c|17", "good|18"])

    assert sst.read_dictionary(path) == {"a|b c": 17, "good": 18}


def test_dictionary_line_without_id_raises(tmp_path):
    path = write_lines(tmp_path / "dictionary.txt", ["good|18", "bad phrase"])

    with pytest.raises(ESLPError, match=f"^{re.escape(str(path))}:2: expected 'phrase\\|id'"):
        sst.read_dictionary(path)


def test_sentiment_labels_skip_header(tmp_path):
    path = write_lines(tmp_path / "sentiment_labels.txt", ["phrase ids|sentiment values", "0|0.5", "17|0.97222"])

    assert sst.read_sentiment_labels(path) == {0: 0.5, 17: 0.97222}


@pytest.mark.parametrize("score", ["1.2", "-0.1", "nan"])
def test_sentiment_label_out_of_range_raises(tmp_path, score):
    path = write_lines(tmp_path / "sentiment_labels.txt", ["phrase ids|sentiment values", "0|0.5", f"1|{score}"])

    with pytest.raises(ESLPError, match=f"^{re.escape(str(path))}:3: score {score} is outside \\[0, 1\\]"):
        sst.read_sentiment_labels(path)


def test_sentiment_label_not_number_raises(tmp_path):
    path = write_lines(tmp_path / "sentiment_labels.txt", ["phrase ids|sentiment values", "0|high"])

    with pytest.raises(ESLPError, match=f"^{re.escape(str(path))}:2: expected 'id\\|score'"):
        sst.read_sentiment_labels(path)


def test_dictionary_crlf_and_bom(tmp_path):
    path = write_lines(tmp_path / "dictionary.txt", ["good film|1", "a|b c|17"], newline="\r\n", bom=True)

    assert sst.read_dictionary(path) == {"good film": 1, "a|b c": 17}


def test_sentiment_labels_crlf_and_bom(tmp_path):
    path = write_lines(tmp_path / "sentiment_labels.txt", ["phrase ids|sentiment values", "0|0.5"], newline="\r\n", bom=True)

    assert sst.read_sentiment_labels(path) == {0: 0.5}


def test_release_crlf_and_bom_same_table(tmp_path):
    plain, _ = sst.read_release(write_release(tmp_path / "plain"), strict=False)
    windows, _ = sst.read_release(write_release(tmp_path / "windows", newline="\r\n", bom=True), strict=False)

    pd.testing.assert_frame_equal(windows, plain)


def test_release_matches_mojibake_and_brackets(tmp_path):
    table, report = sst.read_release(write_release(tmp_path / "release"), strict=False)

    assert report.sentences_matched == 5
    assert report.sentences_unmatched == 1
    assert texts_of(table, "train", sentence=True) == ["A clichés film .", "( Good ) fun .", "Naïve but fun ."]


def test_release_sentence_splits(tmp_path):
    table, _ = sst.read_release(write_release(tmp_path / "release"), strict=False)

    assert rows_of(table, "test") == [("A dull plot .", 0.1, True)]
    assert rows_of(table, "dev") == [("A fine film .", 0.9, True)]


def test_release_train_phrases_are_spans(tmp_path):
    table, _ = sst.read_release(write_release(tmp_path / "release"), strict=False)

    # "dull" is a span of the test sentence only, and "a|b c" of no sentence.
    assert rows_of(table[~table["sentence"]], "train") == [
        ("clichés", 0.3, False),
        ("A clichés", 0.35, False),
        ("Good", 0.7, False),
        ("fun .", 0.6, False),
    ]


def test_release_counts_phrase_without_score(tmp_path):
    dictionary = {**RELEASE_DICTIONARY, "orphan phrase": 12}

    _, report = sst.read_release(write_release(tmp_path / "release", dictionary=dictionary), strict=False)

    assert report.phrases_without_score == 1


def test_release_counts_score_without_phrase(tmp_path):
    _, report = sst.read_release(write_release(tmp_path / "release"), strict=False)

    # Id 11 has a score and no phrase.
    assert report.scores_without_phrase == 1


def test_release_strict_phrase_without_score_raises(tmp_path):
    dictionary = {**RELEASE_DICTIONARY, "orphan phrase": 12}
    folder = write_release(tmp_path / "release", dictionary=dictionary)

    with pytest.raises(ESLPError, match=r"dictionary.txt: phrase 'orphan phrase' \(id 12\) has no line in sentiment_labels.txt"):
        sst.read_release(folder, strict=True)


def test_release_strict_allows_score_without_phrase(tmp_path):
    _, report = sst.read_release(write_release(tmp_path / "release"), strict=True)

    assert report.scores_without_phrase == 1


def test_release_bad_split_code_raises(tmp_path):
    folder = write_release(tmp_path / "release")
    write_lines(folder / "datasetSplit.txt", ["sentence_index,splitset_label", "1,1", "2,4"])

    with pytest.raises(ESLPError, match=f"^{re.escape(str(folder / 'datasetSplit.txt'))}:3: split code '4' is not 1, 2 or 3"):
        sst.read_release(folder, strict=False)


def test_release_missing_file_raises(tmp_path):
    folder = write_release(tmp_path / "release")
    (folder / "dictionary.txt").unlink()

    with pytest.raises(ESLPError, match="dictionary.txt: SST release file not found"):
        sst.read_release(folder, strict=False)


def test_normalize_text_repairs_mojibake():
    assert sst.normalize_text("clichÃ©s") == "clichés"


def test_normalize_text_keeps_correct_accents():
    assert sst.normalize_text("Naïve clichés") == "Naïve clichés"


def test_normalize_text_unescapes_ptb():
    assert sst.normalize_text("-LRB- a -RRB-  -LSB- b -RSB- c\\/d e\\*") == "( a ) [ b ] c/d e*"


# --- CSV -------------------------------------------------------------------------------


def test_score_csv_without_header_crlf(tmp_path):
    path = tmp_path / "train.csv"
    # Rows as in the third-party sst_train_sentences.csv: no header, CRLF, quotes only around text with a comma.
    path.write_bytes(b"0.69444,Reno himself can take credit .\r\n0.26389,\"Despite its dry wit , it drags .\"\r\n")

    rows = sst.read_score_csv(path, "train")

    assert rows == [
        ("Reno himself can take credit .", 0.69444, "train", True),
        ("Despite its dry wit , it drags .", 0.26389, "train", True),
    ]


@pytest.mark.parametrize(
    "header, row",
    [
        ("sentence,score", '"A fine , quiet film .",0.75'),
        ("score,sentence", '0.75,"A fine , quiet film ."'),
        ("id,Sentence,Score", '7,"A fine , quiet film .",0.75'),
    ],
)
def test_score_csv_header_any_order(tmp_path, header, row):
    path = write_lines(tmp_path / "train.csv", [header, row], newline="\r\n")

    assert sst.read_score_csv(path, "dev") == [("A fine , quiet film .", 0.75, "dev", True)]


def test_score_csv_score_above_one_raises(tmp_path):
    path = write_lines(tmp_path / "train.csv", ["0.5,A fine film .", "1.5,A great film ."])

    with pytest.raises(ESLPError, match=f"^{re.escape(str(path))}:2: score 1.5 is outside \\[0, 1\\]"):
        sst.read_score_csv(path, "train")


def test_score_csv_score_not_number_raises(tmp_path):
    path = write_lines(tmp_path / "train.csv", ["0.5,A fine film .", "good,A great film ."])

    with pytest.raises(ESLPError, match=f"^{re.escape(str(path))}:2: score 'good' is not a number"):
        sst.read_score_csv(path, "train")


def test_score_csv_missing_sentence_raises(tmp_path):
    path = write_lines(tmp_path / "train.csv", ["0.5"])

    with pytest.raises(ESLPError, match=f"^{re.escape(str(path))}:1: row has 1 fields, expected 2 \\(score,sentence\\)"):
        sst.read_score_csv(path, "train")


def test_score_csv_missing_file_raises(tmp_path):
    with pytest.raises(ESLPError, match="language_prepare.csv_test"):
        sst.read_score_csv(tmp_path / "test.csv", "test")


# --- leakage protocol ------------------------------------------------------------------

LEAKY_TREES = {
    "train": [
        "(3 (3 (2 A) (3 film)) (3 (2 worth) (3 seeing)))",
        "(1 (2 Just) (1 okay))",
    ],
    "dev": ["(1 (2 Just) (1 okay))"],
    "test": ["(3 (2 A) (3 film))"],
}
"""Trees where a training phrase equals a test sentence and a training sentence equals a dev sentence."""


def test_train_phrase_equal_test_sentence_dropped(tmp_path):
    table, counts = sst.read_phrase_table(prepare_params(write_trees(tmp_path / "trees", LEAKY_TREES)))

    assert "A film" not in texts_of(table, "train")
    assert "A film" in texts_of(table, "test")
    assert counts["train_rows_dropped_as_held_out_sentences"] == 1


def test_train_tree_equal_dev_sentence_dropped_whole(tmp_path):
    table, counts = sst.read_phrase_table(prepare_params(write_trees(tmp_path / "trees", LEAKY_TREES)))

    assert "okay" not in texts_of(table, "train")
    assert "Just" not in texts_of(table, "train")
    assert counts["train_sentences_dropped_with_their_phrases"] == 1


def test_dev_sentence_equal_test_sentence_dropped(tmp_path):
    trees = {
        "train": ["(3 (2 A) (3 fine))"],
        "dev": ["(1 (2 Not) (1 good))", "(4 (2 So) (4 good))"],
        "test": ["(1 (2 not) (1 good))"],
    }
    table, counts = sst.read_phrase_table(prepare_params(write_trees(tmp_path / "trees", trees)))

    assert texts_of(table, "dev") == ["So good"]
    assert counts["dev_sentences_dropped_as_test_sentences"] == 1


def test_train_sentence_equal_dev_sentence_dropped(tmp_path):
    table, _ = sst.read_phrase_table(prepare_params(write_trees(tmp_path / "trees", LEAKY_TREES)))

    assert texts_of(table, "train", sentence=True) == ["A film worth seeing"]
    assert texts_of(table, "dev") == ["Just okay"]


def test_train_rows_exclude_held_out_sentences(tmp_path):
    table, _ = sst.read_phrase_table(prepare_params(write_trees(tmp_path / "trees", LEAKY_TREES)))

    held_out = set(texts_of(table, "dev")) | set(texts_of(table, "test"))
    assert held_out.isdisjoint(texts_of(table, "train"))


def test_release_span_equal_test_sentence_excluded(tmp_path):
    sentences = [("A dull plot , fun .", 1), ("fun .", 2), ("A fine film .", 3)]
    dictionary = {"A dull plot , fun .": 0, "fun .": 1, "A fine film .": 2, "dull": 3}
    folder = write_release(tmp_path / "release", sentences, dictionary, {0: 0.4, 1: 0.7, 2: 0.9, 3: 0.2})

    table, _ = sst.read_phrase_table(prepare_params(folder, format="release"))

    assert texts_of(table, "train") == ["A dull plot , fun .", "dull"]


def test_duplicate_text_keeps_sentence_row(tmp_path):
    trees = {"train": ["(3 (3 Fine) (2 .))", "(4 (4 (3 Fine) (2 .)) (2 indeed))"], "dev": ["(2 d)"], "test": ["(2 e)"]}

    table, _ = sst.read_phrase_table(prepare_params(write_trees(tmp_path / "trees", trees)))

    assert texts_of(table, "train").count("Fine .") == 1
    assert rows_of(table[table["text"] == "Fine ."], "train") == [("Fine .", pytest.approx(0.7), True)]


def test_phrase_table_empty_split_raises(tmp_path):
    folder = write_trees(tmp_path / "trees")
    (folder / "dev.txt").write_text("", encoding="utf-8")

    with pytest.raises(ESLPError, match="no dev sentences found"):
        sst.read_phrase_table(prepare_params(folder))


# --- language.prepare ------------------------------------------------------------------


def test_prepare_writes_three_files(tmp_path):
    language.prepare(prepare_params(write_trees(tmp_path / "trees")), tmp_path / "language")

    assert sorted(path.name for path in (tmp_path / "language").iterdir()) == [
        "parameters.json",
        "phrases.parquet",
        "vocabulary.txt",
    ]


def test_prepare_vocabulary_file(tmp_path):
    language.prepare(prepare_params(write_trees(tmp_path / "trees")), tmp_path / "language")

    # Tokens of the training sentences, lowercased, by falling count and then alphabetically.
    assert (tmp_path / "language" / "vocabulary.txt").read_text(encoding="utf-8").splitlines() == [
        "<pad>", "<unk>", ".", "a", "is", "film", "the",
        "acting", "dull", "good", "it", "mess", "plot", "terrible", "wonderful",
    ]


def test_prepare_parameters_json(tmp_path):
    language.prepare(prepare_params(write_trees(tmp_path / "trees")), tmp_path / "language")

    parameters = json.loads((tmp_path / "language" / "parameters.json").read_text(encoding="utf-8"))
    assert parameters == {"format": "trees", "scores": "labels", "max_length": 5, "vocabulary_size": 15}


def test_prepare_phrase_table_columns(tmp_path):
    language.prepare(prepare_params(write_trees(tmp_path / "trees")), tmp_path / "language")

    table = pd.read_parquet(tmp_path / "language" / "phrases.parquet")
    assert list(table.columns) == ["text", "score", "split", "sentence"]
    assert len(table) == 26 + 5 + 2 + 3


def test_prepare_returns_metrics(tmp_path):
    metrics = language.prepare(prepare_params(write_trees(tmp_path / "trees")), tmp_path / "language")

    # The 36 training phrase rows hold 27 different texts. One of them, "a film", is the test
    # sentence "A film" once lowercased, so it is dropped.
    assert metrics == {
        "sentences": {"train": 5, "dev": 2, "test": 3},
        "train_phrases": 26,
        "vocabulary_size": 15,
        "max_length": 5,
        "train_rows_dropped_as_held_out_sentences": 1,
        "train_sentences_dropped_with_their_phrases": 0,
        "dev_sentences_dropped_as_test_sentences": 0,
    }


def test_prepare_no_train_sentences_raises(tmp_path):
    # The only training tree equals the dev sentence, so only its two phrases stay in train.
    trees = {"train": ["(3 (2 Just) (3 fine))"], "dev": ["(3 (2 Just) (3 fine))"], "test": ["(2 (2 A) (2 film))"]}

    with pytest.raises(ESLPError, match="no train sentences"):
        language.prepare(prepare_params(write_trees(tmp_path / "trees", trees)), tmp_path / "language")


def test_prepare_csv_scores_continuous(tmp_path):
    folder = write_csv_splits(tmp_path / "csv")

    language.prepare(prepare_params(folder, format="csv"), tmp_path / "language")

    parameters = json.loads((tmp_path / "language" / "parameters.json").read_text(encoding="utf-8"))
    assert parameters["scores"] == "continuous"


def test_prepare_release_metrics_include_report(tmp_path):
    metrics = language.prepare(prepare_params(write_release(tmp_path / "release"), format="release"), tmp_path / "language")

    assert metrics["sentences_matched"] == 5
    assert metrics["sentences_unmatched"] == 1
    assert metrics["phrases_without_score"] == 0
    assert metrics["scores_without_phrase"] == 1
    assert metrics["train_phrases"] == 4


# --- language.write_sentences ----------------------------------------------------------

CSV_SPLITS = {
    "train": ["0.6,At the upper line .", "0.61,Just above .", "0.4,At the lower line .", "0.39,Just below ."],
    "dev": ["0.9,Great .", "0.1,Awful ."],
    "test": ["0.7,Good .", "0.3,Bad .", "0.5,Fine ."],
}


def write_csv_splits(folder: Path, splits: dict[str, list[str]] = CSV_SPLITS) -> Path:
    folder.mkdir(parents=True)
    for split, lines in splits.items():
        write_lines(folder / f"{split}.csv", lines, newline="\r\n")
    return folder


def prepared_language(tmp_path: Path, format: str = "trees", trees: dict[str, list[str]] = TINY_TREES) -> Path:
    """Run ``language.prepare`` on a tiny data set and return its output folder."""
    if format == "trees":
        source = write_trees(tmp_path / "trees", trees)
    else:
        source = write_csv_splits(tmp_path / "csv")
    language.prepare(prepare_params(source, format=format), tmp_path / "language")
    return tmp_path / "language"


def test_sentences_default_thresholds_counts(tmp_path):
    language_dir = prepared_language(tmp_path)

    metrics = language.write_sentences(SentencesParams(0.6, 0.4), language_dir, tmp_path / "sentences")

    assert metrics == {
        "happy": {"train": 2, "dev": 1, "test": 1},
        "angry": {"train": 2, "dev": 1, "test": 1},
    }


def test_sentences_writes_class_csvs(tmp_path):
    language_dir = prepared_language(tmp_path)

    language.write_sentences(SentencesParams(0.6, 0.4), language_dir, tmp_path / "sentences")

    frames = language.read_sentences(tmp_path / "sentences")
    assert frames["happy"]["text"].tolist() == ["A wonderful film .", "The acting is good .", "A great film", "The good acting"]
    assert frames["angry"]["text"].tolist() == ["A terrible mess .", "The plot is dull .", "A awful mess", "The dull plot"]
    assert list(frames["happy"].columns) == ["text", "score", "split"]


def test_sentences_thresholds_are_strict(tmp_path):
    language_dir = prepared_language(tmp_path, format="csv")

    language.write_sentences(SentencesParams(0.6, 0.4), language_dir, tmp_path / "sentences")

    frames = language.read_sentences(tmp_path / "sentences")
    assert frames["happy"].loc[frames["happy"]["split"] == "train", "text"].tolist() == ["Just above ."]
    assert frames["angry"].loc[frames["angry"]["split"] == "train", "text"].tolist() == ["Just below ."]


@pytest.mark.parametrize("happy, angry, key", [(0.7, 0.4, "happy_threshold"), (0.6, 0.5, "angry_threshold")])
def test_sentences_trees_reject_inside_bin(tmp_path, happy, angry, key):
    language_dir = prepared_language(tmp_path)

    with pytest.raises(ESLPError, match=f"sentences.{key}: .* is not a label boundary") as error:
        language.write_sentences(SentencesParams(happy, angry), language_dir, tmp_path / "sentences")

    assert "set language_prepare.format to release or csv and language_prepare.source" in str(error.value)


def test_sentences_csv_allow_inside_bin(tmp_path):
    language_dir = prepared_language(tmp_path, format="csv")

    metrics = language.write_sentences(SentencesParams(0.55, 0.45), language_dir, tmp_path / "sentences")

    assert metrics == {
        "happy": {"train": 2, "dev": 1, "test": 1},
        "angry": {"train": 2, "dev": 1, "test": 1},
    }


def test_sentences_trees_outer_boundaries(tmp_path):
    trees = {
        "train": ["(4 (4 Superb) (2 .))", "(3 (3 Good) (2 .))", "(1 (1 Weak) (2 .))", "(0 (0 Awful) (2 .))"],
        "dev": ["(4 (4 Great) (2 !))", "(0 (0 Dire) (2 !))"],
        "test": ["(4 (4 Brilliant) (2 .))", "(3 (3 Fine) (2 .))", "(1 (1 Dull) (2 .))", "(0 (0 Terrible) (2 .))"],
    }
    language_dir = prepared_language(tmp_path, trees=trees)

    language.write_sentences(SentencesParams(0.8, 0.2), language_dir, tmp_path / "sentences")

    frames = language.read_sentences(tmp_path / "sentences")
    assert frames["happy"]["text"].tolist() == ["Superb .", "Great !", "Brilliant ."]
    assert frames["angry"]["text"].tolist() == ["Awful .", "Dire !", "Terrible ."]


def test_sentences_empty_class_raises(tmp_path):
    language_dir = prepared_language(tmp_path, format="csv")

    with pytest.raises(ESLPError) as error:
        language.write_sentences(SentencesParams(0.95, 0.4), language_dir, tmp_path / "sentences")

    assert str(error.value) == (
        "params.yaml: sentences.happy_threshold: 0.95 leaves no happy train sentences "
        "(of 4 train sentences, 0 score above it, 4 at or below); move the threshold towards 0.5"
    )


def test_sentences_empty_angry_raises(tmp_path):
    language_dir = prepared_language(tmp_path, format="csv")

    with pytest.raises(ESLPError) as error:
        language.write_sentences(SentencesParams(0.6, 0.35), language_dir, tmp_path / "sentences")

    assert str(error.value) == (
        "params.yaml: sentences.angry_threshold: 0.35 leaves no angry train sentences "
        "(of 4 train sentences, 0 score below it, 4 at or above); move the threshold towards 0.5"
    )


def test_sentences_without_prepare_raises(tmp_path):
    with pytest.raises(ESLPError, match="run `dvc repro language_prepare` first"):
        language.write_sentences(SentencesParams(0.6, 0.4), tmp_path / "language", tmp_path / "sentences")


# --- real SST files --------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_trees_language(tmp_path_factory, shared_data) -> tuple[dict, Path]:
    """Run ``language.prepare`` once on the real trees release; return its metrics and output folder."""
    out_dir = tmp_path_factory.mktemp("real") / "language"
    metrics = language.prepare(prepare_params(shared_data / "sst" / "trees"), out_dir)
    return metrics, out_dir


def test_real_trees_prepare_metrics(real_trees_language):
    metrics, _ = real_trees_language

    # The files hold 8544 / 1101 / 2210 trees. Four training trees whose sentence equals a dev or
    # test sentence once lowercased are dropped whole, and seven more training phrase rows equal
    # one. Nine more training sentences and one dev sentence repeat an earlier sentence of their split.
    assert metrics == {
        "sentences": {"train": 8531, "dev": 1100, "test": 2210},
        "train_phrases": 150735,
        "vocabulary_size": 16581,
        "max_length": 52,
        "train_rows_dropped_as_held_out_sentences": 7,
        "train_sentences_dropped_with_their_phrases": 4,
        "dev_sentences_dropped_as_test_sentences": 0,
    }


def test_real_trees_no_held_out_in_train(real_trees_language):
    _, out_dir = real_trees_language

    table = pd.read_parquet(out_dir / "phrases.parquet")
    held_out = set(texts_of(table, "dev")) | set(texts_of(table, "test"))
    assert held_out.isdisjoint(texts_of(table, "train"))


def test_real_trees_default_sentences(real_trees_language, tmp_path):
    _, out_dir = real_trees_language

    metrics = language.write_sentences(SentencesParams(0.6, 0.4), out_dir, tmp_path / "sentences")

    assert metrics == {
        "happy": {"train": 3605, "dev": 444, "test": 909},
        "angry": {"train": 3304, "dev": 428, "test": 912},
    }


def test_real_csv_matches_trees(shared_data, tmp_path):
    params = prepare_params(
        shared_data / "sst" / "derived",
        format="csv",
        csv_train="sst_train_sentences.csv",
        csv_dev="sst_dev.csv",
        csv_test="sst_test.csv",
    )

    metrics = language.prepare(params, tmp_path / "language")
    sentences = language.write_sentences(SentencesParams(0.6, 0.4), tmp_path / "language", tmp_path / "sentences")

    # The extraction already dropped repeated sentences (8534 / 1100 / 2210 rows), and three training
    # sentences equal a dev or test sentence. No real score is exactly 0.4 or 0.6, so the sentence sets
    # have the sizes of the trees' labels 3-4 and 0-1.
    assert metrics["sentences"] == {"train": 8531, "dev": 1100, "test": 2210}
    assert metrics["train_rows_dropped_as_held_out_sentences"] == 3
    assert metrics["train_phrases"] == 0
    assert sentences == {
        "happy": {"train": 3605, "dev": 444, "test": 909},
        "angry": {"train": 3304, "dev": 428, "test": 912},
    }


def test_real_release_files_match(shared_data, tmp_path):
    source = tmp_path / "release"
    source.mkdir()
    for name in ("sentiment_labels.txt", "datasetSentences.txt", "datasetSplit.txt"):
        shutil.copy(shared_data / "sst" / name, source / name)
    # No real dictionary.txt is available. SOStr.txt spells each sentence as the dictionary does,
    # with correct accents and real brackets, and separates tokens with "|". So its lines replace
    # the dictionary's sentence phrases here, with made-up ids.
    sentences = (shared_data / "sst" / "SOStr.txt").read_text(encoding="utf-8").splitlines()
    write_lines(source / "dictionary.txt", [f"{' '.join(line.split('|'))}|{index}" for index, line in enumerate(sentences)])

    table, report = sst.read_release(source, strict=True)

    assert report.sentences_matched == 11855
    assert report.sentences_unmatched == 0
    assert report.phrases_without_score == 0
    # Four training sentences equal a dev or test sentence and are dropped with their phrases.
    assert table["split"].value_counts().to_dict() == {"train": 8540, "test": 2210, "dev": 1101}
