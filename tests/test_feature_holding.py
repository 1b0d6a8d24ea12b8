"""Ended flows held and computed together (FlowPlugin.hold/drain), across captures: the same rows as computing
them at each expiry, in the same order, each named by its capture, with every feature row given back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.extract.plugin import FeaturePlugin
from features.reader import FlowReader

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = sorted((ROOT / "pcaps" / "lab").glob("*.pcap*"))[::40] + [ROOT / "pcaps" / "demo" / "mixed-vpn-proxy-https.pcap.gz"]


def _read(hold_limit, **options):
    plugin = FeaturePlugin(hold_limit=hold_limit)
    reader = FlowReader(CAPTURES, plugins=[plugin], on_error="collect", **options)
    batches = list(reader)
    return batches, plugin


@pytest.mark.parametrize("batch_size,threads", [(37, 1), (4096, 1), (37, 2), (4096, 2)])
def test_held_flows_come_out_as_computed_at_each_expiry(batch_size, threads):
    if len(CAPTURES) < 3:
        pytest.skip("the lab captures are not here")
    at_expiry, _ = _read(0, batch_size=batch_size)
    for limit in (1, 5, 4096):
        held, plugin = _read(limit, batch_size=batch_size, threads=threads)
        expected = pd.concat([b.to_pandas() for b in at_expiry], ignore_index=True)
        got = pd.concat([b.to_pandas() for b in held], ignore_index=True)
        pd.testing.assert_frame_equal(got, expected)
        state = plugin.state
        assert state.held == 0 and int(state.free_top[0]) == state.capacity   # every feature row given back
    assert len(held) < len(at_expiry)


def test_held_flows_are_drained_at_the_limit_in_the_same_batches_with_one_or_two_threads():
    if len(CAPTURES) < 3:
        pytest.skip("the lab captures are not here")
    limit = 4
    batches, _ = _read(limit, batch_size=16, threads=1)
    sizes = [batch.num_rows for batch in batches]
    # Drained as soon as `limit` flows are held, whichever captures they come from, and at the end whatever is
    # left in chunks of `limit`; so a batch holds flows of several small captures.
    assert all(n >= limit for n in sizes[:-1]) and 0 < sizes[-1] <= limit
    assert [batch.num_rows for batch in _read(limit, batch_size=16, threads=2)[0]] == sizes
    captures = [set(b.column("capture").to_pylist()) for b in batches]
    assert any(len(names) > 1 for names in captures)
    assert set().union(*captures) == {str(path) for path in CAPTURES}


def _taken_rows_unaccounted(state):
    """Feature rows neither free, nor of an open flow, nor held: rows lost (e.g. taken by a drain never released)."""
    return state.capacity - int(state.free_top[0]) - state.held - int((state.row_of >= 0).sum())


class _Failing(FeaturePlugin):
    def compute(self, taken):
        raise RuntimeError("compute failed")


def test_a_reader_stopped_early_or_failing_in_its_worker_gives_every_feature_row_back():
    if len(CAPTURES) < 3:
        pytest.skip("the lab captures are not here")
    plugin = FeaturePlugin(hold_limit=3)
    reader = iter(FlowReader(CAPTURES, plugins=[plugin], on_error="collect", threads=2))
    first = next(reader)
    reader.close()                          # the worker's batch in flight is waited for and dropped
    assert first.num_rows >= 3
    assert _taken_rows_unaccounted(plugin.state) == 0
    failing = _Failing(hold_limit=3)
    with pytest.raises(RuntimeError, match="compute failed"):
        list(FlowReader(CAPTURES, plugins=[failing], on_error="collect", threads=2))
    assert _taken_rows_unaccounted(failing.state) == 0


def test_rows_are_gathered_as_numpy_indexes_them():
    from features import native
    rng = np.random.default_rng(3)
    for shape, dtype in (((50, 3, 7), np.int32), ((50, 9), np.float64), ((50,), np.int8), ((50, 2048), np.uint8)):
        array = rng.integers(0, 255, int(np.prod(shape)) * np.dtype(dtype).itemsize, dtype=np.uint8).view(dtype).reshape(shape)
        rows = rng.integers(0, 50, 37)
        assert native.gather_rows(array, rows).tobytes() == array[rows].tobytes()
        assert native.gather_rows(array, rows[:0]).shape == (0,) + shape[1:]
    with pytest.raises(IndexError):
        native.gather_rows(np.zeros((4, 2)), np.array([4]))
