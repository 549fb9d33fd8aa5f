"""The run's log file (``<run dir>/vgen.log``), as Hydra's job logging opens it (``conf/hydra/job_logging``).

A log file can become unwritable while the run goes on: a full disk is the usual cause. The stock
``logging.FileHandler`` then prints a full traceback to stderr for every record (dozens per job).
This handler says so once, in one line, and once more when writing works again; the records
still reach the console. Other errors (a record that cannot be formatted) are reported as usual.
"""

from __future__ import annotations

import logging
import sys


class ReportOnceFileHandler(logging.FileHandler):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._failing = False
        self._write_error: OSError | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self._write_error = None
        super().emit(record)  # calls handleError when the write fails
        if self._write_error is not None and not self._failing:
            sys.stderr.write(f"vgen: cannot write the log file {self.baseFilename} ({self._write_error}); "
                             "its records go only to the console until writing works again\n")
        elif self._write_error is None and self._failing:
            sys.stderr.write(f"vgen: writing the log file {self.baseFilename} works again\n")
        self._failing = self._write_error is not None

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            self._write_error = error
        else:
            super().handleError(record)
