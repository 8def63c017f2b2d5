"""Calibration against published figures: targets and fitting (:mod:`.fitting`), validation of
targets and patterns (:mod:`.validation`)."""
