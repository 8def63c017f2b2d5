"""The ``villagesim`` command: ``check`` and ``run`` (:mod:`.main`), experiments (:mod:`.experiments`:
compare, sweep, analyze), calibration (:mod:`.validate`) and the page (:mod:`.app`)."""

from villagesim.cli.main import main

__all__ = ["main"]
