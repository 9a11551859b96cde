"""Console progress of a training run: a live bar on a terminal, plain lines elsewhere."""

import shutil
import sys
import threading
import time
from typing import Any, TextIO

from mkr_tf import trainer

_BAR_WIDTH = 20
_SHOWN_FIGURES = ("rs_loss", "kge_loss", "eval_auc", "test_auc", "test_recall@20")
# How often the bar re-reads the step counters while an epoch's graph runs.
REFRESH_SECONDS = 0.5


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def epoch_seconds(record: dict[str, Any]) -> float:
    """An epoch's wall time as its line reports it: training and CTR evaluation, plus top-K."""
    return record["seconds"] + record.get("topk_seconds", 0.0)


class ProgressCallback(trainer.TrainingCallback):
    """Shows training progress, and is the way the run's log lines reach the console.

    Interactive (a terminal, not quiet): one bar line, redrawn in place,

        epoch 3/10 [=========>..........] step 1,310/2,650  2.1s/epoch  ETA 0:15  rs_loss 0.4452 …

    The bar is the current epoch's training steps. A background thread reads them every
    REFRESH_SECONDS from the optimizers' `iterations`, the step counters that the in-graph
    epoch loop advances, so the epoch's graph runs without a Python call per step. s/epoch is
    the mean of the epoch lines' times (training, evaluation and top-K), leaving out the first
    epoch, which also builds the graphs, once another has run; the figures are
    the last epoch's, as many as fit the terminal's width. `log` prints each message above the
    bar, so the trainer's one line per epoch scrolls by as usual. Otherwise (a pipe, a file,
    CI, `quiet`) there is no bar and `log` is plain print: one line per epoch, nothing else.
    Pass `log` to `trainer.train` as its `log`.
    """

    def __init__(self, quiet: bool = False, stream: TextIO | None = None,
                 refresh_seconds: float = REFRESH_SECONDS):
        self._stream = stream
        self.interactive = not quiet and self.stream.isatty()
        self._refresh_seconds = refresh_seconds
        self._lock = threading.Lock()  # the bar is drawn from two threads
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._bar = ""
        self._model = None
        self._config = None
        self._rs_steps = self._kg_steps = 0
        self._epoch: int | None = None  # the one running; unknown in a resumed run's first
        self._epoch_start_step = 0
        self._epoch_start_time = 0.0
        self._last_record: dict[str, Any] | None = None
        self._epoch_times: list[float] = []  # of the epochs this process ran

    @property
    def stream(self) -> TextIO:
        # Resolved late so that a replaced sys.stdout (pytest's capture, redirections) is used.
        return self._stream or sys.stdout

    def log(self, message: str) -> None:
        with self._lock:
            if self._bar:
                self.stream.write("\r\x1b[K")
            self.stream.write(f"{message}\n")
            self._draw()

    def on_train_begin(self, model, config, data, run_dir) -> None:
        self._model, self._config = model, config
        self._rs_steps, self._kg_steps = trainer.steps_per_pass(config, data)
        self._epoch_start_step = self.steps_done()
        self._epoch_start_time = time.perf_counter()
        # No step yet: a new run, at epoch 1. A resumed run's epoch is known once one ends.
        self._epoch = 1 if self._epoch_start_step == 0 else None
        if self.interactive:
            self.refresh()
            self._stop.clear()
            self._poller = threading.Thread(target=self._poll, name="mkr-progress", daemon=True)
            self._poller.start()

    def on_epoch_end(self, epoch: int, record: dict[str, Any], model) -> None:
        self._epoch_times.append(epoch_seconds(record))
        self._last_record = record
        self._epoch = epoch + 1
        self._epoch_start_step = self.steps_done()
        self._epoch_start_time = time.perf_counter()
        self.refresh()

    def on_train_end(self, results: dict[str, Any], model) -> None:
        self._stop_polling()
        if self._bar:
            with self._lock:
                self._bar = self._render(finished=True)
                # The finished bar stays on screen as the run's total time.
                self.stream.write("\r\x1b[K" + self._bar + "\n")
                self.stream.flush()
                self._bar = ""

    def on_train_abort(self) -> None:
        self._stop_polling()

    def steps_done(self) -> int:
        """Training steps of both tasks so far, read from the optimizers' step counters."""
        return int(self._model.rs_optimizer.iterations.numpy()
                   + self._model.kge_optimizer.iterations.numpy())

    def refresh(self) -> None:
        """Redraws the bar from the step counters (the poller calls it while an epoch runs)."""
        if not self.interactive:
            return
        with self._lock:
            self._bar = self._render()
            self._draw()

    def _poll(self) -> None:
        while not self._stop.wait(self._refresh_seconds):
            try:
                self.refresh()
            except Exception:  # pylint: disable=broad-except
                return  # e.g. the variables went away with the strategy; the bar is cosmetic

    def _stop_polling(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join()
            self._poller = None

    def _draw(self) -> None:
        if self._bar:
            self.stream.write("\r\x1b[K" + self._bar)
        self.stream.flush()

    def _epoch_steps(self) -> int:
        # A resumed run's first epoch is unknown here, and counted without a KGE pass (the bar
        # then stops full).
        kge_epoch = self._epoch is not None and self._config.runs_kge(self._epoch)
        return self._rs_steps + (self._kg_steps if kge_epoch else 0)

    def _render(self, finished: bool = False) -> str:
        n_epochs = self._config.n_epochs
        # The first epoch also builds the graphs: left out of the typical time once another ran.
        typical = self._epoch_times[1:] or self._epoch_times
        mean_seconds = sum(typical) / len(typical) if typical else None
        if finished or (self._epoch or 0) > n_epochs:
            last = self._last_record["epoch"] if self._last_record else n_epochs
            parts = [f"epoch {last}/{n_epochs}", f"[{'=' * _BAR_WIDTH}]",
                     f"{mean_seconds or 0:.1f}s/epoch",
                     f"done in {_clock(sum(self._epoch_times))}"]
        else:
            total = self._epoch_steps()
            done = min(self.steps_done() - self._epoch_start_step, total)
            filled = _BAR_WIDTH * done // max(total, 1)
            arrow = ">" if filled < _BAR_WIDTH else ""
            epoch = "…" if self._epoch is None else str(self._epoch)
            parts = [f"epoch {epoch}/{n_epochs}",
                     f"[{'=' * filled}{arrow}{'.' * (_BAR_WIDTH - filled - len(arrow))}]",
                     f"step {done:,}/{total:,}"
                     + (" (building the graph)" if done == 0 and not self._epoch_times else "")]
            if mean_seconds is not None:
                remaining = (mean_seconds * (n_epochs - len(self._epoch_times))
                             - (time.perf_counter() - self._epoch_start_time))
                parts += [f"{mean_seconds:.1f}s/epoch", f"ETA {_clock(max(remaining, 0.0))}"]
        # Wider than the terminal, the line would wrap and "\r" could no longer redraw it.
        width = shutil.get_terminal_size().columns - 1
        line = "  ".join(parts)[:width]
        record = self._last_record or {}
        for figure in (f"{name} {record[name]:.4f}" for name in _SHOWN_FIGURES if name in record):
            if len(line) + 2 + len(figure) > width:
                break
            line += "  " + figure
        return line
