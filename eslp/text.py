"""Vocabulary and integer encoding of tokenised text for the Keras embedding layers."""

import logging
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from eslp.errors import ESLPError
from eslp.io import write_text
from eslp.sst import tokenize

logger = logging.getLogger(__name__)

PADDING = "<pad>"
UNKNOWN = "<unk>"
"""Reserved tokens: id 0 pads (and is masked by the embedding), id 1 stands for any unknown word."""


def build_vocabulary(texts: Iterable[str], max_size: int, min_count: int) -> list[str]:
    """Return the tokens by falling frequency, ties alphabetical, after the two reserved tokens."""
    counts = Counter(token for text in texts for token in tokenize(text))
    ranked = sorted((token for token, count in counts.items() if count >= min_count), key=lambda token: (-counts[token], token))
    return [PADDING, UNKNOWN] + ranked[: max_size - 2]


def write_vocabulary(path: Path, vocabulary: list[str]) -> None:
    write_text(path, "".join(token + "\n" for token in vocabulary))


def read_vocabulary(path: Path) -> dict[str, int]:
    if not path.is_file():
        raise ESLPError(f"{path}: vocabulary not found; run `dvc repro language_prepare` first")
    tokens = path.read_text(encoding="utf-8").splitlines()
    if tokens[:2] != [PADDING, UNKNOWN]:
        raise ESLPError(f"{path}:1: expected {PADDING} and {UNKNOWN} on the first two lines; rerun language_prepare")
    return {token: index for index, token in enumerate(tokens)}


def encode_ragged(texts: Iterable[str], vocabulary: dict[str, int], max_length: int) -> list[list[int]]:
    """Encode each text as token ids, unknown words as 1, cut to ``max_length`` tokens."""
    unknown = vocabulary[UNKNOWN]
    return [[vocabulary.get(token, unknown) for token in tokenize(text)][:max_length] for text in texts]


def encode(texts: Iterable[str], vocabulary: dict[str, int], max_length: int) -> np.ndarray:
    """Encode texts as an ``(n, max_length)`` int32 array, padded with 0 after the last token."""
    rows = encode_ragged(texts, vocabulary, max_length)
    ids = np.zeros((len(rows), max_length), dtype=np.int32)
    for index, row in enumerate(rows):
        ids[index, : len(row)] = row
    return ids
