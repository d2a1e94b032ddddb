"""How every target groups samples for bucketed batching: longest first, capped by count and by
padded frames."""
from porter.batching import bucket_batches


def test_batches_are_longest_first_and_capped_by_count():
    lengths = [50, 300, 120, 300, 80]
    assert bucket_batches(lengths, batch_size=2) == [[1, 3], [2, 4], [0]]


def test_a_frame_budget_gives_long_samples_smaller_batches():
    lengths = [100, 400, 390, 100, 110, 120, 90, 395]
    batches = bucket_batches(lengths, batch_size=16, max_batch_frames=800)
    # 2 x 400 fits and a third would make 1200; 390 pads the 120 beside it to 2 x 390; then 110 x 4 short ones
    assert batches == [[1, 7], [2, 5], [4, 0, 3, 6]]
    for batch in batches:
        assert len(batch) * max(lengths[i] for i in batch) <= 800
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))


def test_a_sample_longer_than_the_budget_runs_alone():
    assert bucket_batches([900, 100, 100], batch_size=8, max_batch_frames=500) == [[0], [1, 2]]


def test_no_budget_and_no_samples():
    assert bucket_batches([5, 5, 5], batch_size=8, max_batch_frames=0) == [[0, 1, 2]]
    assert bucket_batches([], batch_size=4) == []
