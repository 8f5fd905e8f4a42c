"""The preallocated vectors file that encoding chunks and shards write into (ftstudy.row_file)."""

import numpy as np
import pytest

from ftstudy.row_file import done_blocks, mark_done, open_row_file, write_rows


def test_blocks_written_out_of_order_read_back_as_one_array(tmp_path):
    rng = np.random.default_rng(0)
    full = rng.standard_normal((10, 4)).astype(np.float32)
    path = open_row_file(tmp_path, (10, 4), "float32")
    for i, (lo, hi) in reversed(list(enumerate([(0, 4), (4, 8), (8, 10)]))):
        write_rows(path, lo, full[lo:hi])
        mark_done(tmp_path, i)
    np.testing.assert_array_equal(np.load(path), full)
    assert done_blocks(tmp_path) == {0, 1, 2}
    # a second opener (another shard job) gets the same file, its rows intact
    assert open_row_file(tmp_path, (10, 4), "float32") == path
    np.testing.assert_array_equal(np.load(path), full)


def test_rows_are_cast_to_the_file_dtype_and_bounds_are_checked(tmp_path):
    path = open_row_file(tmp_path, (3, 2), "float16")
    write_rows(path, 1, np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float32))
    got = np.load(path)
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got[1:], np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float16))
    np.testing.assert_array_equal(got[0], [0, 0])  # a row never written reads as zeros
    with pytest.raises(ValueError, match=r"cannot write \(2, 2\) at row 2 of \(3, 2\)"):
        write_rows(path, 2, np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"cannot write \(1, 3\)"):
        write_rows(path, 0, np.zeros((1, 3)))


def test_another_shape_is_an_error_and_markers_without_their_file_are_dropped(tmp_path):
    open_row_file(tmp_path, (4, 2), "float32")
    with pytest.raises(ValueError, match=r"vectors.npy: holds float32 \(4, 2\), expected float16 \(4, 2\)"):
        open_row_file(tmp_path, (4, 2), "float16")
    mark_done(tmp_path, 0)
    (tmp_path / "vectors.npy").unlink()  # e.g. moved into an output by a job killed before it cleaned up
    open_row_file(tmp_path, (4, 2), "float32")
    assert done_blocks(tmp_path) == set()  # its rows are gone, so the block is encoded again
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vectors.npy"]  # no temporary file left


def test_an_unwritten_file_takes_no_disk(tmp_path):
    path = open_row_file(tmp_path, (100_000, 384), "float32")  # 154 MB apparent size
    assert path.stat().st_size > 150e6
    assert path.stat().st_blocks * 512 < 1e6  # sparse: only blocks that are written take space
