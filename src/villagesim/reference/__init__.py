"""The per-agent reference engine: the rules of villagesim, one Mesa agent per villager.

The oracle for the vectorised core's correctness and the baseline for its speed; see
:mod:`villagesim.reference.model`.
"""

from villagesim.reference.model import (
    GOVERNANCE_INERT,
    REFERENCE_COLUMNS,
    UNSUPPORTED_LEVERS,
    ReferenceModel,
    governance_inert,
    run_reference,
)

__all__ = ["ReferenceModel", "REFERENCE_COLUMNS", "UNSUPPORTED_LEVERS", "GOVERNANCE_INERT", "governance_inert", "run_reference"]
