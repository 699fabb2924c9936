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

__all__ = [
    "AnnotationError",
    "MissingFileError",
    "gc_paused",
    "read_file_bytes",
    "read_text_file",
    "parse_json_bytes",
    "read_json",
    "read_annotation_json",
    "load_class_map",
    "parse_class_map",
]


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


def read_file_bytes(path: str | os.PathLike, what: str = "file", hint: str | None = None) -> bytes:
    """The bytes of a user's file; a missing path, a directory or an unreadable file is an error naming it.

    Raises:
        MissingFileError: the path does not exist.
        AnnotationError: the path is not a regular file, or reading it fails (the system's reason).
    """
    p = Path(path)
    if not p.exists():
        raise _missing(what, p, hint)
    if not p.is_file():
        kind = "a directory" if p.is_dir() else "not a regular file"
        raise AnnotationError(f"{what} {p} is {kind}; expected a file{'; ' + hint if hint else ''}")
    try:
        return p.read_bytes()
    except OSError as e:
        raise AnnotationError(f"cannot read {what} {p}: {e.strerror or e}") from e


def _not_utf8(what: str, p: Path, e: UnicodeDecodeError) -> AnnotationError:
    return AnnotationError(f"{what} {p} is not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start}); save it as UTF-8")


def read_text_file(path: str | os.PathLike, what: str = "file", hint: str | None = None, bom: str = "strip") -> str:
    """A user's text file (UTF-8), newlines as read by Python's universal newlines (``\\r\\n`` and ``\\r`` become ``\\n``).

    ``bom``: ``"strip"`` drops a leading UTF-8 byte-order mark (Windows editors write one); ``"refuse"`` makes it an
    error (for files whose first line must keep OpenTAD's meaning, see :func:`load_class_map`). A NUL byte is an error
    (a binary file, or one written as UTF-16).

    Raises:
        MissingFileError: the path does not exist.
        AnnotationError: not a file, not UTF-8, a NUL byte, or a refused byte-order mark (the message names the file).
    """
    p = Path(path)
    raw = read_file_bytes(p, what, hint)
    if raw.startswith(b"\xef\xbb\xbf"):
        if bom == "refuse":
            raise AnnotationError(
                f"{what} {p} starts with a UTF-8 byte-order mark, which OpenTAD keeps as part of the first line; "
                "save the file as UTF-8 without BOM"
            )
        raw = raw[3:]
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise AnnotationError(f"{what} {p} has a NUL byte at offset {nul}: a binary file, or text saved as UTF-16? Save it as UTF-8")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _not_utf8(what, p, e) from e
    return text.replace("\r\n", "\n").replace("\r", "\n")


class _DuplicateKey(ValueError):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise _DuplicateKey(dup)
    return out


def parse_json_bytes(raw: bytes, what: str, path: str | os.PathLike, unique_keys: bool = False) -> Any:
    """Parse JSON bytes (see :func:`read_json` for the rules); errors name ``what`` and ``path`` in one line."""
    p = Path(path)
    with gc_paused():
        if not unique_keys:
            try:
                return orjson.loads(raw)
            except orjson.JSONDecodeError:
                pass
        # orjson is strict where Python's json is not (NaN / Infinity literals, numbers that overflow a double, a
        # byte-order mark, UTF-16/32); read such a file as the standard library does so that the caller can say
        # which entry is bad, and report the standard library's message if it fails too
        try:
            return json.loads(raw, object_pairs_hook=_unique_pairs if unique_keys else None)
        except _DuplicateKey as e:
            raise AnnotationError(
                f"{what} {p}: key {e.args[0]!r} appears twice in the same object; the second copy would silently "
                "replace the first: merge or rename them"
            ) from e
        except UnicodeDecodeError as e:
            raise _not_utf8(what, p, e) from e
        except RecursionError as e:
            raise AnnotationError(f"{what} {p} is not valid JSON: nested too deeply") from e
        except ValueError as e:  # json.JSONDecodeError, and e.g. an integer literal of more than 4300 digits
            raise AnnotationError(f"{what} {p} is not valid JSON: {str(e).splitlines()[0]}") from e


def read_json(
    path: str | os.PathLike, what: str = "JSON file", key: str | None = None, hint: str | None = None, unique_keys: bool = False
) -> Any:
    """Parse a JSON file.

    Accepted: UTF-8 with or without a byte-order mark, or UTF-16/32 with one (what Python's ``json`` detects);
    ``NaN``/``Infinity`` literals (the caller then names the entry that must be finite).

    Args:
        path: the file.
        what: what the file is, for messages (``"annotation file"``, ``"prediction file"``).
        key: if given, the top level must be an object whose ``key`` is an object (``"database"``,
            ``"results"``); the whole document is returned.
        hint: appended to the not-found message (e.g. which command writes the file).
        unique_keys: refuse an object with the same key twice, naming the key (annotation files: the second copy
            would silently replace the first). Without it the last copy wins, as with ``json.load``, and orjson's
            speed is kept (prediction files).

    Raises:
        MissingFileError: the file does not exist.
        AnnotationError: not a file, not valid JSON (the parser's message, with line and column), a duplicated key
            (``unique_keys``), or ``key`` missing.
    """
    p = Path(path)
    data = parse_json_bytes(read_file_bytes(p, what, hint), what, p, unique_keys)
    if key is not None and not (isinstance(data, dict) and isinstance(data.get(key), dict)):
        raise AnnotationError(f'{what} {p} has no "{key}" mapping at the top level; expected {{"{key}": {{video: ...}}}}')
    return data


def read_annotation_json(path: str | os.PathLike, hint: str | None = None) -> dict:
    """An OpenTAD annotation file ``{"database": {video: {...}}}`` (duplicated keys refused); the whole document."""
    return read_json(path, "annotation file", key="database", hint=hint, unique_keys=True)


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
        if any(ord(c) < 32 and c != "\t" or ord(c) == 127 for c in name):
            raise AnnotationError(f"{source}: line {i + 1} {name!r} has a control character; write the class name there")
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
    - an empty file is an error;
    - a UTF-8 byte-order mark is an error (OpenTAD would keep it as part of the first name, which then matches no
      label), and so is any byte that is not UTF-8, a NUL byte or another control character (a tab is a character).

    Raises:
        MissingFileError: the file does not exist.
        AnnotationError: the file breaks the rule above (the message names the file and line).
    """
    p = Path(path)
    text = read_text_file(p, "class map", "one class name per line; `adatad prepare thumos` writes it", bom="refuse")
    return parse_class_map(text, f"class map {p}")
