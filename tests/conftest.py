"""Shared test settings: hypothesis profiles and the real-data fixture.

Hypothesis runs 100 examples per property, freshly drawn on every run (the "default"
profile), so that local runs keep exploring; "ci" (HYPOTHESIS_PROFILE=ci, set by .ci/run)
runs 100 examples derandomized, the same ones on every run, so that CI's verdict on a commit
does not depend on the draw (a case a random run finds goes in as an @example); "dev" runs 20
for quick local loops. Deadlines are off: a gradient check's run time depends on the drawn
shape, not on a regression.

Tests that need the real data sets read them from the folder in the environment variable
TINYDEEP_DATA (.ci/run points it at ../shared/data) and skip, naming the missing folder,
when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

QUIET = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("default", max_examples=100, **QUIET)
settings.register_profile("ci", max_examples=100, derandomize=True, **QUIET)
settings.register_profile("dev", max_examples=20, **QUIET)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def data_root():
    """A function: data_root("fashion-mnist") is that folder under TINYDEEP_DATA, or a skip."""

    def folder(name: str) -> Path:
        root = os.environ.get("TINYDEEP_DATA")
        if not root:
            pytest.skip(
                f"needs the real data set '{name}': set TINYDEEP_DATA to a folder "
                f"holding {name}/ (CI uses ../shared/data)"
            )
        path = Path(root) / name
        if not path.is_dir():
            pytest.skip(f"needs the real data set folder {path}, which is absent")
        return path

    return folder
