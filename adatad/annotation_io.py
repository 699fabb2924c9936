"""Reading annotation-type files: JSON (annotations, predictions) and class maps. No torch, no numpy.

The one place where ``adatad.data`` (training, ``prepare``) and ``adatad.evaluation`` (``adatad eval``)
read these files, so that both accept the same files and give the same errors. It sits beside
:mod:`adatad.config`: every layer may import it; it imports only :mod:`adatad.errors`.

- :func:`read_json`: orjson (several times faster than the standard library on the 30 MB prediction
  files of a THUMOS test run), the garbage collector paused while the objects are built; a file that
  orjson refuses but Python's ``json`` reads (``NaN``/``Infinity`` literals, which ``json.dump`` writes
  for a diverged model's scores; numbers that overflow a double) is read with ``json`` so that the caller
  can name the bad entry. Errors name the file.
- :func:`load_class_map`: the class-map rule, see there.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from adatad.errors import UserError

__all__ = ["AnnotationError", "MissingFileError", "gc_paused", "read_json", "load_class_map", "parse_class_map"]


class AnnotationError(UserError, ValueError):
    """An annotation, prediction or class-map file is malformed. The message names the file (and video, field, line)."""


class MissingFileError(AnnotationError, FileNotFoundError):
    """The file does not exist (both an :class:`AnnotationError` and a :class:`FileNotFoundError`)."""


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (nesting is fine).

    Building the ~3 million small objects of a large JSON file otherwise triggers many collections that
    find nothing. Objects still alive when it is re-enabled are traversed once by the next collection,
    so a caller that only extracts arrays from a parsed file should drop the parsed objects inside the pause.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _missing(what: str, path: Path, hint: str | None) -> MissingFileError:
    return MissingFileError(f"{what} not found: {path} (the file does not exist{'; ' + hint if hint else ''})")


def read_json(path: str | os.PathLike, what: str = "JSON file", key: str | None = None, hint: str | None = None) -> Any:
    """Parse a JSON file.

    Args:
        path: the file.
        what: what the file is, for messages (``"annotation file"``, ``"prediction file"``).
        key: if given, the top level must be an object whose ``key`` is an object (``"database"``,
            ``"results"``); the whole document is returned.
        hint: appended to the not-found message (e.g. which command writes the file).

    Raises:
        MissingFileError: the file does not exist.
        AnnotationError: not valid JSON (the parser's message, with line and column), or ``key`` missing.
    """
    p = Path(path)
    if not p.is_file():
        raise _missing(what, p, hint)
    raw = p.read_bytes()
    with gc_paused():
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            # orjson is strict where Python's json is not (NaN / Infinity literals, numbers that overflow
            # a double); read such a file as the standard library does so that the caller can say which
            # entry is bad, and report the standard library's message if it fails too
            try:
                data = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise AnnotationError(f"{what} {p} is not valid JSON: {e}") from e
    if key is not None and not (isinstance(data, dict) and isinstance(data.get(key), dict)):
        raise AnnotationError(f'{what} {p} has no "{key}" mapping at the top level; expected {{"{key}": {{video: ...}}}}')
    return data


def parse_class_map(text: str, source: str = "class map") -> list[str]:
    """Class names from the text of a class map (newlines already ``\\n``); see :func:`load_class_map`."""
    names = text.split("\n")
    while names and not names[-1].strip():  # the final newline, then blank lines at the end
        names.pop()
    if not names:
        raise AnnotationError(f"{source} is empty; expected one class name per line")
    for i, name in enumerate(names):
        if not name.strip():
            raise AnnotationError(
                f"{source}: line {i + 1} is blank; line k is class k-1 (OpenTAD's rule), so a blank line would be a "
                "class without a name and removing it would renumber the classes after it; write the class name there"
            )
        if name != name.strip():
            raise AnnotationError(
                f"{source}: line {i + 1} {name!r} has leading or trailing whitespace; OpenTAD keeps it as part of "
                f"the class name, which then does not match the label {name.strip()!r}; remove it"
            )
    seen: set[str] = set()
    dup = sorted({n for n in names if n in seen or seen.add(n)})
    if dup:
        raise AnnotationError(f"{source}: duplicated class names {dup}")
    return names


def load_class_map(path: str | os.PathLike) -> list[str]:
    """Class names of a class map (``category_idx.txt``): line ``k`` (1-based) is class index ``k - 1``.

    The rule is OpenTAD's ``get_class_map`` (``opentad/datasets/base/*_dataset.py``):
    ``open(path, "r", encoding="utf8").readlines()`` and ``item.rstrip("\\n")`` for each line. So:

    - line ends ``\\n``, ``\\r\\n`` and ``\\r`` are all line ends (Python's universal newlines, as there);
      the newline after the last name is optional;
    - nothing else is stripped, so every accepted file gives OpenTAD's names at OpenTAD's indices;
    - blank lines at the end of the file are ignored: OpenTAD would append classes named ``""`` after
      the real ones, which no label uses and which change no index;
    - a blank (empty or whitespace-only) line before the last name is an error naming the line:
      OpenTAD would make it a class ``""`` and keep the later indices, and skipping it (what ``adatad
      eval`` used to do) would silently renumber them;
    - a name with leading or trailing whitespace is an error: OpenTAD keeps the spaces, so the name would
      not match its label in the annotation file (and ``adatad eval`` would ignore its predictions);
    - duplicated names are an error (OpenTAD's ``class_map.index`` would never give the second one);
    - an empty file is an error.

    Raises:
        MissingFileError: the file does not exist.
        AnnotationError: the file breaks the rule above (the message names the file and line).
    """
    p = Path(path)
    if not p.is_file():
        raise _missing("class map", p, "one class name per line; `adatad prepare thumos` writes it")
    try:
        text = p.read_text(encoding="utf8")
    except UnicodeDecodeError as e:
        raise AnnotationError(f"class map {p} is not UTF-8 text: {e}") from e
    return parse_class_map(text, f"class map {p}")
