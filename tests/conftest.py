"Shared pytest fixtures for finr1's tests (what notebooks should not hold: servers, subprocesses, kill-and-resume)."
import pytest
from finr1.core import find_data_dir

@pytest.fixture(scope="session")
def data_dir():
    "The real datasets (`../shared/data`), or skip with the reason."
    d = find_data_dir()
    if d is None: pytest.skip("real datasets not found: set FINR1_DATA_DIR or place them in ../shared/data")
    return d
