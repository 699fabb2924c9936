"""The one base class of errors a user can cause (a bad config key, a missing video, a corrupt or
mismatched checkpoint, an unusable annotation file, ...).

The command line prints such an error as one line, ``adatad: error: <message>``, with no traceback: the
message is the whole story and names the file or key and what to do. Anything else is a bug and keeps
its traceback. Each subclass also derives from the built-in exception a caller would expect
(``ValueError``, ``FileNotFoundError``, ``RuntimeError``) so that library users can catch either.

This module imports nothing (the CLI reads it before any heavy import).
"""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """An error caused by the user's input; its message says what is wrong and how to fix it."""
