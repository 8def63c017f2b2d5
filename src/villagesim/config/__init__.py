"""Scenarios: the parameter schema and overrides (:mod:`.schema`) and reading and checking
scenario files (:mod:`.loading`, which imports the schema, never the reverse). The bottom
layer: it imports no other part of villagesim but :mod:`villagesim.errors` and
:mod:`villagesim.constants`."""
