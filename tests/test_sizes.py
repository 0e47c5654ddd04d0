import pytest
from hypothesis import given, strategies as st

from miniheap.sizes import GIB, KIB, MAX_SIZE, MIB, TIB, format_bytes_human, format_size, parse_size


@pytest.mark.parametrize(
    "text, expected",
    [
        ("64M", 64 * MIB),
        ("64m", 64 * MIB),
        ("64MiB", 64 * MIB),
        ("64mib", 64 * MIB),
        ("2G", 2 * GIB),
        ("512K", 512 * KIB),
        ("4096", 4096),
        ("4096B", 4096),
        ("1T", TIB),
        (" 8M ", 8 * MIB),
        ("1_024K", MIB),
        ("0", 0),
        (12345, 12345),
    ],
)
def test_parse_size_accepts(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "bad, words",
    [
        ("-1M", "negative"),
        (-4096, "negative"),
        ("1.5G", "fractions"),
        (1.5, "float"),
        ("", "empty"),
        ("   ", "empty"),
        ("lots", "digits"),
        ("64Q", "digits"),
        ("64MB", "ambiguous"),
        ("64iB", "unit letter"),
        (True, "boolean"),
        (None, "NoneType"),
        (str(1 << 70), "64 bits"),
    ],
)
def test_parse_size_rejects_with_a_helpful_message(bad, words):
    with pytest.raises(ValueError) as info:
        parse_size(bad)
    message = str(info.value)
    assert words in message
    assert repr(bad) in message  # names the value
    assert "64M" in message and "2G" in message  # shows allowed forms


@pytest.mark.parametrize(
    "n, text",
    [
        (64 * MIB, "64M"),
        (3 * GIB // 2, "1.5G"),
        (512 * KIB, "512K"),
        (100, "100B"),
        (0, "0B"),
        (TIB * 4, "4T"),
        (-12 * MIB, "-12M"),
        (MIB + 1, "1.0M"),
    ],
)
def test_format_size(n, text):
    assert format_size(n) == text


@given(st.integers(min_value=0, max_value=MAX_SIZE))
def test_exact_format_round_trips(n):
    text = format_size(n)
    if "." not in text:
        assert parse_size(text) == n


@pytest.mark.parametrize(
    "n, text",
    [
        (64 * MIB, "64 MiB"),
        (3 * GIB // 2, "1.5 GiB"),
        (100, "100 bytes"),
        (1, "1 byte"),
        (int(12.34 * KIB), "12.3 KiB"),
        (-2 * MIB, "-2 MiB"),
        (250 * MIB, "250 MiB"),
    ],
)
def test_format_bytes_human(n, text):
    assert format_bytes_human(n) == text
