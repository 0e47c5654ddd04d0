import argparse
from pathlib import Path

import attrs
import pytest
from hypothesis import given, strategies as st

from miniheap.config import (
    BACKENDS,
    FIELD_NAMES,
    MAPPINGS,
    ConfigError,
    HeapConfig,
    MirrorSpec,
    add_arguments,
    cli_overrides,
    format_provenance,
    parse_gc_log,
)
from miniheap.sizes import MIB, TIB

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "configs"


def write(tmp_path, text, name="heap.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def one_line_error(**kwargs):
    with pytest.raises(ConfigError) as info:
        HeapConfig.load(**kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# ----------------------------------------------------------------- defaults and fields


def test_defaults():
    c = HeapConfig()
    assert (c.backend, c.mapping) == ("memfd", "none")
    assert (c.heap_size, c.young_size, c.region_size) == (64 * MIB, 16 * MIB, 2 * MIB)
    assert (c.survivor_ratio, c.tenuring_threshold, c.max_handles, c.color_bits) == (6, 7, 1 << 20, 42)
    assert c.mirrors == (MirrorSpec(None, False),)
    assert c.reserve_at is None and c.gc_log == "gc"


def test_derived_region_counts():
    c = HeapConfig()
    assert (c.region_count, c.young_regions, c.survivor_regions, c.eden_regions, c.old_regions) == (32, 8, 1, 6, 24)
    assert c.color_view_bases == (1 << 42, 1 << 43, 1 << 44)


def test_backend_names_are_the_registry_names():
    assert BACKENDS == ("shm-mremap", "anon-mremap", "memfd", "memfd-hugetlb")
    assert MAPPINGS == ("none", "colored", "young-mirror")
    for backend in BACKENDS:
        assert HeapConfig(backend=backend).backend == backend


def test_sizes_accept_strings():
    c = HeapConfig(heap_size="1G", young_size="256M", region_size="4M")
    assert (c.heap_size, c.young_size, c.region_size) == (1 << 30, 256 * MIB, 4 * MIB)


def test_is_frozen():
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        HeapConfig().heap_size = 1


# ----------------------------------------------------------------- single-field errors


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"backend": "memfdd"}, ["'memfdd'", "shm-mremap, anon-mremap, memfd, memfd-hugetlb", "did you mean 'memfd'"]),
        ({"mapping": "colour"}, ["'colour'", "none, colored, young-mirror"]),
        ({"backend": 3}, ["backend must be a string", "int"]),
        ({"heap_size": "64Q"}, ["heap_size", "'64Q'", "64M"]),
        ({"heap_size": "1.5G"}, ["heap_size", "1536M"]),
        ({"heap_size": True}, ["heap_size", "boolean"]),
        ({"region_size": "3M"}, ["region_size 3M", "power of two"]),
        ({"region_size": "32K"}, ["region_size 32K", "from 64K to 1G"]),
        ({"survivor_ratio": 0}, ["survivor_ratio 0", "allowed 1.."]),
        ({"survivor_ratio": "six"}, ["survivor_ratio 'six'", "whole number", "survivor_ratio = 6"]),
        ({"tenuring_threshold": 16}, ["tenuring_threshold 16", "0..15"]),
        ({"max_handles": 0}, ["max_handles 0"]),
        ({"color_bits": 45}, ["color_bits 45", "28..44"]),
        ({"color_bits": 27}, ["color_bits 27", "28..44"]),
        ({"reserve_at": "0x1001"}, ["reserve_at 0x1001", "page size"]),
        ({"reserve_at": "here"}, ["reserve_at 'here'", "hex"]),
        ({"gc_log": "gc+"}, ["gc_log 'gc+'", "gc*:file=PATH"]),
        ({"gc_log": "off:file=x.log"}, ["off", "drop ':file=...'"]),
        ({"gc_log": "gc:file="}, ["empty file name"]),
        ({"mirrors": "0x100000"}, ["ADDRESS:PROT", "0x100000:rw"]),
        ({"mirrors": "0x100000:x"}, ["protection 'x'", "r (read-only) or rw"]),
        ({"mirrors": "100000:r"}, ["address '100000'", "hex"]),
        ({"mirrors": "0x100001:r"}, ["not page aligned", "0x100000"]),
        ({"mirrors": "0x0:r"}, ["mmap_min_addr"]),
        ({"mirrors": 7}, ["mirrors must be a list"]),
        # inf passed the check (>= 0), then round(inf * 1000) raised OverflowError when the heap was built
        ({"gc_interval": float("inf")}, ["gc_interval inf", "from 0 to 86400"]),
        ({"gc_interval": "inf"}, ["gc_interval 'inf'", "gc_interval = 0.5"]),
        ({"gc_interval": 1e30}, ["gc_interval 1e+30", "from 0 to 86400"]),
        ({"gc_interval": "nan"}, ["gc_interval 'nan'"]),
    ],
)
def test_field_errors_say_what_is_wrong_and_allowed(kwargs, words):
    with pytest.raises(ConfigError) as info:
        HeapConfig(**kwargs)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message


# ----------------------------------------------------------------- cross-field errors


def test_colour_fit_error_text():
    with pytest.raises(ConfigError) as info:
        HeapConfig(mapping="colored", heap_size="4T", color_bits=42)
    assert str(info.value) == "heap_size 4T does not fit below the colour bit 42 (4T): lower heap_size or raise color_bits"
    assert info.value.fields == ("heap_size", "color_bits")


def test_colour_fit_only_matters_when_coloured():
    assert HeapConfig(heap_size="4T").heap_size == 4 * TIB
    assert HeapConfig(mapping="colored", heap_size="4T", color_bits=44).color_bits == 44
    # by default the bits follow the heap size as JDK 17's do: a 4T heap gets 44 (16T, 32T, 64T)
    assert HeapConfig(mapping="colored", heap_size="4T").color_bits == 44


def test_sizes_above_the_collectors_limit_are_refused_with_the_range():
    with pytest.raises(ConfigError) as info:
        HeapConfig(heap_size="8T")
    assert str(info.value) == ("heap_size 8T is out of range: allowed 1 region to 4T (the collector's limit); "
                               "set heap_size to 4T or less")


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"heap_size": "65M"}, ["heap_size 65M is not a multiple of region_size 2M", "64M or 66M"]),
        ({"heap_size": 64}, ["a bare number counts bytes"]),
        ({"young_size": "3M"}, ["young_size 3M", "2M or 4M"]),
        ({"young_size": "64M"}, ["leaves no old generation", "62M"]),
        ({"young_size": "4M"}, ["cannot hold eden plus two survivors", "raise young_size to 16M"]),
        ({"young_size": "6M"}, ["lower survivor_ratio to 1"]),
        # zgc's two reserve pages and one to allocate in: refused here, with the keys, not by the C heap
        ({"collector": "zgc", "heap_size": "128K", "region_size": "64K"}, ["holds 2 granule(s)", "at least 3",
                                                                         "raise heap_size to 192K"]),
        ({"collector": "zgc", "heap_size": "4M"}, ["holds 2 granule(s) of region_size 2M"]),
        ({"backend": "memfd-hugetlb", "region_size": "1M"}, ["memfd-hugetlb", "set region_size to 2M"]),
        ({"backend": "memfd-hugetlb", "reserve_at": "0x1000"}, ["not aligned to a 2M huge page", "0x200000"]),
        ({"reserve_at": "0x7fffff000000"}, ["beyond user space"]),
        ({"mapping": "colored", "reserve_at": "0x200000000000"}, ["reserve_at 0x200000000000 has no effect",
                                                                  "color_bits"]),
        ({"mapping": "young-mirror", "mirrors": ""}, ["needs at least one mirror"]),
        ({"mapping": "young-mirror", "mirrors": "0x100000:r,0x800000:rw"}, ["overlap", "0x1100000"]),
        ({"mapping": "young-mirror", "mirrors": "0x7ffffff00000:r"}, ["beyond user space"]),
    ],
)
def test_cross_field_errors(kwargs, words):
    with pytest.raises(ConfigError) as info:
        HeapConfig(**kwargs)
    for word in words:
        assert word in str(info.value)


def test_mirrors_parse_and_print():
    c = HeapConfig(mapping="young-mirror", mirrors=["0x100000:r", "auto:rw"])
    assert c.mirrors == (MirrorSpec(0x100000, False), MirrorSpec(None, True))
    assert [str(m) for m in c.mirrors] == ["0x100000:r", "auto:rw"]
    assert HeapConfig(mirrors="0x100000:r, auto:rw").mirrors == c.mirrors


def test_parse_gc_log():
    assert parse_gc_log("off") == ("off", None)
    assert parse_gc_log("gc*:file=/tmp/gc.log") == ("gc*", "/tmp/gc.log")
    c = HeapConfig(gc_log="gc:file=out.log")
    assert (c.gc_log_level, c.gc_log_file) == ("gc", "out.log")


# ----------------------------------------------------------------- loading and precedence


def test_precedence_default_file_env_cli(tmp_path):
    path = write(tmp_path, '[heap]\nheap_size = "128M"\nyoung_size = "32M"\nbackend = "shm-mremap"\nmapping = "colored"\n')
    env = {"MINIHEAP_YOUNG_SIZE": "24M", "MINIHEAP_BACKEND": "anon-mremap", "UNRELATED": "x"}
    loaded = HeapConfig.load(path, env=env, cli={"backend": "memfd-hugetlb"})
    c = loaded.config
    assert (c.heap_size, c.young_size, c.backend, c.mapping, c.region_size) == (128 * MIB, 24 * MIB, "memfd-hugetlb", "colored", 2 * MIB)
    assert loaded.source_of("region_size") == "default"
    assert loaded.source_of("heap_size") == f"file:{path}"
    assert loaded.source_of("mapping") == f"file:{path}"
    assert loaded.source_of("young_size") == "env:MINIHEAP_YOUNG_SIZE"
    assert loaded.source_of("backend") == "cli:--backend"


def test_env_only_and_mirrors_comma_separated():
    env = {"MINIHEAP_MAPPING": "young-mirror", "MINIHEAP_MIRRORS": "0x100000:r,auto:rw", "MINIHEAP_RESERVE_AT": "0x200000000000"}
    c = HeapConfig.load(env=env).config
    assert c.mirrors == (MirrorSpec(0x100000, False), MirrorSpec(None, True))
    assert c.reserve_at == 0x200000000000


def test_empty_env_variable_counts_as_unset():
    loaded = HeapConfig.load(env={"MINIHEAP_BACKEND": ""})
    assert loaded.config.backend == "memfd" and loaded.source_of("backend") == "default"


def test_config_file_from_environment(tmp_path):
    path = write(tmp_path, '[heap]\nbackend = "anon-mremap"\n')
    assert HeapConfig.load(env={"MINIHEAP_CONFIG": str(path)}).config.backend == "anon-mremap"


def test_source_of_unknown_field():
    with pytest.raises(ConfigError, match="did you mean 'heap_size'"):
        HeapConfig.load(env={}).source_of("heap_szie")


def test_describe_table(tmp_path):
    path = write(tmp_path, '[heap]\nheap_size = "128M"\n')
    loaded = HeapConfig.load(path, env={"MINIHEAP_GC_LOG": "gc*"}, cli={"tenuring_threshold": "3"})
    table = format_provenance(loaded)
    lines = table.splitlines()
    assert lines[0].split() == ["key", "value", "source"]
    assert len(lines) == 1 + len(FIELD_NAMES)
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert rows["heap_size"] == ["128M", f"file:{path}"]
    assert rows["gc_log"] == ["gc*", "env:MINIHEAP_GC_LOG"]
    assert rows["tenuring_threshold"] == ["3", "cli:--tenuring-threshold"]
    assert rows["backend"] == ["memfd", "default"]
    # aligned: every row's value and source start under their headers
    value_column, source_column = lines[0].index("value"), lines[0].index("source")
    for line in lines[1:]:
        assert line[value_column - 1] == " " and line[value_column] != " "
        assert line[source_column - 1] == " " and line[source_column] != " "


def test_to_toml_round_trips(tmp_path):
    c = HeapConfig(mapping="young-mirror", mirrors=["0x100000:r", "auto:rw"], reserve_at="0x200000000000", heap_size="1G", young_size="256M", gc_log="gc*:file=x.log")
    path = write(tmp_path, c.to_toml())
    assert HeapConfig.load(path, env={}).config == c


# ----------------------------------------------------------------- load errors name their source


def test_toml_syntax_error_names_file_line_and_column(tmp_path):
    path = write(tmp_path, '[heap]\nbackend = "memfd"\nheap_size = 64M\n')
    message = one_line_error(path=path, env={})
    assert f"{path}:3:" in message and "line 3" in message and "TOML syntax error" in message
    assert 'heap_size = "64M"' in message  # shows the fix


def test_missing_file(tmp_path):
    message = one_line_error(path=tmp_path / "nope.toml", env={})
    assert "nope.toml does not exist" in message


def test_not_utf8(tmp_path):
    path = tmp_path / "bin.toml"
    path.write_bytes(b"[heap]\nbackend = \"\xff\"\n")
    assert "not UTF-8" in one_line_error(path=path, env={})


def test_unknown_key_lists_valid_keys_and_suggests(tmp_path):
    path = write(tmp_path, '[heap]\nheap_szie = "64M"\n')
    message = one_line_error(path=path, env={})
    assert f"{path} [heap] heap_szie: unknown key" in message
    assert "backend, collector, mapping, heap_size" in message
    assert "did you mean 'heap_size'?" in message


def test_top_level_key_is_explained(tmp_path):
    path = write(tmp_path, 'heap_size = "64M"\n')
    assert "put a [heap] line above it" in one_line_error(path=path, env={})


def test_unknown_table(tmp_path):
    path = write(tmp_path, '[haep]\nheap_size = "64M"\n')
    assert "did you mean 'heap'" in one_line_error(path=path, env={})


def test_wrong_type_in_file_names_file_and_key(tmp_path):
    path = write(tmp_path, '[heap]\nsurvivor_ratio = 1.5\n')
    message = one_line_error(path=path, env={})
    assert message.startswith(f"{path} [heap] survivor_ratio: survivor_ratio 1.5 is not a whole number (float)")


def test_bad_size_in_env_names_the_variable():
    message = one_line_error(env={"MINIHEAP_HEAP_SIZE": "64X"})
    assert message.startswith("environment variable MINIHEAP_HEAP_SIZE: heap_size '64X' is not a size")


def test_out_of_range_on_cli_names_the_flag():
    message = one_line_error(env={}, cli={"tenuring_threshold": "20"})
    assert message.startswith("flag --tenuring-threshold: tenuring_threshold 20 is out of range: allowed 0..15")


def test_cross_field_error_names_every_source(tmp_path):
    path = write(tmp_path, '[heap]\nmapping = "colored"\ncolor_bits = 42\n')
    message = one_line_error(path=path, env={"MINIHEAP_HEAP_SIZE": "4T"})
    assert message == (
        f"environment variable MINIHEAP_HEAP_SIZE and {path} [heap] color_bits: "
        "heap_size 4T does not fit below the colour bit 42 (4T): lower heap_size or raise color_bits"
    )


def test_cross_field_error_from_two_sources(tmp_path):
    path = write(tmp_path, '[heap]\nheap_size = "64M"\n')
    message = one_line_error(path=path, env={}, cli={"young_size": "64M"})
    assert message.startswith(f"flag --young-size and {path} [heap] heap_size: young_size 64M leaves no old generation")


def test_unknown_cli_override():
    assert "did you mean 'backend'" in one_line_error(env={}, cli={"backnd": "memfd"})


# ----------------------------------------------------------------- argparse


def test_add_arguments_and_cli_overrides(tmp_path):
    path = write(tmp_path, '[heap]\nbackend = "shm-mremap"\n')
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    ns = parser.parse_args(["--config", str(path), "--heap-size", "128M", "--mapping", "colored", "--mirrors", "auto:rw"])
    assert cli_overrides(ns) == {"heap_size": "128M", "mapping": "colored", "mirrors": "auto:rw"}
    loaded = HeapConfig.from_args(ns, env={"MINIHEAP_HEAP_SIZE": "32M"})
    assert loaded.config.heap_size == 128 * MIB
    assert loaded.config.backend == "shm-mremap"
    assert loaded.source_of("heap_size") == "cli:--heap-size"
    help_text = parser.format_help()
    for name in FIELD_NAMES:
        assert "--" + name.replace("_", "-") in help_text
    assert "(default: 64M)" in help_text


def test_namespace_accepted_directly():
    parser = argparse.ArgumentParser()
    add_arguments(parser, config_flag=False)
    ns = parser.parse_args(["--gc-log", "off"])
    assert HeapConfig.load(env={}, cli=ns).config.gc_log == "off"


# ----------------------------------------------------------------- shipped examples


EXAMPLE_FILES = sorted(EXAMPLES.glob("*.toml"))


def test_every_backend_and_layout_has_an_example():
    names = {p.stem for p in EXAMPLE_FILES}
    assert set(BACKENDS) <= names
    assert {"colored", "young-mirror"} <= names


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_shipped_example_loads(path):
    loaded = HeapConfig.load(path, env={})
    c = loaded.config
    if path.stem in BACKENDS:
        assert c.backend == path.stem
    if path.stem in MAPPINGS:
        assert c.mapping == path.stem
    assert "# " in path.read_text()  # examples teach with comments
    assert loaded.source_of("backend") in ("default", f"file:{path}")


def test_young_mirror_example_is_dosemus_address():
    c = HeapConfig.load(EXAMPLES / "young-mirror.toml", env={}).config
    assert c.mirrors == (MirrorSpec(0x100000, False),)


# ----------------------------------------------------------------- properties


@given(
    region_shift=st.integers(16, 24),
    young_regions=st.integers(3, 64),
    old_regions=st.integers(1, 64),
    ratio=st.integers(1, 20),
)
def test_consistent_layouts_are_accepted(region_shift, young_regions, old_regions, ratio):
    region = 1 << region_shift
    if young_regions // (ratio + 2) < 1:
        with pytest.raises(ConfigError, match="eden plus two survivors"):
            HeapConfig(region_size=region, young_size=young_regions * region, heap_size=(young_regions + old_regions) * region, survivor_ratio=ratio)
        return
    c = HeapConfig(region_size=region, young_size=young_regions * region, heap_size=(young_regions + old_regions) * region, survivor_ratio=ratio)
    assert c.eden_regions + 2 * c.survivor_regions == c.young_regions
    assert c.eden_regions >= c.survivor_ratio * c.survivor_regions
    assert c.old_regions == old_regions
