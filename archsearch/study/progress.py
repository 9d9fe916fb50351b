"""How a running study shows its progress: a bar on a terminal, log lines elsewhere.

On a terminal the bar (tqdm) counts evaluations and shows the best-so-far objective and an
ETA. Redirected to a file, or with ``--quiet``, a bar's carriage returns are noise, so the
study writes one plain line every ``every`` evaluations (a tenth of an evaluation budget) or
every ``interval`` seconds, whichever comes first, and one when it stops::

    archsearch: search 20/50 evaluations, 12.4 s, best valid_accuracy 91.52 (trial 17), ETA 19 s

The ETA is the smaller of the time budget left and the evaluations left times this run's
mean seconds per evaluation (an earlier run's pace, on another machine, says nothing).
"""

from __future__ import annotations

import sys
import time
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archsearch.study.study import Budget, Study

#: ``progress=`` values of :meth:`Study.optimize`: ``True`` picks by the terminal
BAR, LOG = "bar", "log"
#: at most this many seconds between two log lines
LOG_INTERVAL = 60.0


class Progress:
    """Reports a study's progress after each evaluation; see the module docstring."""

    def __init__(
        self,
        study: Study,
        budget: Budget,
        mode: bool | str = True,
        stream: IO[str] | None = None,
        interval: float = LOG_INTERVAL,
    ) -> None:
        self.study, self.budget = study, budget
        self.stream = stream if stream is not None else sys.stderr
        if mode is True:
            mode = BAR if _isatty(self.stream) else LOG
        if mode not in (BAR, LOG):
            raise ValueError(f"progress must be True, False, {BAR!r} or {LOG!r}, got {mode!r}")
        self.mode, self.interval = mode, interval
        total = budget.evaluations
        self.every = max(1, total // 10) if total else 10
        self.start_n, self.started = study.n_finished, time.perf_counter()
        self.logged_n, self.logged_at = study.n_finished, self.started
        self._bar = self._make_bar() if mode == BAR else None

    def _make_bar(self) -> Any:
        from tqdm.auto import tqdm

        total = self.budget.evaluations
        return tqdm(total=total, initial=self.study.n_finished if total else 0, desc="search",
                    unit="eval", dynamic_ncols=True, file=self.stream)  # fmt: skip

    def update(self) -> None:
        """After an evaluation: move the bar, or log when a line is due."""
        if self._bar is not None:
            self._bar.update(self.study.n_finished - self._bar.n)
            self._bar.set_postfix(self._postfix(), refresh=True)
            return
        now, n = time.perf_counter(), self.study.n_finished
        if n - self.logged_n >= self.every or now - self.logged_at >= self.interval:
            self._log(now, n)

    def close(self) -> None:
        """The last line (the bar's final state, or a log line for trials not yet logged)."""
        if self._bar is not None:
            self._bar.close()
        elif self.study.n_finished != self.logged_n:
            self._log(time.perf_counter(), self.study.n_finished)

    def _log(self, now: float, n: int) -> None:
        self.logged_n, self.logged_at = n, now
        total = self.budget.evaluations
        count = f"{n}/{total}" if total else str(n)
        parts = [f"archsearch: search {count} evaluations", f"{self.study.elapsed:.1f} s"]
        parts += [f"{key} {value}" for key, value in self._postfix().items()]
        print(", ".join(parts), file=self.stream, flush=True)

    def _postfix(self) -> dict[str, str]:
        """Best-so-far and ETA, as short ``name: text`` pairs."""
        fields = {}
        best = self.study.best
        if best is not None:
            name = self.study.declaration.primary.name
            fields["best"] = f"{name} {best.objective:.4g} (trial {best.number})"
        eta = self.eta()
        if eta is not None:
            fields["ETA"] = _duration(eta)
        return fields

    def eta(self) -> float | None:
        """Seconds until the budget is spent, by this run's pace (None before any)."""
        budget, n = self.budget, self.study.n_finished
        estimates = []
        if budget.seconds is not None:
            estimates.append(max(0.0, budget.seconds - self.study.elapsed))
        done = n - self.start_n
        if budget.evaluations is not None and done > 0:
            pace = (time.perf_counter() - self.started) / done
            estimates.append(max(0, budget.evaluations - n) * pace)
        return min(estimates) if estimates else None


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or foreign stream
        return False
