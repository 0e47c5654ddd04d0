"""The shape of a unified-logging line, derived from a real JDK line, to hold ours against.

A shape keeps what a log reader relies on and lets go of the words: the decorations
(``[0.053s][info ][gc,heap ]``), ``GC(n)``, every number with its decimals and unit (``17472K``,
``2.067ms``, ``0.00s``), hex addresses, and the punctuation between them (``->``, ``(``, ``:``, ``,``).
Runs of words become "some text", runs of blanks "some blanks" (the JDK pads fields to fixed widths).

One tag set is generalised: ``gc,init`` lines are ``Key: value`` pairs whose values are free text in
the JDK itself (``Version: 17.0.15+6-Debian-1deb12u1 (release)``, ``CPUs: 2 total, 2 available``),
which is how log readers take them.
"""
import gzip
import re
from pathlib import Path

DECORATED = re.compile(r"^\[(?P<uptime>\d+\.\d{3})s\s*\]\[(?P<level>error|warning|info|debug|trace)\s*\]"
                       r"\[(?P<tags>[a-z0-9,]+)\s*\] (?P<message>.*)$")

_TOKEN = re.compile(r"(?P<gcid>GC\(\d+\))|(?P<hex>0x[0-9a-fA-F]+)"
                    r"|(?P<number>\d+(?:\.(?P<decimals>\d+))?(?P<unit>ms|s|K|M|G|B|%)?)(?![A-Za-z0-9])"
                    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<blank> +)|(?P<other>.)")
TEXT = r"[A-Za-z_]\w*(?: [A-Za-z_]\w*)*"
GENERALISED = {("gc", "init"): r"[A-Z][\w -]*: \S.*"}


def split(line):
    """(level, tags, message) of a decorated line, or None for anything else."""
    match = DECORATED.match(line)
    if match is None:
        return None
    return match["level"], tuple(match["tags"].split(",")), match["message"]


def shape(message, tags=None):
    """The regular expression (a string) of the message's shape."""
    if tags in GENERALISED:
        return GENERALISED[tags]
    parts = []
    for token in _TOKEN.finditer(message):
        if token["gcid"]:
            parts.append(r"GC\(\d+\)")
        elif token["hex"]:
            parts.append(r"0x[0-9a-f]+")
        elif token["number"]:
            decimals = token["decimals"]
            parts.append(r"\d+" + (rf"\.\d{{{len(decimals)}}}" if decimals else "") + re.escape(token["unit"] or ""))
        elif token["word"]:
            if parts[-2:] == [TEXT, " "]:
                parts.pop()  # words with one blank between them are one run of text
            elif parts[-1:] != [TEXT]:
                parts.append(TEXT)
        elif token["blank"]:
            # one blank may join words into a run of text; a wider one is padding between fields
            # (" def new generation   total 19648K": the run of text ends before "total")
            parts.append(" " if len(token["blank"]) == 1 else "  ")
        else:
            parts.append(re.escape(token["other"]))
    # A blank left between other things stands for a blank of any width.
    return "".join(" +" if p in (" ", "  ") else p for p in parts)


def read_log(path):
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return f.read()


def shapes_of(text):
    """{(level, tags): {shape regex: an example line}} of a JDK log."""
    result = {}
    for line in text.splitlines():
        parts = split(line)
        if parts is None:
            continue
        level, tags, message = parts
        result.setdefault((level, tags), {}).setdefault(shape(message, tags), line)
    return result


def mismatches(text, golden):
    """Lines of ``text`` whose (level, tags) the JDK never printed, or whose message has no JDK shape
    of the same level and tags: [(line, why)]."""
    bad = []
    compiled = {key: [re.compile(s) for s in shapes] for key, shapes in golden.items()}
    for line in text.splitlines():
        parts = split(line)
        if parts is None:
            bad.append((line, "not a decorated unified-logging line"))
            continue
        level, tags, message = parts
        if (level, tags) not in compiled:
            bad.append((line, f"the JDK prints no [{level}][{','.join(tags)}] line at this selector"))
        elif not any(p.fullmatch(message) for p in compiled[(level, tags)]):
            bad.append((line, f"no JDK [{level}][{','.join(tags)}] line has this shape"))
    return bad
