"""Who is the owner of a session, and the passcode rate limit (songsim.studies.panel)."""

from __future__ import annotations

import pytest

from songsim.studies.panel import AttemptLimiter, is_loopback, owner_session


@pytest.mark.parametrize("address", [None, "127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "::ffff:127.0.0.1"])
def test_loopback_addresses(address):
    assert is_loopback(address)


@pytest.mark.parametrize("address", ["192.168.1.23", "10.0.0.1", "::ffff:10.0.0.1", "fe80::1", "", "not-an-ip", "8.8.8.8"])
def test_other_addresses_are_not_loopback(address):
    assert not is_loopback(address)


def test_owner_session_rules():
    none, passcode = {}, {"owner_passcode": "s3cret"}
    assert owner_session(none, None, "127.0.0.1") and not owner_session(none, None, "192.168.1.2")
    assert owner_session(passcode, "s3cret", "192.168.1.2") and not owner_session(passcode, "guess", "127.0.0.1")
    assert not owner_session(passcode, None, None)  # with a passcode, loopback alone is not enough


def test_the_limiter_locks_out_after_repeated_failures_and_doubles():
    limiter = AttemptLimiter(max_failures=3, window_s=60, lockout_s=10)
    for t in (0.0, 1.0):
        limiter.failed("a", now=t)
        assert limiter.wait_s("a", now=t) == 0
    limiter.failed("a", now=2.0)
    assert limiter.wait_s("a", now=2.0) == pytest.approx(10) and limiter.wait_s("b", now=2.0) == 0
    assert limiter.wait_s("a", now=12.5) == 0
    for t in (13.0, 14.0, 15.0):
        limiter.failed("a", now=t)
    assert limiter.wait_s("a", now=15.0) == pytest.approx(20)  # the second lockout is twice as long
    limiter.succeeded("a")
    assert limiter.wait_s("a", now=15.0) == 0


def test_failures_outside_the_window_do_not_add_up():
    limiter = AttemptLimiter(max_failures=3, window_s=10, lockout_s=10)
    for t in (0.0, 20.0, 40.0, 60.0):
        limiter.failed("a", now=t)
    assert limiter.wait_s("a", now=60.0) == 0
