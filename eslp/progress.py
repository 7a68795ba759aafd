"""Progress bars for long loops that Keras does not cover, such as decoding thousands of images."""

from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

Item = TypeVar("Item")


def progress(items: Iterable[Item], description: str, total: int | None = None, unit: str = "image") -> Iterator[Item]:
    """Iterate over ``items`` with a progress bar on standard error when it is a terminal.

    With ``disable=None``, tqdm draws nothing when standard error is not a terminal, so
    logs in CI and files stay free of bar updates.
    """
    return iter(tqdm(items, desc=description, total=total, unit=unit, disable=None, leave=False, dynamic_ncols=True))
