"""Progress of the long `arca admin` jobs on a terminal (rich's bars) or as JSON lines otherwise.

`JobProgress` (gc, fsck, migrate-storage): progress on stderr, the job's report on stdout.
`Reporter` (cleanup, import, export, import-domain, migrate-db): one JSON line per item on stdout,
the summary last.

JobProgress's JSON line is `{"time", "level", "logger": "arca.admin", "event": "progress", "job", "phase",
"done", "total"}` (total null while unknown; the shape of Arca's JSON log lines), written when a
phase starts and ends, every 1% and at least every 2 seconds; then
`{"event": "done", ...}` or `{"event": "interrupted", ...}`."""

from __future__ import annotations

import json
import signal
import sys
import time
from contextlib import contextmanager
from typing import Iterator, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from app.observability.logs import utc_stamp

JSON_EVERY_SECONDS = 2.0


class JobProgress:
    def __init__(self, job: str, stream: TextIO | None = None):
        self.job = job
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self.phase: str | None = None
        self.done = 0
        self.total: int | None = None
        self._last_line = (0.0, -1)
        self._bars = None
        self._tasks: dict[str, int] = {}

    # -- the job's callback -------------------------------------------------------------------
    def __call__(self, phase: str, done: int, total: int | None) -> None:
        new_phase = phase != self.phase
        self.phase, self.done, self.total = phase, done, total
        if self.tty:
            self._draw(phase, done, total)
            return
        now = time.monotonic()
        last_time, last_done = self._last_line
        step = max(1, total // 100) if total else 1000
        if new_phase or done == total or done - last_done >= step or now - last_time >= JSON_EVERY_SECONDS:
            self._line("progress", phase=phase, done=done, total=total)
            self._last_line = (now, done)

    # -- a terminal ---------------------------------------------------------------------------
    def _draw(self, phase: str, done: int, total: int | None) -> None:
        if self._bars is None:
            self._bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), console=Console(file=self.stream))
            self._bars.start()
        if phase not in self._tasks:
            self._tasks[phase] = self._bars.add_task(f"{self.job}: {phase}", total=total)
        self._bars.update(self._tasks[phase], completed=done, total=total)

    def close(self) -> None:
        if self._bars is not None:
            self._bars.stop()
            self._bars = None

    # -- the end ------------------------------------------------------------------------------
    def finished(self, summary: dict) -> None:
        self.close()
        seconds = round(time.monotonic() - self.started, 3)
        scalars = {k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool)) or v is None}
        if self.tty:
            Console(file=self.stream).print(
                f"[bold]{self.job}[/bold] finished in {seconds:.1f}s: "
                + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in scalars.items()), highlight=False)
        else:
            self._line("done", seconds=seconds, **scalars)

    def interrupted(self) -> None:
        self.close()
        hint = "stopped; nothing was left half-done, run it again to finish"
        if self.tty:
            print(f"{self.job}: {hint} (stopped in {self.phase or 'start-up'} at {self.done}"
                  f"{'/' + str(self.total) if self.total is not None else ''})", file=self.stream, flush=True)
        else:
            self._line("interrupted", phase=self.phase, done=self.done, total=self.total, message=hint)

    def _line(self, event: str, **fields) -> None:
        record = {"time": utc_stamp(), "level": "info", "logger": "arca.admin", "event": event, "job": self.job,
                  **fields}
        self.stream.write(json.dumps(record, default=str) + "\n")
        self.stream.flush()


def interrupt_on_sigterm() -> None:
    """SIGTERM stops a job as Ctrl-C does (a KeyboardInterrupt where the job is)."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


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
