"""Errors raised on bad input: each names the file and, where it applies, the byte offset."""

from __future__ import annotations


class CaptureError(Exception):
    """A capture that cannot be read (or read further); formats as one line for the user."""

    def __init__(self, path, message: str, offset: int | None = None):
        self.path = str(path)
        self.message = message
        self.offset = offset
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f" at byte offset {self.offset}" if self.offset is not None else ""
        return f"{self.path}: {self.message}{where}"
