"""The throttle's own arithmetic, at the real limits (the SDK-level 429 path is in test_throttling.py).

Driving 4,000 requests through the SDK inside one 10-second window is too slow
to be reliable on a small machine, so the limits are counted here directly.
"""

from kvlab.emulator.throttle import LIMITS, Throttle


def test_other_operations_are_limited_at_4000_per_window_and_creates_at_300():
    throttle = Throttle(window=10.0)
    assert [throttle.retry_after("kv", "SecretGet") for _ in range(4000)] == [None] * 4000
    wait = throttle.retry_after("kv", "SecretGet")
    assert wait is not None and 1 <= wait <= 10
    # creates have their own budget, untouched by the 4,000 reads
    assert [throttle.retry_after("kv", "SecretSet") for _ in range(300)] == [None] * 300
    assert throttle.retry_after("kv", "SecretSet") is not None
    # and every vault has its own
    assert throttle.retry_after("kv-other", "SecretGet") is None
    assert LIMITS == {"create": 300, "other": 4000}


def test_the_window_slides():
    throttle = Throttle(window=0.2)
    for _ in range(300):
        assert throttle.retry_after("kv", "SecretSet") is None
    assert throttle.retry_after("kv", "SecretSet") is not None
    import time

    time.sleep(0.25)
    assert throttle.retry_after("kv", "SecretSet") is None
