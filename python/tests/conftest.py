import os
import pathlib

import pytest

SOURCE = pathlib.Path(__file__).resolve().parents[2]
FIXTURE = SOURCE / "tests" / "data" / "fixtures" / "rechub_train_sample.csv"


@pytest.fixture
def fixture_csv():
    return FIXTURE


@pytest.fixture
def funnel_bin():
    """The `funnel` command line built beside the package (FUNNEL_BIN, set by CTest)."""
    b = os.environ.get("FUNNEL_BIN")
    if not b or not os.path.exists(b):
        pytest.skip("FUNNEL_BIN (the funnel command line) not given")
    return b
