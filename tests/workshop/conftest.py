"""The workshop tests' service: one `kvlab workshop serve` per test, stopped with Ctrl-C after it."""

import pytest

from classroom import serve


@pytest.fixture
def service(tmp_path):
    started = serve(tmp_path / "class")
    yield started
    started.stop()
