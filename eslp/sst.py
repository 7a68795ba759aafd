"""Stanford Sentiment Treebank readers and the scored phrase table.

Three input formats give one table with the columns ``text``, ``score`` (in [0, 1]),
``split`` (train, dev or test) and ``sentence`` (whether the row is a whole sentence):

- ``trees``: the PTB-style trees ``train.txt``, ``dev.txt`` and ``test.txt``. Every node
  carries a 0-4 label, stored as the middle of its score bin, ``(label + 0.5) / 5``.
- ``release``: ``dictionary.txt`` joined with ``sentiment_labels.txt``, with sentence
  splits from ``datasetSentences.txt`` and ``datasetSplit.txt``.
- ``csv``: one file per split with a sentence and its score on each row.

Leakage protocol: training rows come only from training sentences (the nodes of the
training trees, or with ``release`` the dictionary phrases that are a token span of a
training sentence). A training sentence that equals a dev or test sentence is dropped
with all its phrases, and so is any other training row equal to a dev or test sentence.
A dev sentence that equals a test sentence is dropped. Dev and test rows are whole
sentences only. Texts are compared lowercased, as the models see them.
"""

import csv
import dataclasses
import logging
import re
from pathlib import Path

import pandas as pd

from eslp.errors import ESLPError, shorten
from eslp.io import open_text

logger = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
TREE_LABELS = 5
RELEASE_SPLITS = {"1": "train", "2": "test", "3": "dev"}
"""``datasetSplit.txt`` codes, from the release's README."""
_PTB_ESCAPES = {
    "-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}",
}
_PTB_PATTERN = re.compile("|".join(re.escape(token) for token in _PTB_ESCAPES))


def label_to_score(label: int) -> float:
    """Map a 0-4 tree label to the middle of its score bin: 0 -> 0.1, ..., 4 -> 0.9."""
    return (label + 0.5) / TREE_LABELS


def fix_mojibake(text: str) -> str:
    """Undo UTF-8 text that was decoded as Latin-1, as in the release's ``clichÃ©s``."""
    if text.isascii():
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def normalize_text(text: str) -> str:
    """Normalise one SST text: repair mojibake, unescape PTB brackets and slashes, fold spaces."""
    text = fix_mojibake(text)
    text = _PTB_PATTERN.sub(lambda match: _PTB_ESCAPES[match.group(0)], text)
    text = text.replace("\\/", "/").replace("\\*", "*")
    return " ".join(text.split())


def tokenize(text: str) -> list[str]:
    """Split an SST text into lowercased tokens; SST text is already tokenised on spaces."""
    return text.lower().split()


# --- trees -----------------------------------------------------------------------------


def parse_tree(line: str, where: str) -> list[tuple[int, list[str]]]:
    """Parse one PTB tree into ``(label, tokens)`` for every node, the root last.

    ``(3 (2 The) (4 (3 good) (2 film)))`` gives the leaves, the inner node and finally
    the root with all three tokens. A stack keeps the open nodes while it scans.
    """
    tokens = line.replace("(", " ( ").replace(")", " ) ").split()
    stack: list[tuple[int, list[str]]] = []
    nodes: list[tuple[int, list[str]]] = []
    position = 0
    while position < len(tokens):
        token = tokens[position]
        if token == "(":
            if nodes and not stack:
                raise ESLPError(f"{where}: a second tree starts after the first one ends; each line must hold one tree")
            label_text = tokens[position + 1] if position + 1 < len(tokens) else ""
            if not (label_text.isascii() and label_text.isdigit()):
                raise ESLPError(f"{where}: expected a 0-4 label after '(', found {shorten(tokens[position + 1:position + 2])}")
            label = int(tokens[position + 1])
            if label >= TREE_LABELS:
                raise ESLPError(f"{where}: label {label} is outside 0-4; pass the SST trees release")
            stack.append((label, []))
            position += 2
        elif token == ")":
            if not stack:
                raise ESLPError(f"{where}: unbalanced ')'; the tree line is damaged")
            node = stack.pop()
            if not node[1]:
                raise ESLPError(f"{where}: a node with label {node[0]} has no words; the tree line is damaged")
            nodes.append(node)
            if stack:
                stack[-1][1].extend(node[1])
            position += 1
        else:
            if not stack:
                raise ESLPError(f"{where}: word {shorten(token)} outside any bracket; the tree line is damaged")
            stack[-1][1].append(token)
            position += 1
    if stack or not nodes:
        raise ESLPError(f"{where}: unbalanced '('; the tree line is damaged")
    return nodes


def _read_tree_file(path: Path) -> list[list[tuple[int, list[str]]]]:
    if not path.is_file():
        raise ESLPError(
            f"{path}: SST tree file not found; place train.txt, dev.txt and test.txt there "
            "or set language_prepare.source"
        )
    trees = []
    with open_text(path) as file:
        for line_number, line in enumerate(file, start=1):
            if line.strip():
                trees.append(parse_tree(line, f"{path}:{line_number}"))
    return trees


def read_trees(source: Path) -> tuple[pd.DataFrame, int]:
    """Read the trees of all splits; return the rows and the number of training trees dropped.

    A training tree whose sentence is also a dev or test sentence is dropped whole,
    because each of its phrases is a phrase of that held-out sentence.
    """
    trees = {split: _read_tree_file(source / f"{split}.txt") for split in SPLITS}
    held_out = {
        normalize_text(" ".join(nodes[-1][1])).lower() for split in ("dev", "test") for nodes in trees[split]
    }
    rows = []
    dropped = 0
    for split in SPLITS:
        for nodes in trees[split]:
            root_label, root_tokens = nodes[-1]
            sentence = normalize_text(" ".join(root_tokens))
            if split != "train":
                rows.append((sentence, label_to_score(root_label), split, True))
                continue
            if sentence.lower() in held_out:
                dropped += 1
                continue
            for node_index, (label, tokens) in enumerate(nodes):
                rows.append((normalize_text(" ".join(tokens)), label_to_score(label), split, node_index == len(nodes) - 1))
    return pd.DataFrame(rows, columns=["text", "score", "split", "sentence"]), dropped


# --- release files ---------------------------------------------------------------------


@dataclasses.dataclass
class ReleaseReport:
    phrases_without_score: int = 0
    scores_without_phrase: int = 0
    sentences_matched: int = 0
    sentences_unmatched: int = 0
    train_sentences_dropped_with_their_phrases: int = 0


def _read_lines(path: Path) -> list[str]:
    """Read a text file's lines with any UTF-8 BOM and Windows line ends removed."""
    if not path.is_file():
        raise ESLPError(f"{path}: SST release file not found; place the release files there or set language_prepare.source")
    with open_text(path) as file:
        return [line.rstrip("\n") for line in file]


def read_dictionary(path: Path) -> dict[str, int]:
    """Read ``dictionary.txt`` (``phrase|id``). The id follows the last ``|``, since phrases may contain one."""
    phrases: dict[str, int] = {}
    for line_number, line in enumerate(_read_lines(path), start=1):
        if not line:
            continue
        text, separator, id_text = line.rpartition("|")
        if not separator or not id_text.strip().isdigit():
            raise ESLPError(f"{path}:{line_number}: expected 'phrase|id', found {shorten(line)}; check the file's format")
        phrases[normalize_text(text)] = int(id_text)
    return phrases


def read_sentiment_labels(path: Path) -> dict[int, float]:
    """Read ``sentiment_labels.txt`` (``id|score``, with the header ``phrase ids|sentiment values``)."""
    scores: dict[int, float] = {}
    for line_number, line in enumerate(_read_lines(path), start=1):
        if not line or (line_number == 1 and not line[:1].isdigit()):
            continue
        id_text, separator, score_text = line.partition("|")
        try:
            phrase_id, score = int(id_text), float(score_text)
        except ValueError:
            raise ESLPError(f"{path}:{line_number}: expected 'id|score', found {shorten(line)}") from None
        if not separator or not 0.0 <= score <= 1.0:
            raise ESLPError(f"{path}:{line_number}: score {score_text.strip()} is outside [0, 1]; fix or remove the line")
        scores[phrase_id] = score
    return scores


def _read_sentences(path: Path) -> dict[str, str]:
    sentences = {}
    for line_number, line in enumerate(_read_lines(path), start=1):
        if not line or (line_number == 1 and not line[:1].isdigit()):
            continue
        index, separator, text = line.partition("\t")
        if not separator:
            raise ESLPError(f"{path}:{line_number}: expected 'index<TAB>sentence', found {shorten(line)}")
        sentences[index.strip()] = normalize_text(text)
    return sentences


def _read_split(path: Path) -> dict[str, str]:
    splits = {}
    for line_number, line in enumerate(_read_lines(path), start=1):
        if not line or (line_number == 1 and not line[:1].isdigit()):
            continue
        index, _, code = line.partition(",")
        if code.strip() not in RELEASE_SPLITS:
            raise ESLPError(f"{path}:{line_number}: split code {shorten(code)} is not 1, 2 or 3")
        splits[index.strip()] = RELEASE_SPLITS[code.strip()]
    return splits


def _token_spans(text: str) -> set[str]:
    tokens = text.split()
    return {" ".join(tokens[start:end]) for start in range(len(tokens)) for end in range(start + 1, len(tokens) + 1)}


def read_release(source: Path, strict: bool) -> tuple[pd.DataFrame, ReleaseReport]:
    report = ReleaseReport()
    dictionary = read_dictionary(source / "dictionary.txt")
    scores = read_sentiment_labels(source / "sentiment_labels.txt")
    sentences = _read_sentences(source / "datasetSentences.txt")
    splits = _read_split(source / "datasetSplit.txt")

    missing = [text for text, phrase_id in dictionary.items() if phrase_id not in scores]
    report.phrases_without_score = len(missing)
    report.scores_without_phrase = len(set(scores) - set(dictionary.values()))
    if missing and strict:
        raise ESLPError(
            f"{source / 'dictionary.txt'}: phrase {shorten(missing[0])} (id {dictionary[missing[0]]}) has no line in "
            f"sentiment_labels.txt, and {len(missing)} phrases in all; use matching release files, "
            "or set language_prepare.strict: false to skip them"
        )

    rows = []
    for index, text in sentences.items():
        split = splits.get(index)
        phrase_id = dictionary.get(text)
        if split is None or phrase_id is None or phrase_id not in scores:
            report.sentences_unmatched += 1
            continue
        report.sentences_matched += 1
        rows.append((text, scores[phrase_id], split, True))

    # A training sentence that is also a dev or test sentence is dropped with its phrases,
    # since each of them is a phrase of that held-out sentence.
    held_out = {text.lower() for text, _, split, _ in rows if split != "train"}
    kept = []
    train_spans: set[str] = set()
    for row in rows:
        if row[2] == "train":
            if row[0].lower() in held_out:
                report.train_sentences_dropped_with_their_phrases += 1
                continue
            train_spans |= _token_spans(row[0])
        kept.append(row)
    rows = kept
    sentence_texts = {row[0] for row in rows}
    for text, phrase_id in dictionary.items():
        if text in train_spans and text not in sentence_texts and phrase_id in scores:
            rows.append((text, scores[phrase_id], "train", False))
    return pd.DataFrame(rows, columns=["text", "score", "split", "sentence"]), report


# --- CSV -------------------------------------------------------------------------------


def read_score_csv(path: Path, split: str) -> list[tuple[str, float, str, bool]]:
    """Read one CSV of sentences and scores.

    Without a header the columns are ``score,sentence``, as in the widely used SST
    extraction. A header naming ``sentence`` and ``score`` columns, in any order, is also read.
    """
    if not path.is_file():
        raise ESLPError(f"{path}: SST CSV file not found; check language_prepare.source and language_prepare.csv_{split}")
    rows = []
    with open_text(path, newline="") as file:
        reader = csv.reader(file)
        score_column, text_column, field_count = 0, 1, 2
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if not row:
                continue
            if reader.line_num == 1:
                names = [name.strip().lower() for name in row]
                if "sentence" in names and "score" in names:
                    score_column, text_column, field_count = names.index("score"), names.index("sentence"), len(names)
                    continue
            if len(row) != field_count:
                raise ESLPError(
                    f"{where}: row has {len(row)} fields, expected {field_count} (score,sentence); "
                    f"put a sentence that contains commas in double quotes: {shorten(row)}"
                )
            try:
                score = float(row[score_column])
            except ValueError:
                if reader.line_num == 1:
                    raise ESLPError(
                        f"{where}: header {shorten(row)} must name the columns score and sentence; "
                        "rename them, or remove the header to read the columns as score,sentence"
                    ) from None
                raise ESLPError(f"{where}: score {shorten(row[score_column])} is not a number") from None
            if not 0.0 <= score <= 1.0:
                raise ESLPError(f"{where}: score {row[score_column]} is outside [0, 1]; fix or remove the row")
            text = normalize_text(row[text_column])
            if not text:
                raise ESLPError(f"{where}: the sentence is empty; remove the row")
            rows.append((text, score, split, True))
    return rows


def read_csv_splits(source: Path, file_names: dict[str, str]) -> pd.DataFrame:
    rows = []
    for split in SPLITS:
        rows.extend(read_score_csv(source / file_names[split], split))
    return pd.DataFrame(rows, columns=["text", "score", "split", "sentence"])


# --- the phrase table ------------------------------------------------------------------


def remove_leaks(table: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop rows that leak held-out sentences into the splits used to choose or fit a model.

    Training rows equal to a dev or test sentence and dev sentences equal to a test
    sentence are dropped, comparing lowercased text, as the models see it. So are
    duplicate rows within a split.
    """
    lowered = table["text"].str.lower()
    held_out = set(lowered[table["split"] != "train"])
    test = set(lowered[table["split"] == "test"])
    train_leaked = (table["split"] == "train") & lowered.isin(held_out)
    dev_leaked = (table["split"] == "dev") & lowered.isin(test)
    table = table[~(train_leaked | dev_leaked)]
    # A text seen twice in one split keeps its sentence row, if any, then its first row.
    table = table.sort_values("sentence", ascending=False, kind="stable")
    table = table.drop_duplicates(subset=["split", "text"], keep="first")
    table = table.sort_index().reset_index(drop=True)
    return table, {
        "train_rows_dropped_as_held_out_sentences": int(train_leaked.sum()),
        "dev_sentences_dropped_as_test_sentences": int(dev_leaked.sum()),
    }


def read_phrase_table(params) -> tuple[pd.DataFrame, dict]:
    """Read SST in the format ``params.format``; return the phrase table and counts for the metrics."""
    source = Path(params.source)
    if not source.is_dir():
        raise ESLPError(f"{source}: SST folder not found; place the SST files there or set language_prepare.source")
    counts: dict = {}
    if params.format == "trees":
        table, counts["train_sentences_dropped_with_their_phrases"] = read_trees(source)
    elif params.format == "release":
        table, report = read_release(source, params.strict)
        counts.update(dataclasses.asdict(report))
    else:
        names = {"train": params.csv_train, "dev": params.csv_dev, "test": params.csv_test}
        table = read_csv_splits(source, names)
    # The release dictionary can hold phrases that normalise to nothing.
    table = table[table["text"].str.len() > 0]
    table, leak_counts = remove_leaks(table)
    counts.update(leak_counts)
    for split in SPLITS:
        if not ((table["split"] == split) & table["sentence"]).any():
            raise ESLPError(f"{source}: no {split} sentences found; check the files of language_prepare.format {params.format}")
    return table, counts
