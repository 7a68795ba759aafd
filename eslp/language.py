"""Step 1, language only: the scored phrase table and the happy and angry sentence sets."""

import json
import logging
import math
from pathlib import Path

import pandas as pd

from eslp import ANGRY, HAPPY, sst
from eslp.errors import ESLPError
from eslp.io import atomic_path, write_json
from eslp.text import build_vocabulary, read_vocabulary, write_vocabulary

logger = logging.getLogger(__name__)

PHRASES_FILE = "phrases.parquet"
VOCABULARY_FILE = "vocabulary.txt"
PARAMETERS_FILE = "parameters.json"
LABEL_BOUNDARIES = (0.2, 0.4, 0.6, 0.8)
"""Score bin edges of the 0-4 tree labels; only thresholds on them select whole labels."""


# --- language_prepare ------------------------------------------------------------------


def prepare(params, out_dir: Path) -> dict:
    """Read SST and write the phrase table, vocabulary and model parameters; return the metrics."""
    table, counts = sst.read_phrase_table(params)
    train_sentences = table.loc[(table["split"] == "train") & table["sentence"], "text"]
    vocabulary = build_vocabulary(train_sentences, params.max_vocabulary, params.min_count)
    max_length = int(max(len(sst.tokenize(text)) for text in train_sentences))
    parameters = {
        "format": params.format,
        "scores": "labels" if params.format == "trees" else "continuous",
        "max_length": max_length,
        "vocabulary_size": len(vocabulary),
    }

    with atomic_path(out_dir) as temporary:
        temporary.mkdir()
        table.to_parquet(temporary / PHRASES_FILE, index=False)
        write_vocabulary(temporary / VOCABULARY_FILE, vocabulary)
        write_json(temporary / PARAMETERS_FILE, parameters)

    sentences = table[table["sentence"]]
    metrics = {
        "sentences": {split: int((sentences["split"] == split).sum()) for split in sst.SPLITS},
        "train_phrases": int(((table["split"] == "train") & ~table["sentence"]).sum()),
        "vocabulary_size": len(vocabulary),
        "max_length": max_length,
        **counts,
    }
    logger.info(
        "language_prepare: read %s format from %s, wrote %d rows (%s train / %s dev / %s test sentences, "
        "%d train phrases) and a vocabulary of %d tokens to %s",
        params.format, params.source, len(table), *metrics["sentences"].values(), metrics["train_phrases"],
        len(vocabulary), out_dir,
    )
    return metrics


def read_prepared(language_dir: Path) -> tuple[pd.DataFrame, dict[str, int], dict]:
    """Load the outputs of ``language_prepare``: phrase table, vocabulary and model parameters."""
    parameters_path = language_dir / PARAMETERS_FILE
    if not parameters_path.is_file():
        raise ESLPError(f"{parameters_path}: not found; run `dvc repro language_prepare` first")
    parameters = json.loads(parameters_path.read_text(encoding="utf-8"))
    table = pd.read_parquet(language_dir / PHRASES_FILE)
    vocabulary = read_vocabulary(language_dir / VOCABULARY_FILE)
    return table, vocabulary, parameters


# --- sentences -------------------------------------------------------------------------


def check_label_thresholds(params) -> None:
    """Reject thresholds that would split a 0-4 tree label, which has no score finer than its bin."""
    for key in ("happy_threshold", "angry_threshold"):
        value = getattr(params, key)
        if not any(math.isclose(value, boundary, abs_tol=1e-9) for boundary in LABEL_BOUNDARIES):
            raise ESLPError(
                f"params.yaml: sentences.{key}: {value} is not a label boundary "
                f"({', '.join(map(str, LABEL_BOUNDARIES))}). The trees format has only 0-4 labels, so a "
                "threshold inside a label's score bin cannot be applied; use a boundary, or switch to SST files "
                "with real scores: set language_prepare.format to release or csv and language_prepare.source "
                "to the folder with those files"
            )


def select_sentences(table: pd.DataFrame, happy_threshold: float, angry_threshold: float) -> dict[str, pd.DataFrame]:
    """Split whole sentences into happy (score above the threshold) and angry (below), all splits."""
    sentences = table[table["sentence"]]
    return {
        HAPPY: sentences[sentences["score"] > happy_threshold][["text", "score", "split"]],
        ANGRY: sentences[sentences["score"] < angry_threshold][["text", "score", "split"]],
    }


def write_sentences(params, language_dir: Path, out_dir: Path) -> dict:
    table, _, parameters = read_prepared(language_dir)
    if parameters["scores"] == "labels":
        check_label_thresholds(params)
    selected = select_sentences(table, params.happy_threshold, params.angry_threshold)

    sentences = table[table["sentence"]]
    # combine needs both classes in every split: train and test pairs, and dev for validation.
    for split in sst.SPLITS:
        scores = sentences.loc[sentences["split"] == split, "score"]
        for label, threshold in ((HAPPY, params.happy_threshold), (ANGRY, params.angry_threshold)):
            if (selected[label]["split"] == split).any():
                continue
            if label == HAPPY:
                sides = f"{int((scores > threshold).sum())} score above it, {int((scores <= threshold).sum())} at or below"
            else:
                sides = f"{int((scores < threshold).sum())} score below it, {int((scores >= threshold).sum())} at or above"
            raise ESLPError(
                f"params.yaml: sentences.{label}_threshold: {threshold} leaves no {label} {split} sentences "
                f"(of {len(scores)} {split} sentences, {sides}); move the threshold towards 0.5"
            )

    with atomic_path(out_dir) as temporary:
        temporary.mkdir()
        for label, frame in selected.items():
            frame.to_csv(temporary / f"{label}.csv", index=False)

    metrics = {
        label: {split: int((frame["split"] == split).sum()) for split in sst.SPLITS} for label, frame in selected.items()
    }
    logger.info(
        "sentences: read %d sentences from %s, wrote %d happy (score > %s) and %d angry (score < %s) to %s",
        len(sentences), language_dir, len(selected[HAPPY]), params.happy_threshold, len(selected[ANGRY]),
        params.angry_threshold, out_dir,
    )
    return metrics


def read_sentences(sentences_dir: Path) -> dict[str, pd.DataFrame]:
    frames = {}
    for label in (ANGRY, HAPPY):
        path = sentences_dir / f"{label}.csv"
        if not path.is_file():
            raise ESLPError(f"{path}: not found; run `dvc repro sentences` first")
        frames[label] = pd.read_csv(path, keep_default_na=False, dtype={"text": str, "split": str})
    return frames
