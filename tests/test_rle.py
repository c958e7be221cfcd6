"""The Kaggle RLE codec: real strings, random masks, and every way a string can be wrong."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from steelscan.errors import RLEError
from steelscan.rle import decode_rle, encode_rle, rle_area

H, W = 256, 1600


# --- real data ------------------------------------------------------------------------------

def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def real_rles(shared_data):
    path = shared_data / "severstal" / "labels" / "train_rle_recovered.csv"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return _read_csv(path)


def test_real_strings_roundtrip_and_match_recorded_areas(real_rles, shared_data):
    areas = {r["ImageId"]: r for r in _read_csv(shared_data / "severstal" / "labels" / "image_level_all_train.csv")}
    assert len(real_rles) == 5336
    mismatched, wrong_area = [], []
    for row in real_rles:
        rle = row["EncodedPixels"]
        mask = decode_rle(rle, H, W)
        assert mask.shape == (H, W) and mask.dtype == np.uint8
        if encode_rle(mask) != rle:
            mismatched.append((row["ImageId"], row["ClassId"]))
        expected = int(areas[row["ImageId"]][f"area_class_{row['ClassId']}"])
        if int(mask.sum()) != expected or rle_area(rle, H, W) != expected:
            wrong_area.append((row["ImageId"], row["ClassId"], int(mask.sum()), expected))
    assert mismatched == []
    assert wrong_area == []


def test_real_strings_cover_every_class(real_rles):
    assert {r["ClassId"] for r in real_rles} == {"1", "2", "3", "4"}


# --- convention -----------------------------------------------------------------------------

def test_column_major_one_indexed():
    mask = decode_rle("1 2 6 1", 3, 2)  # pixels 1,2 = column 0 rows 0,1; pixel 6 = column 1 row 2
    np.testing.assert_array_equal(mask, [[1, 0], [1, 0], [0, 1]])
    assert encode_rle(mask) == "1 2 6 1"


def test_run_across_column_boundary():
    mask = decode_rle("3 2", 3, 2)  # last pixel of column 0, first of column 1
    np.testing.assert_array_equal(mask, [[0, 1], [0, 0], [1, 0]])


def test_full_and_empty_masks():
    assert encode_rle(np.ones((4, 5), np.uint8)) == "1 20"
    assert encode_rle(np.zeros((4, 5), bool)) == ""
    assert decode_rle("", 4, 5).sum() == 0
    assert decode_rle("   ", 4, 5).sum() == 0
    assert rle_area("", 4, 5) == 0


def test_touching_runs_decode_and_reencode_merged():
    mask = decode_rle("1 2 3 2", 5, 1)
    np.testing.assert_array_equal(mask[:, 0], [1, 1, 1, 1, 0])
    assert encode_rle(mask) == "1 4"


def test_decoded_mask_is_writable_and_independent():
    a = decode_rle("1 2", 2, 2)
    b = decode_rle("1 2", 2, 2)
    a[:] = 0
    assert b.sum() == 2


def test_encode_accepts_bool_and_integer_masks():
    m = np.array([[True, False], [True, True]])
    assert encode_rle(m) == encode_rle(m.astype(np.int64)) == encode_rle(m.astype(np.uint8)) == "1 2 4 1"


def test_encode_rejects_non_binary_and_non_2d():
    with pytest.raises(RLEError, match="0/1"):
        encode_rle(np.array([[0, 2]]))
    with pytest.raises(RLEError, match="0/1"):
        encode_rle(np.array([[0, -1]]))
    with pytest.raises(RLEError, match="2-D"):
        encode_rle(np.zeros((2, 2, 2), np.uint8))


# --- every error ----------------------------------------------------------------------------

@pytest.mark.parametrize("rle, pattern", [
    ("1 2 3", r"odd number of tokens \(3\)"),
    ("1 x", r"token 'x' is not an integer"),
    ("1.5 2", r"token '1.5' is not an integer"),
    ("1 99999999999999999999999", r"too large"),
    ("1 0", r"run 1 has length 0; lengths must be positive"),
    ("1 2 5 -1", r"run 2 has length -1"),
    ("0 1", r"run 1 starts at 0, outside 1..12"),
    ("-3 1", r"run 1 starts at -3, outside 1..12"),
    ("13 1", r"run 1 starts at 13, outside 1..12"),
    ("11 3", r"run 1 \(11 3\) runs past the end of the image \(12 pixels\)"),
    ("5 1 1 1", r"runs 1 and 2 are unsorted"),
    ("1 4 3 2", r"runs 1 and 2 are overlapping: run 2 starts at pixel 3, not after pixel 4"),
])
def test_every_error_is_an_rleerror_with_a_clear_message(rle, pattern):
    with pytest.raises(RLEError, match=pattern):
        decode_rle(rle, 3, 4)
    with pytest.raises(RLEError, match=pattern):
        rle_area(rle, 3, 4)


def test_rleerror_is_a_valueerror_and_non_strings_are_rejected():
    with pytest.raises(ValueError):
        decode_rle("1 0", 2, 2)
    with pytest.raises(RLEError, match="expected a string"):
        decode_rle(None, 2, 2)  # type: ignore[arg-type]
    with pytest.raises(RLEError, match="size must be positive"):
        decode_rle("", 0, 5)


def test_decoding_never_clips_to_a_smaller_image():
    rle = encode_rle(np.ones((256, 1600), np.uint8))
    with pytest.raises(RLEError, match="runs past the end"):
        decode_rle(rle, 128, 800)
    full = decode_rle("409600 1", 256, 1600)  # the very last pixel is fine...
    assert full[255, 1599] == 1 and full.sum() == 1
    with pytest.raises(RLEError, match="outside"):  # ...one more is not
        decode_rle("409601 1", 256, 1600)


# --- properties -----------------------------------------------------------------------------

shapes = st.tuples(st.integers(1, 40), st.integers(1, 40))
masks = shapes.flatmap(lambda s: arrays(np.uint8, s, elements=st.integers(0, 1)))


@settings(max_examples=300, deadline=None)
@given(masks)
def test_roundtrip_random_masks(mask):
    rle = encode_rle(mask)
    back = decode_rle(rle, *mask.shape)
    np.testing.assert_array_equal(back, mask)
    assert rle_area(rle, *mask.shape) == int(mask.sum())
    assert (rle == "") == (mask.sum() == 0)


@settings(max_examples=200, deadline=None)
@given(masks)
def test_encoding_is_canonical(mask):
    rle = encode_rle(mask)
    values = [int(v) for v in rle.split()]
    starts, lengths = values[0::2], values[1::2]
    assert all(length > 0 for length in lengths)
    # runs strictly ordered and never touching (touching runs would have been merged)
    assert all(starts[i + 1] > starts[i] + lengths[i] for i in range(len(starts) - 1))
    assert encode_rle(decode_rle(rle, *mask.shape)) == rle


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 300), st.integers(1, 300), st.floats(0.0, 1.0), st.integers(0, 2**32 - 1))
def test_roundtrip_random_sizes_and_densities(h, w, density, seed):
    rng = np.random.default_rng(seed)
    mask = (rng.random((h, w)) < density).astype(np.uint8)
    np.testing.assert_array_equal(decode_rle(encode_rle(mask), h, w), mask)


@settings(max_examples=100, deadline=None)
@given(shapes)
def test_empty_mask_is_empty_string_and_back(shape):
    assert encode_rle(np.zeros(shape, np.uint8)) == ""
    assert decode_rle("", *shape).shape == shape
    assert decode_rle("", *shape).sum() == 0
