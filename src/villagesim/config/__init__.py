"""Scenarios: the parameter schema (:mod:`.schema`) and reading, checking and overriding
scenario files (:mod:`.loading`). The bottom layer: it imports no other part of villagesim
but :mod:`villagesim.errors` and :mod:`villagesim.constants`."""
