"""Console progress of a training run: a live epoch bar on a terminal, plain lines elsewhere."""

import shutil
import sys
import time
from typing import Any, TextIO

from mkr_tf import trainer

_BAR_WIDTH = 20
_SHOWN_FIGURES = ("rs_loss", "kge_loss", "eval_auc", "test_auc", "test_recall@20")


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class ProgressCallback(trainer.TrainingCallback):
    """Shows training progress, and is the way the run's log lines reach the console.

    Interactive (a terminal, not quiet): one bar line, redrawn in place after every epoch,

        epoch 3/10 [=====>..............] 2.1s/epoch 48,310 ex/s ETA 0:15 rs_loss 0.4452 …

    (the figures that fit the terminal's width; ex/s counts the epoch's wall time, evaluation
    included)
    and `log` prints each message above the bar, so the trainer's one line per epoch scrolls
    by as usual. Otherwise (a pipe, a file, CI, `quiet`) there is no bar and `log` is plain
    print: one line per epoch, nothing else. Pass `log` to `trainer.train` as its `log`.
    """

    def __init__(self, quiet: bool = False, stream: TextIO | None = None):
        self._stream = stream
        self.interactive = not quiet and self.stream.isatty()
        self._bar = ""
        self._n_epochs = 0
        self._start = 0.0
        self._rows_per_epoch = 0
        self._kg_rows = 0
        self._epochs_done = 0  # by this process: a resumed run starts past epoch 1

    @property
    def stream(self) -> TextIO:
        # Resolved late so that a replaced sys.stdout (pytest's capture, redirections) is used.
        return self._stream or sys.stdout

    def log(self, message: str) -> None:
        if self._bar:
            self.stream.write("\r\x1b[K")
        self.stream.write(f"{message}\n")
        self._draw()

    def on_train_begin(self, model, config, data, run_dir) -> None:
        self._n_epochs = config.n_epochs
        self._rows_per_epoch = len(data.train)
        self._kg_rows = len(data.kg)
        self._start = time.perf_counter()
        if self.interactive:
            # A resumed run's first epoch is unknown here, so no count until one ends.
            self._bar = f"epoch …/{self._n_epochs} [{'.' * _BAR_WIDTH}] first epoch running"
            self._draw()

    def on_epoch_end(self, epoch: int, record: dict[str, Any], model) -> None:
        self._epochs_done += 1
        if self.interactive:
            self._bar = self._render(epoch, record)
            self._draw()

    def on_train_end(self, results: dict[str, Any], model) -> None:
        if self._bar:
            # The finished bar stays on screen as the run's total time.
            self.stream.write("\n")
            self.stream.flush()
            self._bar = ""

    def _draw(self) -> None:
        if self._bar:
            self.stream.write("\r\x1b[K" + self._bar)
        self.stream.flush()

    def _render(self, epoch: int, record: dict[str, Any]) -> str:
        elapsed = time.perf_counter() - self._start
        seconds_per_epoch = elapsed / self._epochs_done
        filled = _BAR_WIDTH * epoch // self._n_epochs
        arrow = ">" if filled < _BAR_WIDTH else ""
        rows = self._rows_per_epoch + (self._kg_rows if "kge_loss" in record else 0)
        parts = [f"epoch {epoch}/{self._n_epochs}",
                 f"[{'=' * filled}{arrow}{'.' * (_BAR_WIDTH - filled - len(arrow))}]",
                 f"{seconds_per_epoch:.1f}s/epoch", f"{rows / record['seconds']:,.0f} ex/s",
                 f"ETA {_clock(seconds_per_epoch * (self._n_epochs - epoch))}"
                 if epoch < self._n_epochs else f"done in {_clock(elapsed)}"]
        # Wider than the terminal, the line would wrap and "\r" could no longer redraw it.
        width = shutil.get_terminal_size().columns - 1
        line = " ".join(parts)[:width]
        for figure in (f"{name} {record[name]:.4f}" for name in _SHOWN_FIGURES if name in record):
            if len(line) + 1 + len(figure) > width:
                break
            line += " " + figure
        return line
