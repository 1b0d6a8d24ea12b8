import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def write(tmp_path):
    """Write bytes to a file in the test's folder; returns its path."""
    def _write(name, data):
        path = tmp_path / name
        path.write_bytes(data)
        return path
    return _write
