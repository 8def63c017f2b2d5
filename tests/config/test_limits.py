"""The predicted size of a run: close to what a model really allocates, and a refusal above the limit."""

from __future__ import annotations

import tracemalloc

import pytest

from villagesim.config.limits import BASE_BYTES, check_size, estimate, memory_limit
from villagesim.config.loading import apply_overrides
from villagesim.config.schema import Scenario
from villagesim.errors import ScenarioError


@pytest.mark.usefixtures("compiled_kernels")
@pytest.mark.parametrize(("villages", "persons"), [(40, 1500), (300, 150)])
def test_estimate_bounds_the_memory_a_run_takes(villages, persons):
    """Tolerance: the real peak of building and stepping a model lies between a third of the
    predicted model memory and the prediction itself (so the estimate is safe but not absurd)."""
    from villagesim.model import VillageModel

    steps = 30
    scenario = apply_overrides(
        Scenario(), {"population.villages": villages, "population.residents_per_village": persons, "run.steps": steps}
    )
    VillageModel(scenario=scenario).step()  # compile and import outside the measurement
    tracemalloc.start()
    try:
        model = VillageModel(scenario=scenario)
        for _ in range(steps):
            model.step()
        model.village_outcomes()  # the record becomes a table, as at the end of a run
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    predicted = estimate(scenario).bytes - BASE_BYTES
    assert predicted / 3 <= peak <= predicted, (peak, predicted)


def test_a_prefecture_of_large_villages_is_refused_before_allocation():
    huge = apply_overrides(Scenario(), {"population.villages": 5000, "population.residents_per_village": 100000})
    with pytest.raises(ScenarioError) as err:
        check_size(huge, limit=8 * 2**30, file="huge.toml")
    msg = str(err.value)
    assert msg.startswith("huge.toml: ") and "500,000,000 persons" in msg and "--max-memory" in msg
    assert "\n" not in msg


def test_long_wide_runs_are_refused_for_their_records():
    wide = apply_overrides(Scenario(), {"population.villages": 5000, "population.residents_per_village": 20, "run.steps": 5200})
    size = estimate(wide)
    assert size.village_rows == 5000 * 5201
    with pytest.raises(ScenarioError, match="recorded village rows"):
        check_size(wide, limit=8 * 2**30)
    # recording every 52nd week brings it under the same limit
    yearly = wide.with_overrides({"run.village_report_every": 52})
    assert check_size(yearly, limit=8 * 2**30).village_rows < size.village_rows / 50


def test_the_baseline_fits_and_the_limit_can_be_set(monkeypatch):
    assert check_size(Scenario()).bytes < memory_limit()
    monkeypatch.setenv("VILLAGESIM_MAX_MEMORY_GIB", "0.1")
    with pytest.raises(ScenarioError, match="more than the 102 MiB allowed"):
        check_size(Scenario())
    monkeypatch.setenv("VILLAGESIM_MAX_MEMORY_GIB", "lots")
    with pytest.raises(ScenarioError, match="must be a number"):
        memory_limit()
