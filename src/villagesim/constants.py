"""Constants of the model's calendar and life course, in one place.

Every module that needs them imports them from here (:mod:`villagesim.constants` imports
nothing), so a week, a year and an elder mean the same everywhere.
"""

WEEKS_PER_YEAR = 52
"""Weeks in a model year: a step is one week, a budget year is 52 steps (unit: weeks/year)."""

ELDER_AGE = 60.0
"""Age from which a resident counts as an elder (unit: years; MODEL.md §2, census 60+)."""
HOURS_PER_WEEK = 168.0
"""Hours in a week (a carer's time budget starts from it)."""
