"""Fixtures shared by the end-to-end tests."""
from pathlib import Path

import pytest
import yaml

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.yaml"


@pytest.fixture()
def slow_recipe(tmp_path):
    """Jobs of about a second each (three frames), so that there is time to kill things mid-job."""
    data = yaml.safe_load(TINY.read_text())
    data["frames"] = 3
    data["sensors"][0].update(resolution=[160, 120], samples=8)
    path = tmp_path / "slow.yaml"  # tiny.yaml names no file, so it may live anywhere but in the checkout
    path.write_text(yaml.safe_dump(data))
    return path
