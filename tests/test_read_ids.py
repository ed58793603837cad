"""The ids a run read, kept compactly for forgetting the orders the ERP no longer has (issue 25
item 19: a set of the strings held ~100 bytes an order, 10 MB of a 100,000-order run's peak)."""

from __future__ import annotations

import resource

from hypothesis import given, settings
from hypothesis import strategies as st

from order_export_tui.engine.batches import ReadIds

_IDS = st.text(alphabet="ABCSO-0123456789./_", min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    batches=st.lists(st.lists(_IDS, max_size=30), max_size=40),
    others=st.lists(_IDS),
    run_size=st.sampled_from([1, 2, 7, 30, 1 << 16]),
)
def test_every_id_read_is_known_and_no_other(
    batches: list[list[str]], others: list[str], run_size: int
) -> None:
    read = ReadIds(run_size)
    for batch in batches:
        read.update(batch)
    everything = {order_id for batch in batches for order_id in batch}
    assert all(order_id in read for order_id in everything)
    assert not any(order_id in read for order_id in set(others) - everything)
    assert len(read) == sum(map(len, batches))


@settings(max_examples=100, deadline=None)
@given(batches=st.lists(st.lists(_IDS, max_size=30), max_size=20), run_size=st.integers(1, 40))
def test_ids_read_after_a_lookup_are_known_too(batches: list[list[str]], run_size: int) -> None:
    read = ReadIds(run_size)
    seen: set[str] = set()
    added = 0
    for batch in batches:
        read.update(batch)
        seen.update(batch)
        added += len(batch)
        assert all(order_id in read for order_id in seen)
        assert len(read) == added


def test_a_million_ids_take_a_few_megabytes() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    read = ReadIds()
    for start in range(0, 1_000_000, 100):
        read.update(f"SO-{number}" for number in range(start, start + 100))
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert "SO-0" in read and "SO-999999" in read and "SO-1000000" not in read
    assert grown_mb < 40  # a set of the strings: ~100 MB
