"""Progress of a long import for an operator: a bar on a terminal, plain log lines otherwise."""

import logging
import sys

from tqdm import tqdm

log = logging.getLogger("life.reprocess")


class Progress:
    """Called as ``progress(done, total)``; a context manager that closes the bar."""

    def __init__(self, name, unit="push"):
        self.name = name
        self.unit = unit
        self.bar = None

    def __enter__(self):
        return self

    def __call__(self, done, total):
        if sys.stderr.isatty():
            if self.bar is None:
                self.bar = tqdm(total=total, unit=self.unit, desc=self.name)
            self.bar.update(done - self.bar.n)
        else:
            log.info("%s: %d/%d %ss", self.name, done, total, self.unit)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
