"""Progress of the long `arca admin` jobs (cleanup, import, export, import-domain, migrate-db): a rich
progress bar on a terminal, else one JSON line per item on stdout; the summary comes last either way."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from typing import Iterator, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class Reporter:
    """`task(label, total)` starts a bar; `advance()` moves it; `item(dict)` reports one thing done."""

    def __init__(self, out: TextIO = sys.stdout, err: TextIO = sys.stderr, tty: bool | None = None):
        self.out = out
        self.tty = err.isatty() if tty is None else tty
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), console=Console(file=err), transient=False) if self.tty else None
        self._task = None

    def task(self, label: str, total: int | None) -> None:
        if self._progress is None:
            return
        if self._task is not None:
            self._progress.update(self._task, completed=self._progress.tasks[-1].total or 0)
        self._task = self._progress.add_task(label, total=total)

    def advance(self, n: int = 1) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, n)

    def item(self, entry: dict) -> None:
        if self._progress is None:
            self.out.write(json.dumps(entry, default=str) + "\n")
            self.out.flush()

    def summary(self, summary: dict) -> None:
        self.out.write(json.dumps(summary, indent=None if not self.tty else 4, default=str) + "\n")
        self.out.flush()

    @contextmanager
    def running(self) -> Iterator["Reporter"]:
        if self._progress is None:
            yield self
            return
        with self._progress:
            yield self
