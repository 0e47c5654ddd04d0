"""HeapConfig: every knob of a miniheap heap, validated, with where each value came from.

Values are layered, lowest to highest precedence:

    defaults  <  TOML file ([heap] table)  <  environment (MINIHEAP_*)  <  command-line flags

`HeapConfig(...)` checks a configuration; `HeapConfig.load(...)` builds one from
those layers and remembers the source of every field, so an error (or
`describe()`) can say "this came from MINIHEAP_HEAP_SIZE" instead of leaving
the reader to guess. Every error is a ConfigError: one line naming the source,
the bad value, what is allowed, and how to fix it.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs
from attrs import field, frozen

from miniheap.sizes import GIB, MIB, KIB, TIB, format_size, parse_size

# Names shared with the miniheap.backends registry: keep the two in step.
BACKENDS = ("shm-mremap", "anon-mremap", "memfd", "memfd-hugetlb")
MAPPINGS = ("none", "colored", "young-mirror")
# The collectors: "serial" (generational, stop-the-world, SerialGC's shape) with one view or young
# mirrors; "zgc" (concurrent, JDK 17's ZGC) with coloured pointers, either in three views (mapping
# "colored", JDK 11-23) or in one view with the colour in the pointer's low bits (mapping "none", the
# layout of JDK 21+'s generational ZGC). A field left unset follows the other: mapping = "colored"
# means the zgc collector, collector = "zgc" alone means the three coloured views.
COLLECTORS = ("serial", "zgc")
# JDK 17's ZGC granule is 2 MiB; miniheap takes region_size as zgc's granule, up to this.
ZGC_MAX_GRANULE = 8 * MIB
# The JDK's -Xlog selectors for GC lines (gc=info and gc*=info are gc and gc*), and off.
GC_LOG_LEVELS = ("off", "gc", "gc*", "gc*=debug", "gc*=trace", "gc=debug", "gc=trace")

PAGE_SIZE = 4096
# Smallest region: below this, per-region metadata outweighs the region.
MIN_REGION_SIZE = 64 * KIB
# The C core's limits (miniheap.h: MH_MAX_HEAP_SIZE, MH_MAX_REGION_SIZE, MH_MAX_HANDLES; a test
# checks that these agree). They are named in --help and docs/configuration.md.
MAX_HEAP_SIZE = 4 * TIB
MAX_REGION_SIZE = 1 * GIB
MAX_HANDLES = 1 << 26
# gc_interval goes to C in milliseconds, a uint32 (about 49 days): a day is far beyond any use
MAX_SECONDS = 86400
# memfd-hugetlb maps whole huge pages, so regions and fixed addresses must align to one.
HUGE_PAGE_SIZE = 2 * MIB
# x86-64 user space ends at 128 TiB (47 bits) with 4-level page tables.
USER_ADDRESS_LIMIT = 1 << 47
# 42 to 44 are ZGC's (JDK 17 picks one from the heap size, color_bits_for); as low as 28 (views at 256M, 512M, 1G) for a heap under 256M, which is where the
# views must go in a process run under AddressSanitizer, whose shadow memory covers 4T to 16T.
COLOR_BITS_RANGE = (28, 44)
MAX_TENURING_THRESHOLD = 15  # the object header keeps the age in 4 bits
ENV_PREFIX = "MINIHEAP_"
CONFIG_ENV = "MINIHEAP_CONFIG"  # a TOML file to read when load() gets no path
TOML_TABLE = "heap"


class ConfigError(ValueError):
    """A configuration value is wrong. The message is one line: where, what, allowed, fix."""

    def __init__(self, problem: str, fields: tuple[str, ...] = (), where: str = ""):
        self.problem = " ".join(problem.split("\n"))
        self.fields = fields
        self.where = where
        super().__init__(f"{where}: {self.problem}" if where else self.problem)

    def located(self, where: str) -> ConfigError:
        return ConfigError(self.problem, self.fields, where)


def _suggest(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _type_name(value: object) -> str:
    return type(value).__name__


# --------------------------------------------------------------------------- mirrors


@frozen
class MirrorSpec:
    """One extra view of the young generation: where (None = kernel's choice) and whether writable."""

    address: int | None
    writable: bool

    FORM = "ADDRESS:PROT where ADDRESS is auto or hex like 0x100000 and PROT is r or rw"

    @classmethod
    def parse(cls, text: str) -> MirrorSpec:
        if not isinstance(text, str):
            raise ConfigError(f"mirrors entry {text!r} is a {_type_name(text)}: write a string, {cls.FORM}", ("mirrors",))
        parts = text.strip().split(":")
        if len(parts) != 2:
            raise ConfigError(f"mirrors entry {text!r} is not {cls.FORM} (e.g. auto:r, 0x100000:rw)", ("mirrors",))
        address_text, prot = (p.strip().lower() for p in parts)
        if prot not in ("r", "rw"):
            raise ConfigError(f"mirrors entry {text!r} has protection {prot!r}: allowed are r (read-only) or rw", ("mirrors",))
        return cls(_mirror_address(text, address_text), prot == "rw")

    def __str__(self) -> str:
        where = "auto" if self.address is None else hex(self.address)
        return f"{where}:{'rw' if self.writable else 'r'}"


def _mirror_address(text: str, address_text: str) -> int | None:
    if address_text == "auto":
        return None
    if not re.fullmatch(r"0x[0-9a-f]+", address_text):
        raise ConfigError(f"mirrors entry {text!r} has address {address_text!r}: write auto or a hex address such as 0x100000", ("mirrors",))
    address = int(address_text, 16)
    if address == 0:
        raise ConfigError(f"mirrors entry {text!r}: address 0x0 cannot be mapped (it is below vm.mmap_min_addr); use auto or e.g. 0x100000", ("mirrors",))
    if address % PAGE_SIZE:
        raise ConfigError(
            f"mirrors entry {text!r}: address {address:#x} is not page aligned; use a multiple of {PAGE_SIZE:#x}, "
            f"e.g. {address - address % PAGE_SIZE:#x}",
            ("mirrors",),
        )
    return address


def _to_mirrors(value: object) -> tuple[MirrorSpec, ...]:
    # A string is a comma-separated list, so env vars and flags can carry several mirrors.
    if isinstance(value, str):
        items = [item for item in value.split(",") if item.strip()]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ConfigError(
            f"mirrors must be a list of strings like [\"auto:r\", \"0x100000:rw\"] (or one comma-separated string), got {_type_name(value)} {value!r}",
            ("mirrors",),
        )
    return tuple(item if isinstance(item, MirrorSpec) else MirrorSpec.parse(item) for item in items)


# --------------------------------------------------------------------------- converters


_SIZE_RANGES = {"heap_size": "1 region to 4T", "young_size": "3 regions to 4T", "region_size": "64K to 1G"}


def _to_size(name: str):
    def convert(value: object) -> int:
        try:
            return parse_size(value)  # type: ignore[arg-type]
        except ValueError as error:
            allowed = f" ({name} allows {_SIZE_RANGES[name]})" if name in _SIZE_RANGES else ""
            raise ConfigError(f"{name} {error}{allowed}", (name,)) from None

    return convert


def _to_int(name: str, example: int):
    def convert(value: object) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9][0-9_]*\s*", value):
            return int(value)
        raise ConfigError(f"{name} {value!r} is not a whole number ({_type_name(value)}): write digits, e.g. {name} = {example}", (name,))

    return convert


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _to_bool(name: str):
    def convert(value: object) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise ConfigError(f"{name} {value!r} is not a boolean ({_type_name(value)}): write true or false, "
                          f"e.g. {name} = true", (name,))

    return convert


def _to_seconds(name: str):
    def convert(value: object) -> float:
        if isinstance(value, bool):
            pass
        elif isinstance(value, (int, float)) and 0 <= value <= MAX_SECONDS:
            return float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip().removesuffix("s"))
            except ValueError:
                number = -1.0
            if 0 <= number <= MAX_SECONDS:  # (nan and inf are neither)
                return number
        raise ConfigError(f"{name} {value!r} is not a number of seconds from 0 to {MAX_SECONDS}: write e.g. "
                          f"{name} = 0.5 (or 0 for off)", (name,))

    return convert


def _to_address(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("", "none", "auto"):
            return None
        if re.fullmatch(r"0x[0-9a-f]+|[0-9]+", text):
            return int(text, 0)
    raise ConfigError(f"reserve_at {value!r} is not an address: write none (the kernel chooses) or hex such as 0x200000000000", ("reserve_at",))


def _to_str(name: str, example: str):
    def convert(value: object) -> str:
        if isinstance(value, str):
            return value.strip()
        raise ConfigError(f"{name} must be a string such as {example!r}, got {_type_name(value)} {value!r}", (name,))

    return convert


# --------------------------------------------------------------------------- validators


def _one_of(allowed: tuple[str, ...], unset_ok: bool = False):
    def check(instance: object, attribute: attrs.Attribute, value: str) -> None:
        if value is None and unset_ok:
            return  # resolved from the other fields after validation (__attrs_post_init__)
        if value not in allowed:
            raise ConfigError(
                f"{attribute.name} {value!r} is not one of {', '.join(allowed)}{_suggest(value, allowed)}",
                (attribute.name,),
            )

    return check


def _in_range(low: int, high: int, why: str = ""):
    def check(instance: object, attribute: attrs.Attribute, value: int) -> None:
        if not low <= value <= high:
            reason = f" ({why})" if why else ""
            raise ConfigError(
                f"{attribute.name} {value} is out of range: allowed {low}..{high}{reason}; set {attribute.name} within it",
                (attribute.name,),
            )

    return check


def _check_region_size(instance: object, attribute: attrs.Attribute, value: int) -> None:
    if value < MIN_REGION_SIZE or value > MAX_REGION_SIZE or value & (value - 1):
        raise ConfigError(
            f"region_size {format_size(value)} must be a power of two from {format_size(MIN_REGION_SIZE)} to "
            f"{format_size(MAX_REGION_SIZE)}: use e.g. 64K, 1M or 2M (2M matches a huge page)",
            ("region_size",),
        )


def _check_positive_size(instance: object, attribute: attrs.Attribute, value: int) -> None:
    if value <= 0:
        raise ConfigError(f"{attribute.name} is 0: give a positive size such as 64M", (attribute.name,))
    if value > MAX_HEAP_SIZE:
        raise ConfigError(
            f"{attribute.name} {format_size(value)} is out of range: allowed 1 region to {format_size(MAX_HEAP_SIZE)} "
            f"(the collector's limit); set {attribute.name} to {format_size(MAX_HEAP_SIZE)} or less",
            (attribute.name,),
        )


def _check_gc_log(instance: object, attribute: attrs.Attribute, value: str) -> None:
    parse_gc_log(value)


def _check_reserve_at(instance: object, attribute: attrs.Attribute, value: int | None) -> None:
    if value is not None and (value <= 0 or value % PAGE_SIZE):
        raise ConfigError(
            f"reserve_at {value:#x} must be a positive multiple of the page size {PAGE_SIZE:#x}: e.g. 0x200000000000, or none",
            ("reserve_at",),
        )


_GC_LOG_RE = re.compile(r"(?P<level>off|gc\*?(?:=(?:info|debug|trace))?)(?::file=(?P<path>.*))?")


def parse_gc_log(spec: str) -> tuple[str, str | None]:
    """Split a gc_log value into (level, file path or None); "gc*:file=gc.log" -> ("gc*", "gc.log")."""
    match = _GC_LOG_RE.fullmatch(spec)
    allowed = "off, gc, gc*, gc*=debug, gc*=trace, each with :file=PATH if wanted (as the JDK's -Xlog:gc*:file=PATH)"
    if match is None:
        raise ConfigError(f"gc_log {spec!r} is not a log setting: allowed are {allowed}", ("gc_log",))
    path = match["path"]
    if path is not None and match["level"] == "off":
        raise ConfigError(f"gc_log {spec!r} turns logging off but names a file: drop ':file=...' or use gc:file=PATH", ("gc_log",))
    if path is not None and not path.strip():
        raise ConfigError(f"gc_log {spec!r} has an empty file name: write e.g. gc:file=gc.log", ("gc_log",))
    # gc=info is gc, as in the JDK: info is the default level.
    return match["level"].removesuffix("=info"), path


# --------------------------------------------------------------------------- the configuration


def _meta(help_text: str, metavar: str) -> dict:
    return {"help": help_text, "metavar": metavar}


@frozen
class HeapConfig:
    """A complete, consistent heap configuration. Build one directly or with HeapConfig.load()."""

    backend: str = field(
        default="memfd",
        converter=_to_str("backend", "memfd"),
        validator=_one_of(BACKENDS),
        metadata=_meta("where physical pages come from and how a second view is made", "|".join(BACKENDS)),
    )
    collector: str = field(
        default=None,
        converter=attrs.converters.optional(_to_str("collector", "serial")),
        validator=_one_of(COLLECTORS, unset_ok=True),
        metadata=_meta("serial: generational, every collection a pause (SerialGC's shape); zgc: concurrent mark and "
                       "relocation on a GC thread (JDK 17's ZGC), with mapping colored (three views) or none (one view, "
                       "the colour in the pointer's low 16 bits, as JDK 21+); when not given: zgc if mapping is colored",
                       "|".join(COLLECTORS)),
    )
    mapping: str = field(
        default=None,
        converter=attrs.converters.optional(_to_str("mapping", "none")),
        validator=_one_of(MAPPINGS, unset_ok=True),
        metadata=_meta("views of the heap: one (with zgc: the colour in the pointer's low bits, JDK 21+), three "
                       "coloured (ZGC, JDK 11-23), or extra young-generation mirrors (serial); when not given: "
                       "colored if collector is zgc", "|".join(MAPPINGS)),
    )
    heap_size: int = field(
        default=64 * MIB,
        converter=_to_size("heap_size"),
        validator=_check_positive_size,
        metadata=_meta(f"whole heap (young + old), a multiple of region_size, at most {format_size(MAX_HEAP_SIZE)}", "SIZE"),
    )
    young_size: int = field(
        default=16 * MIB,
        converter=_to_size("young_size"),
        validator=_check_positive_size,
        metadata=_meta("young generation: eden + two survivors, a multiple of region_size", "SIZE"),
    )
    region_size: int = field(
        default=2 * MIB,
        converter=_to_size("region_size"),
        validator=_check_region_size,
        metadata=_meta(f"granule of mapping and collection: a power of two, {format_size(MIN_REGION_SIZE)} to {format_size(MAX_REGION_SIZE)}", "SIZE"),
    )
    survivor_ratio: int = field(
        default=6,
        converter=_to_int("survivor_ratio", 6),
        validator=_in_range(1, 1 << 20, "eden is this many times one survivor"),
        metadata=_meta("eden : one survivor space, as -XX:SurvivorRatio", "N"),
    )
    tenuring_threshold: int = field(
        default=7,
        converter=_to_int("tenuring_threshold", 7),
        validator=_in_range(0, MAX_TENURING_THRESHOLD, "the age field has 4 bits"),
        metadata=_meta("promote objects that survived this many young collections, as -XX:MaxTenuringThreshold", "0..15"),
    )
    max_handles: int = field(
        default=1 << 20,
        converter=_to_int("max_handles", 1 << 20),
        validator=_in_range(1, MAX_HANDLES, "the collector's handle table limit"),
        metadata=_meta(f"size of the handle table (the roots), 1..{MAX_HANDLES}", "N"),
    )
    color_bits: int = field(
        default=None,
        converter=attrs.converters.optional(_to_int("color_bits", 42)),
        validator=attrs.validators.optional(_in_range(*COLOR_BITS_RANGE, "the three views need bits color_bits..color_bits+2 below 2^47")),
        metadata=_meta("zgc: Marked0 view at 1<<N, Marked1 at 1<<N+1, Remapped at 1<<N+2 (mapping colored), or the "
                       "one view at 1<<N (mapping none); default as JDK 17 (42 for heaps up to 256G, 43, 44 above)",
                       "28..44"),
    )
    mirrors: tuple[MirrorSpec, ...] = field(
        default=("auto:r",),
        converter=_to_mirrors,
        metadata=_meta("young-mirror mapping: extra views, each ADDRESS:PROT (auto|0xHEX : r|rw)", "A:P[,A:P...]"),
    )
    reserve_at: int | None = field(
        default=None,
        converter=_to_address,
        validator=_check_reserve_at,
        metadata=_meta("address of the heap's reservation (hex), or none for the kernel's choice", "ADDR"),
    )
    pretouch: bool = field(
        default=False,
        converter=_to_bool("pretouch"),
        metadata=_meta("commit and touch the whole heap at creation and never give memory back, like the "
                       "JDK's -XX:+AlwaysPreTouch: no page faults or commits inside pauses", "true|false"),
    )
    verify_views: bool = field(
        default=False,
        converter=_to_bool("verify_views"),
        metadata=_meta("zgc: only the good colour's view is accessible, the other two PROT_NONE between flips, "
                       "so a pointer that skipped the load barrier faults (SIGSEGV), as HotSpot's "
                       "-XX:+ZVerifyViews (a diagnostic flag of JDK 17's ZGC); costs mprotect calls at every flip",
                       "true|false"),
    )
    gc_interval: float = field(
        default=0.0,
        converter=_to_seconds("gc_interval"),
        metadata=_meta("zgc: start a cycle at least this often, in seconds, as -XX:ZCollectionInterval "
                       "(the director's Timer rule); 0 turns it off", "SECONDS"),
    )
    gc_log: str = field(
        default="gc",
        converter=_to_str("gc_log", "gc"),
        validator=_check_gc_log,
        metadata=_meta("GC log, as the JDK's -Xlog: off, gc (one line per pause with serial, one per cycle with zgc, "
                       "as the JDK's SerialGC and ZGC), gc* (details at info: zgc's phases, MMU, pages and heap table are "
                       "all here), gc*=debug (serial: phases, survivor size), gc*=trace (serial: age table); add "
                       ":file=PATH to write a file",
                       "off|gc|gc*[=debug|trace][:file=PATH]"),
    )

    def __attrs_post_init__(self) -> None:
        # Field validators have run; these checks need several fields at once.
        _resolve_collector(self)
        _check_region_multiples(self)
        _check_generations(self)
        _check_color_fit(self)
        _check_verify_views(self)
        _check_hugetlb_alignment(self)
        _check_address_space(self)
        _check_mirrors(self)

    # Derived figures, so other modules need not repeat the arithmetic.
    @property
    def region_count(self) -> int:
        return self.heap_size // self.region_size

    @property
    def young_regions(self) -> int:
        return self.young_size // self.region_size

    @property
    def survivor_regions(self) -> int:
        return self.young_regions // (self.survivor_ratio + 2)

    @property
    def eden_regions(self) -> int:
        return self.young_regions - 2 * self.survivor_regions

    @property
    def old_regions(self) -> int:
        return self.region_count - self.young_regions

    @property
    def color_view_bases(self) -> tuple[int, int, int]:
        """Marked0, Marked1, Remapped view bases (as MH_COLOR_MARKED0/1/REMAPPED)."""
        return (1 << self.color_bits, 1 << (self.color_bits + 1), 1 << (self.color_bits + 2))

    @property
    def gc_log_level(self) -> str:
        return parse_gc_log(self.gc_log)[0]

    @property
    def gc_log_file(self) -> str | None:
        return parse_gc_log(self.gc_log)[1]

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, env: Mapping[str, str] = os.environ, cli: Mapping[str, object] | argparse.Namespace | None = None,
             command_defaults: Mapping[str, object] | None = None, command_source: Source | None = None) -> LoadedConfig:
        """Layer defaults < a command's own defaults < TOML file < environment < command line, and
        record each field's source. The whole is validated once, so a command default and a flag
        that only make sense together (the demo's coloured views and --verify-views) work."""
        return _load(cls, path, env, cli, command_defaults, command_source)

    @classmethod
    def from_args(cls, namespace: argparse.Namespace, env: Mapping[str, str] = os.environ,
                  command_defaults: Mapping[str, object] | None = None, command_source: Source | None = None) -> LoadedConfig:
        """Load with the flags that add_arguments() defined (including --config)."""
        return cls.load(getattr(namespace, "config", None), env, cli_overrides(namespace), command_defaults, command_source)

    def evolve(self, **changes) -> HeapConfig:
        """A copy with some fields changed. Changing the collector or the mapping alone lets the other
        follow (``evolve(collector="zgc")`` gives the coloured views)."""
        values = {a.name: getattr(self, a.name) for a in attrs.fields(type(self))}
        values.update(changes)
        if "mapping" in changes and "collector" not in changes:
            values["collector"] = None
        if "collector" in changes and "mapping" not in changes:
            values["mapping"] = None
        return type(self)(**values)

    def to_toml(self) -> str:
        """This configuration as a TOML file that load() reads back to an equal config."""
        lines = [f"[{TOML_TABLE}]"]
        for attribute in attrs.fields(type(self)):
            lines.append(f"{attribute.name} = {_toml_value(attribute.name, getattr(self, attribute.name))}")
        return "\n".join(lines) + "\n"

    def describe(self) -> str:
        return LoadedConfig(self, {}).describe()


FIELD_NAMES = tuple(a.name for a in attrs.fields(HeapConfig))


# --------------------------------------------------------------------------- cross-field checks


def _check_region_multiples(c: HeapConfig) -> None:
    for name in ("heap_size", "young_size"):
        size = getattr(c, name)
        if size % c.region_size == 0:
            continue
        bare = " (a bare number counts bytes: write e.g. \"64M\")" if size < c.region_size else ""
        down, up = size // c.region_size * c.region_size, (size // c.region_size + 1) * c.region_size
        nearest = f"{format_size(down)} or {format_size(up)}" if down else format_size(up)
        raise ConfigError(
            f"{name} {format_size(size)} is not a multiple of region_size {format_size(c.region_size)}{bare}: use {nearest}, or change region_size",
            (name, "region_size"),
        )


def color_bits_for(heap_size: int) -> int:
    """Where JDK 17's ZGC puts its colour bits on x86-64 (zGlobals_x86.cpp): above 16 times the heap,
    rounded up to a power of two, and at least 42, at most 44. 4/8/16 TiB views for heaps up to
    256 GiB, 16/32/64 TiB at -Xmx1t (measured with -Xlog:gc+init and /proc/PID/maps)."""
    bits = max(heap_size * 16 - 1, 1).bit_length()
    return min(max(bits, 42), 44)


def _resolve_collector(c: HeapConfig) -> None:
    # The collector and the mapping imply each other; a field left unset follows the other.
    collector, mapping = c.collector, c.mapping
    if collector is None:
        collector = "zgc" if mapping == "colored" else "serial"
    if mapping is None:
        mapping = "colored" if collector == "zgc" else "none"
    if collector == "zgc" and mapping == "young-mirror":
        raise ConfigError(
            "collector zgc with mapping young-mirror: zgc has no young generation to mirror; the allowed pairs "
            "are zgc with colored (three views, JDK 17) or none (one view, colour in the low bits, JDK 21+), "
            "and serial with none or young-mirror", ("collector", "mapping"))
    if collector == "serial" and mapping == "colored":
        raise ConfigError(
            "collector serial with mapping colored: the coloured views are the zgc collector's (no JDK collector "
            "is generational with coloured views); the allowed pairs are zgc with colored or none, and serial "
            "with none or young-mirror: set collector = zgc (or leave it unset), or mapping none", ("collector", "mapping"))
    if collector == "zgc" and c.region_size > ZGC_MAX_GRANULE:
        raise ConfigError(
            f"region_size {format_size(c.region_size)} is zgc's granule (its small page) and may be at most "
            f"{format_size(ZGC_MAX_GRANULE)}: JDK 17's is 2M; use 2M", ("region_size", "collector"))
    object.__setattr__(c, "collector", collector)
    object.__setattr__(c, "mapping", mapping)
    if c.color_bits is None:
        object.__setattr__(c, "color_bits", color_bits_for(c.heap_size) if collector == "zgc" else 42)


# zgc's smallest heap in granules: two small pages kept for relocation (its reserve) and one to
# allocate in. (A heap with medium pages, 64 granules or more, keeps one more for them: it has room.)
ZGC_MIN_GRANULES = 3


def _check_generations(c: HeapConfig) -> None:
    if c.collector == "zgc" and c.heap_size < ZGC_MIN_GRANULES * c.region_size:
        raise ConfigError(
            f"heap_size {format_size(c.heap_size)} holds {c.heap_size // c.region_size} granule(s) of region_size "
            f"{format_size(c.region_size)}: the zgc collector needs at least {ZGC_MIN_GRANULES} (2 for its relocation "
            f"reserve, and one to allocate in); raise heap_size to {format_size(ZGC_MIN_GRANULES * c.region_size)} "
            f"or more, or lower region_size", ("heap_size", "region_size"))
    if c.collector != "serial":
        return  # zgc has no generations: young_size, survivor_ratio and tenuring_threshold are unused
    if c.young_size >= c.heap_size:
        raise ConfigError(
            f"young_size {format_size(c.young_size)} leaves no old generation in heap_size {format_size(c.heap_size)}: "
            f"young_size must be at most heap_size minus one region ({format_size(c.heap_size - c.region_size)})",
            ("young_size", "heap_size"),
        )
    if c.survivor_regions < 1:
        need = (c.survivor_ratio + 2) * c.region_size
        ratio_fix = f" or lower survivor_ratio to {c.young_regions - 2}" if c.young_regions >= 3 else ""
        raise ConfigError(
            f"young_size {format_size(c.young_size)} ({c.young_regions} regions of {format_size(c.region_size)}) cannot hold eden plus two "
            f"survivors at survivor_ratio {c.survivor_ratio}, which needs {c.survivor_ratio + 2} regions: raise young_size to {format_size(need)}{ratio_fix}",
            ("young_size", "survivor_ratio", "region_size"),
        )


def _check_color_fit(c: HeapConfig) -> None:
    if c.collector != "zgc":
        return
    base = 1 << c.color_bits
    if c.heap_size >= base:
        raise ConfigError(
            f"heap_size {format_size(c.heap_size)} does not fit below the colour bit {c.color_bits} ({format_size(base)}): lower heap_size or raise color_bits",
            ("heap_size", "color_bits"),
        )


def _check_verify_views(c: HeapConfig) -> None:
    if c.verify_views and (c.collector != "zgc" or c.mapping != "colored"):
        raise ConfigError(
            f"verify_views needs the zgc collector with its three coloured views (mapping colored), but "
            f"collector is {c.collector} with mapping {c.mapping}: there is no bad colour's view to close; "
            f"set verify_views = false, or collector = zgc", ("verify_views", "collector", "mapping"))


def _check_hugetlb_alignment(c: HeapConfig) -> None:
    if c.backend != "memfd-hugetlb":
        return
    if c.region_size % HUGE_PAGE_SIZE:
        raise ConfigError(
            f"backend memfd-hugetlb maps whole {format_size(HUGE_PAGE_SIZE)} huge pages, but region_size is {format_size(c.region_size)}: "
            f"set region_size to 2M (or a larger power of two)",
            ("region_size", "backend"),
        )
    fixed = [("reserve_at", c.reserve_at)] if c.reserve_at is not None else []
    if c.mapping == "young-mirror":
        fixed += [("mirrors", m.address) for m in c.mirrors if m.address is not None]
    for name, address in fixed:
        if address % HUGE_PAGE_SIZE:
            raise ConfigError(
                f"{name} address {address:#x} is not aligned to a {format_size(HUGE_PAGE_SIZE)} huge page, which backend memfd-hugetlb needs: "
                f"use a multiple of {HUGE_PAGE_SIZE:#x} such as {address - address % HUGE_PAGE_SIZE + HUGE_PAGE_SIZE:#x}",
                (name, "backend"),
            )


def _check_address_space(c: HeapConfig) -> None:
    if c.reserve_at is not None and c.collector == "zgc":
        # zgc's views sit at 1 << color_bits and above; a reserve_at would be silently ignored.
        where = "whose three views sit at the colour bits (1<<%d and up)" % c.color_bits if c.mapping == "colored" \
            else "whose one view sits at the heap base bit 1<<%d (the pointer is that address shifted left by 16)" % c.color_bits
        raise ConfigError(
            f"reserve_at {c.reserve_at:#x} has no effect with collector zgc, {where}: set reserve_at to none, or "
            f"move the views with color_bits",
            ("reserve_at", "mapping"),
        )
    if c.reserve_at is not None and c.reserve_at + c.heap_size > USER_ADDRESS_LIMIT:
        raise ConfigError(
            f"reserve_at {c.reserve_at:#x} + heap_size {format_size(c.heap_size)} ends beyond user space ({USER_ADDRESS_LIMIT:#x}, 128T): "
            f"choose a lower reserve_at or none",
            ("reserve_at", "heap_size"),
        )


def _check_mirrors(c: HeapConfig) -> None:
    if c.mapping != "young-mirror":
        return
    if not c.mirrors:
        raise ConfigError("mirrors is empty but mapping young-mirror needs at least one mirror: e.g. mirrors = [\"auto:r\"]", ("mirrors", "mapping"))
    ranges = [(m.address, m.address + c.young_size, str(m)) for m in c.mirrors if m.address is not None]
    if c.reserve_at is not None:
        ranges.append((c.reserve_at, c.reserve_at + c.heap_size, f"the heap reservation at {c.reserve_at:#x}"))
    for start, end, label in ranges:
        if end > USER_ADDRESS_LIMIT:
            raise ConfigError(f"mirror {label} ends at {end:#x}, beyond user space ({USER_ADDRESS_LIMIT:#x}): choose a lower address or auto", ("mirrors",))
    _check_overlaps(ranges, c.young_size)


def _check_overlaps(ranges: list[tuple[int, int, str]], young_size: int) -> None:
    ordered = sorted(ranges)
    for (a_start, a_end, a_label), (b_start, _, b_label) in zip(ordered, ordered[1:]):
        if b_start < a_end:
            raise ConfigError(
                f"mirror ranges overlap: {a_label} covers {a_start:#x}..{a_end:#x} (young_size {format_size(young_size)}) "
                f"and {b_label} starts at {b_start:#x}: move one mirror to {a_end:#x} or beyond, or use auto",
                ("mirrors", "young_size"),
            )


# --------------------------------------------------------------------------- provenance


@frozen
class Source:
    """Where one field's value came from."""

    kind: str  # "default" | "file" | "env" | "cli"
    name: str = ""  # file path, environment variable or flag
    key: str = ""  # for a file: the key inside the [heap] table

    def __str__(self) -> str:
        return "default" if self.kind == "default" else f"{self.kind}:{self.name}"

    def where(self, field_name: str) -> str:
        """Phrase for an error message: which file key, variable or flag to go and fix."""
        if self.kind == "file":
            return f"{self.name} [{TOML_TABLE}] {self.key}"
        if self.kind == "env":
            return f"environment variable {self.name}"
        if self.kind == "cli":
            return f"flag {self.name}"
        if self.kind != "default":  # a command's own default (the demo's coloured views)
            return f"the {self.kind}'s default {field_name} (set --{field_name.replace('_', '-')} to change it)"
        return f"default {field_name}"


DEFAULT_SOURCE = Source("default")


@frozen
class LoadedConfig:
    """A HeapConfig together with the source of each of its fields."""

    config: HeapConfig
    sources: Mapping[str, Source] = field(converter=dict)

    def source_of(self, name: str) -> str:
        """'default', 'file:PATH', 'env:MINIHEAP_X' or 'cli:--flag'."""
        if name not in FIELD_NAMES:
            raise ConfigError(f"{name!r} is not a configuration key: valid keys are {', '.join(FIELD_NAMES)}{_suggest(name, FIELD_NAMES)}")
        return str(self.sources.get(name, DEFAULT_SOURCE))

    def describe(self) -> str:
        """An aligned table: key, value, source."""
        rows = [("key", "value", "source")]
        for name in FIELD_NAMES:
            rows.append((name, format_value(name, getattr(self.config, name)), self.source_of(name)))
        widths = [max(len(row[i]) for row in rows) for i in range(2)]
        return "\n".join(f"{k:<{widths[0]}}  {v:<{widths[1]}}  {s}".rstrip() for k, v, s in rows)


def format_provenance(loaded: LoadedConfig) -> str:
    return loaded.describe()


def format_value(name: str, value: object) -> str:
    """A field's value as a person would write it in a file or flag."""
    if name in ("heap_size", "young_size", "region_size"):
        return format_size(value)  # type: ignore[arg-type]
    if name == "reserve_at":
        return "none" if value is None else hex(value)  # type: ignore[arg-type]
    if name == "mirrors":
        return ",".join(str(m) for m in value)  # type: ignore[union-attr]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _toml_value(name: str, value: object) -> str:
    if name == "mirrors":
        return "[" + ", ".join(f'"{m}"' for m in value) + "]"  # type: ignore[union-attr]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int) and name not in ("heap_size", "young_size", "region_size", "reserve_at"):
        return str(value)
    return f'"{format_value(name, value)}"'


# --------------------------------------------------------------------------- loading


# Each implies the other (_resolve_collector): a command's default for one yields when the user set the other.
COUPLED = {"collector": "mapping", "mapping": "collector"}


def _load(cls: type[HeapConfig], path, env: Mapping[str, str], cli, command_defaults=None, command_source=None) -> LoadedConfig:
    values: dict[str, object] = dict(command_defaults or {})
    sources: dict[str, Source] = dict.fromkeys(values, command_source or DEFAULT_SOURCE)
    if path is None and env.get(CONFIG_ENV):
        path = env[CONFIG_ENV]
    if path is not None:
        for key, value in read_toml(path).items():
            values[key], sources[key] = value, Source("file", str(path), key)
    for name in FIELD_NAMES:
        variable = ENV_PREFIX + name.upper()
        # An empty variable (MINIHEAP_BACKEND= cmd) means "not set", as most tools treat it.
        if env.get(variable):
            values[name], sources[name] = env[variable], Source("env", variable)
    overrides = cli_overrides(cli) if isinstance(cli, argparse.Namespace) else dict(cli or {})
    for name, value in overrides.items():
        if name not in FIELD_NAMES:
            raise ConfigError(f"unknown command-line override {name!r}: valid keys are {', '.join(FIELD_NAMES)}{_suggest(name, FIELD_NAMES)}")
        values[name], sources[name] = value, Source("cli", flag_of(name))
    for name in command_defaults or {}:
        other = COUPLED.get(name)
        if sources.get(name) is command_source and other in sources and sources[other] is not command_source:
            del values[name], sources[name]
    try:
        return LoadedConfig(cls(**values), sources)
    except ConfigError as error:
        raise error.located(_where(error.fields, sources)) from None


def _where(fields: tuple[str, ...], sources: Mapping[str, Source]) -> str:
    # Name the sources the user set first: those are the ones to fix. Defaults that
    # took part are named after them, since changing one may be the fix too.
    chosen = [sources[f].where(f) for f in fields if f in sources]
    defaults = [f for f in fields if f not in sources]
    if not chosen:
        return "defaults " + ", ".join(defaults)
    suffix = f" (with default {', '.join(defaults)})" if defaults else ""
    return " and ".join(chosen) + suffix


def read_toml(path: str | os.PathLike) -> dict[str, object]:
    """The [heap] table of a TOML file, checked for unknown keys. Values are not yet converted."""
    document = _parse_toml_file(Path(path))
    for key, value in document.items():
        if key == TOML_TABLE:
            continue
        if key in FIELD_NAMES:
            raise ConfigError(f"{path}: key {key!r} is at the top level, but miniheap reads keys from the [{TOML_TABLE}] table: put a [{TOML_TABLE}] line above it")
        raise ConfigError(f"{path}: unknown top-level key {key!r}: the file may hold only a [{TOML_TABLE}] table{_suggest(key, [TOML_TABLE])}")
    table = document.get(TOML_TABLE, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: '{TOML_TABLE}' must be a table ([{TOML_TABLE}] followed by key = value lines), got {_type_name(table)}")
    for key in table:
        if key not in FIELD_NAMES:
            raise ConfigError(f"{path} [{TOML_TABLE}] {key}: unknown key; valid keys are {', '.join(FIELD_NAMES)}{_suggest(key, FIELD_NAMES)}")
    return dict(table)


_TOML_POSITION_RE = re.compile(r"\s*\(at line (\d+), column (\d+)\)")


def _parse_toml_file(path: Path) -> dict:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist: check the path (absolute, or relative to {os.getcwd()})") from None
    except OSError as error:
        raise ConfigError(f"config file {path} cannot be read ({error.strerror}): check its permissions") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ConfigError(f"config file {path} is not UTF-8 text (bad byte at offset {error.start}): save it as UTF-8") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(_toml_syntax_message(path, str(error))) from None


def _toml_syntax_message(path: Path, message: str) -> str:
    position = _TOML_POSITION_RE.search(message)
    reason = _TOML_POSITION_RE.sub("", message)
    hint = 'TOML wants key = value, with strings in quotes, e.g. heap_size = "64M"'
    if position is None:
        return f"{path}: TOML syntax error: {reason}; {hint}"
    line, column = position.groups()
    return f"{path}:{line}:{column}: TOML syntax error at line {line}, column {column}: {reason}; {hint}"


# --------------------------------------------------------------------------- command line


def flag_of(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser, config_flag: bool = True,
                  command_defaults: dict[str, object] | None = None, command: str = "") -> None:
    """Give a CLI --config and one flag per field (--backend, --heap-size, ...).

    ``command_defaults`` are the values a command uses where nothing else sets the key (the demo's
    mapping colored): --help shows those, not HeapConfig's, and says whose they are."""
    command_defaults = command_defaults or {}
    precedence = "defaults < --config file < MINIHEAP_* environment < these flags"
    if command_defaults:
        precedence = f"defaults < {command}'s defaults < --config file < MINIHEAP_* environment < these flags"
    group = parser.add_argument_group("heap configuration", f"precedence: {precedence}")
    if config_flag:
        group.add_argument("--config", metavar="PATH", default=None, help=f"TOML file with a [{TOML_TABLE}] table (default: ${CONFIG_ENV})")
    defaults = HeapConfig()
    # The command's defaults resolved as the heap resolves them, so a field they imply (the demo's
    # mapping colored implies collector zgc) is shown with the value the command really runs with.
    command_resolved = HeapConfig(**command_defaults) if command_defaults else defaults
    for attribute in attrs.fields(HeapConfig):
        default = format_value(attribute.name, getattr(defaults, attribute.name))
        implied = getattr(command_resolved, attribute.name)
        if attribute.name not in command_defaults and implied != getattr(defaults, attribute.name):
            default = (f"{format_value(attribute.name, implied)} in the {command} (its {_implied_by(command_defaults)}), "
                       f"{default} elsewhere")
        if attribute.name in command_defaults:
            default = (f"{format_value(attribute.name, command_defaults[attribute.name])} in the {command}, "
                       f"{default} elsewhere")
        # default=None, so cli_overrides can tell "not given" from "given the default value".
        group.add_argument(
            flag_of(attribute.name),
            dest=attribute.name,
            default=None,
            metavar=attribute.metadata["metavar"],
            help=f"{attribute.metadata['help']} (default: {default.replace('%', '%%')})",
        )


def _implied_by(command_defaults: Mapping[str, object]) -> str:
    return " and ".join(f"{name} {format_value(name, value)}" for name, value in command_defaults.items()
                        if name in ("mapping", "collector"))


def cli_overrides(namespace: argparse.Namespace) -> dict[str, object]:
    """The fields given on the command line, for HeapConfig.load(cli=...)."""
    return {name: value for name in FIELD_NAMES if (value := getattr(namespace, name, None)) is not None}
