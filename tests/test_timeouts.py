"""The suite's per-test timeout (pyproject.toml, pytest-timeout): a test stuck past its timeout
stops the run and is named, even when it is stuck where no exception reaches it: a lock wait in a
finaliser during garbage collection, as in the hang once seen in tests/test_dask.py."""

import time
from pathlib import Path

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]

STUCK = '''
import gc
import threading

import pytest

LOCK = threading.Lock()  # like distributed.utils.LoopRunner._lock


class Client:
    def __del__(self):  # like distributed.Client.__del__ -> close -> LoopRunner.stop
        with LOCK:
            pass


def test_before():
    pass


@pytest.mark.timeout(3)
def test_stuck_in_a_finaliser():
    client = Client()
    client.itself = client  # a reference cycle: only the garbage collector frees it
    del client
    with LOCK:  # like a new client starting: LoopRunner.start holds the lock...
        gc.collect()  # ...when the collector runs the old client's __del__, which waits for it


def test_after():
    pass
'''


def run_stuck_suite(pytester, *options: str):
    """The project's pytest configuration and conftest, with :data:`STUCK` as the only tests."""
    pytester.makepyprojecttoml((ROOT / "pyproject.toml").read_text())
    (pytester.path / "tests").mkdir()
    for helper in ("conftest.py", "catalogues.py"):
        (pytester.path / "tests" / helper).write_text((ROOT / "tests" / helper).read_text())
    (pytester.path / "tests" / "test_stuck.py").write_text(STUCK)
    started = time.monotonic()
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *options, timeout=120)
    return result, time.monotonic() - started


def test_a_test_stuck_past_its_timeout_stops_the_run_and_is_named(pytester):
    result, seconds = run_stuck_suite(pytester)
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "*TIMEOUT tests/test_stuck.py::test_stuck_in_a_finaliser ran past its 3 s timeout*",
        "*Stack of MainThread*",
        "*in test_stuck_in_a_finaliser*",
        "*gc.collect()*",
    ])  # fmt: skip
    assert seconds < 60  # not the hour a CI job would wait


def test_the_signal_method_would_let_that_test_pass(pytester):
    # why pyproject.toml chooses "thread": the exception the signal raises is swallowed by the
    # finaliser ("Exception ignored in ... __del__"), so the stuck test is reported as passed
    result, _ = run_stuck_suite(pytester, "-o", "timeout_method=signal")
    result.assert_outcomes(passed=3, warnings=1)
