"""Reading and checking ``params.yaml``, one section per pipeline stage.

Every section is a frozen dataclass. Loading a section rejects unknown keys (a typo
such as ``epocs``), missing keys, values of the wrong type and values out of range, so a
stage fails before it does any work.
"""

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

from eslp.errors import ESLPError, shorten

PARAMS_FILE = "params.yaml"


def _spec(low=None, high=None, *, low_open=False, high_open=False, choices=None, reason=""):
    """Declare a parameter's allowed values; ``reason`` explains a limit in the error message."""
    metadata = {"low": low, "high": high, "low_open": low_open, "high_open": high_open, "choices": choices, "reason": reason}
    return field(metadata=metadata)


@dataclass(frozen=True)
class ImagesPrepareParams:
    format: str = _spec(choices=("folders", "csv"))
    source: str = _spec()
    split: str = _spec(choices=("usage", "random"))
    test_fraction: float = _spec(0.0, 1.0, low_open=True, high_open=True)
    balance: bool = _spec()
    max_per_class: int = _spec(0)
    strict: bool = _spec()


@dataclass(frozen=True)
class LanguagePrepareParams:
    format: str = _spec(choices=("trees", "release", "csv"))
    source: str = _spec()
    csv_train: str = _spec()
    csv_dev: str = _spec()
    csv_test: str = _spec()
    max_vocabulary: int = _spec(2)
    min_count: int = _spec(1)
    strict: bool = _spec()


@dataclass(frozen=True)
class SentencesParams:
    happy_threshold: float = _spec(0.0, 1.0, low_open=True, high_open=True)
    angry_threshold: float = _spec(0.0, 1.0, low_open=True, high_open=True)


@dataclass(frozen=True)
class LanguageTrainParams:
    train_on: str = _spec(choices=("phrases", "polar_phrases", "sentences"))
    embedding_dim: int = _spec(1)
    lstm_units: int = _spec(1)
    bidirectional: bool = _spec()
    dropout: float = _spec(0.0, 1.0, high_open=True)
    epochs: int = _spec(1)
    batch_size: int = _spec(1)
    learning_rate: float = _spec(0.0, low_open=True)
    patience: int = _spec(1)


@dataclass(frozen=True)
class ImageParams:
    weights: str = _spec()
    input_size: int = _spec(
        48,
        reason="faces are 48x48, so a smaller input only throws pixels away, and VGG16's minimum input is 32 pixels",
    )
    validation_fraction: float = _spec(0.0, 1.0, low_open=True, high_open=True)


@dataclass(frozen=True)
class ImageBottleneckParams:
    batch_size: int = _spec(1)
    head_units: int = _spec(1)
    dropout: float = _spec(0.0, 1.0, high_open=True)
    epochs: int = _spec(1)
    learning_rate: float = _spec(0.0, low_open=True)
    patience: int = _spec(1)


@dataclass(frozen=True)
class ImageFinetuneParams:
    trainable_blocks: int = _spec(1, 5)
    optimizer: str = _spec(choices=("sgd", "adam"))
    epochs: int = _spec(1)
    batch_size: int = _spec(1)
    learning_rate: float = _spec(0.0, low_open=True)
    patience: int = _spec(1)
    momentum: float = _spec(0.0, 1.0, high_open=True)
    cache: str = _spec()
    flip: bool = _spec()
    shift: float = _spec(0.0, 0.5)
    rotation: float = _spec(0.0, 0.5)


@dataclass(frozen=True)
class CombineParams:
    validation_fraction: float = _spec(0.0, 1.0, low_open=True, high_open=True)
    embedding_dim: int = _spec(1)
    lstm_units: int = _spec(1)
    image_units: int = _spec(1)
    dropout: float = _spec(0.0, 1.0, high_open=True)
    epochs: int = _spec(1)
    batch_size: int = _spec(1)
    learning_rate: float = _spec(0.0, low_open=True)
    patience: int = _spec(1)


SECTIONS: dict[str, type] = {
    "images_prepare": ImagesPrepareParams,
    "language_prepare": LanguagePrepareParams,
    "sentences": SentencesParams,
    "language_train": LanguageTrainParams,
    "image": ImageParams,
    "image_bottleneck": ImageBottleneckParams,
    "image_finetune": ImageFinetuneParams,
    "combine": CombineParams,
}
"""Every section of ``params.yaml`` and its schema; ``seed`` and ``distribution`` are the top-level scalars."""

STAGE_PARAMS: dict[str, tuple[str, ...]] = {
    "images_prepare": ("seed", "images_prepare"),
    "language_prepare": ("language_prepare",),
    "sentences": ("sentences",),
    "language_train": ("seed", "distribution", "language_train"),
    "image_bottleneck": ("seed", "distribution", "image", "image_bottleneck"),
    "image_finetune": ("seed", "distribution", "image", "image_finetune"),
    "combine": ("seed", "distribution", "combine"),
}
"""The ``params.yaml`` entries each stage reads, which ``dvc.yaml`` must declare for that stage."""


def load_params(path: str | os.PathLike = PARAMS_FILE) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ESLPError(f"{path}: parameters file not found; run the stage from the project root")
    try:
        with open(path, encoding="utf-8") as file:
            params = yaml.safe_load(file)
    except yaml.YAMLError as error:
        where = f"{path}:{error.problem_mark.line + 1}" if getattr(error, "problem_mark", None) else str(path)
        problem = getattr(error, "problem", None) or "cannot be parsed"
        raise ESLPError(f"{where}: invalid YAML: {problem}; fix the file's syntax") from error
    if not isinstance(params, dict):
        raise ESLPError(f"{path}: expected a mapping of sections, found {shorten(params)}")
    return params


def _looks_like_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _describe_range(meta: dict) -> str:
    """Describe a violated range, such as "below the minimum 48" or "outside the allowed range (0.0, 1.0)"."""
    low, high = meta["low"], meta["high"]
    if high is None:
        return f"not greater than {low}" if meta["low_open"] else f"below the minimum {low}"
    if low is None:
        return f"not less than {high}" if meta["high_open"] else f"above the maximum {high}"
    left = "(" if meta["low_open"] else "["
    right = ")" if meta["high_open"] else "]"
    return f"outside the allowed range {left}{low}, {high}{right}"


def _check_value(key: str, value: Any, spec: dataclasses.Field) -> Any:
    meta = spec.metadata
    kind = spec.type
    # NOTE: bool is a subclass of int in Python, so booleans are checked first and are never
    # accepted where a number is expected, nor numbers where a boolean is.
    if kind is bool:
        if not isinstance(value, bool):
            raise ESLPError(f"params.yaml: {key}: expected true or false, found {shorten(value)}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ESLPError(f"params.yaml: {key}: expected a whole number, found {shorten(value)}")
    elif kind is float:
        if isinstance(value, str) and _looks_like_number(value):
            raise ESLPError(
                f"params.yaml: {key}: expected a number, found the string {shorten(value)}; remove any quotes, and "
                "give an exponent a decimal point (1.0e-3, not 1e-3), which YAML needs to read a number"
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ESLPError(f"params.yaml: {key}: expected a number, found {shorten(value)}")
        value = float(value)
        if not math.isfinite(value):
            raise ESLPError(f"params.yaml: {key}: {value} is not a finite number; write a number")
    elif kind is str:
        if not isinstance(value, str) or not value:
            raise ESLPError(f"params.yaml: {key}: expected a non-empty string, found {shorten(value)}")
        if "${" in value:
            raise ESLPError(
                f"params.yaml: {key}: {shorten(value)} uses ${{}} interpolation; write the plain value"
            )

    choices = meta["choices"]
    if choices is not None and value not in choices:
        raise ESLPError(f"params.yaml: {key}: {shorten(value)} is not one of {', '.join(choices)}")
    low, high = meta["low"], meta["high"]
    below = low is not None and (value <= low if meta["low_open"] else value < low)
    above = high is not None and (value >= high if meta["high_open"] else value > high)
    if below or above:
        reason = f" because {meta['reason']}" if meta["reason"] else ""
        raise ESLPError(f"params.yaml: {key}: {shorten(value)} is {_describe_range(meta)}{reason}")
    return value


def read_section(params: dict[str, Any], name: str) -> Any:
    """Return section ``name`` of ``params`` as its dataclass, after checking every key."""
    schema = SECTIONS[name]
    raw = params.get(name)
    if not isinstance(raw, dict):
        raise ESLPError(f"params.yaml: section {name!r} is missing or not a mapping; restore it from the repository")
    known = [spec.name for spec in dataclasses.fields(schema)]
    for key in raw:
        if key not in known:
            raise ESLPError(f"params.yaml: {name}.{key}: unknown key; known keys: {', '.join(known)}")
    values = {}
    for spec in dataclasses.fields(schema):
        if spec.name not in raw:
            raise ESLPError(f"params.yaml: {name}.{spec.name}: missing key; known keys: {', '.join(known)}")
        values[spec.name] = _check_value(f"{name}.{spec.name}", raw[spec.name], spec)
    return schema(**values)


MAX_SEED = 2**32 - 1
"""The largest seed that NumPy and Keras accept."""


def read_seed(params: dict[str, Any]) -> int:
    seed = params.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ESLPError(f"params.yaml: seed: expected a whole number from 0 to {MAX_SEED}, found {shorten(seed)}")
    return seed


DISTRIBUTIONS = ("none", "mirrored", "multi_worker")
"""Values of the top-level ``distribution``: one device, all local GPUs, or several machines (TF_CONFIG)."""


def read_distribution(params: dict[str, Any]) -> str:
    distribution = params.get("distribution")
    if distribution not in DISTRIBUTIONS:
        raise ESLPError(
            f"params.yaml: distribution: {shorten(distribution)} is not one of {', '.join(DISTRIBUTIONS)}; "
            "use none for one device, mirrored for the GPUs of one machine, multi_worker for several machines"
        )
    return distribution


def check_thresholds(params: SentencesParams) -> None:
    if params.angry_threshold > params.happy_threshold:
        raise ESLPError(
            f"params.yaml: sentences.angry_threshold ({params.angry_threshold}) is above "
            f"sentences.happy_threshold ({params.happy_threshold}), so a sentence could be both; "
            "set angry_threshold <= happy_threshold"
        )


def read_stage_params(stage: str, path: str | os.PathLike = PARAMS_FILE) -> SimpleNamespace:
    """Read and check the params of one stage: ``seed`` and one attribute per section it uses."""
    params = load_params(path)
    values = {}
    for name in STAGE_PARAMS[stage]:
        if name == "seed":
            values[name] = read_seed(params)
        elif name == "distribution":
            values[name] = read_distribution(params)
        else:
            values[name] = read_section(params, name)
    if "sentences" in values:
        check_thresholds(values["sentences"])
    return SimpleNamespace(**values)
