"""Reading /proc/PID/maps: which mappings back each view of the heap, and from what file.

A view may show as several lines (VMAs) when parts of it differ, for example after a range was
released back to PROT_NONE. Every line of one backing has the same device and inode, which is how a
test proves that three views are the same memory.
"""


class Mapping:
    __slots__ = ("start", "end", "perms", "offset", "dev", "inode", "path")

    def __init__(self, start, end, perms, offset, dev, inode, path):
        self.start, self.end, self.perms, self.offset = start, end, perms, offset
        self.dev, self.inode, self.path = dev, inode, path

    @property
    def length(self):
        return self.end - self.start

    def __repr__(self):
        return (f"{self.start:016x}-{self.end:016x} {self.perms} {self.offset:08x} {self.dev} "
                f"{self.inode} {self.path}")


def read_maps(pid="self"):
    result = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(maxsplit=5)
            start, end = (int(x, 16) for x in parts[0].split("-"))
            path = parts[5].strip() if len(parts) > 5 else ""
            result.append(Mapping(start, end, parts[1], int(parts[2], 16), parts[3], int(parts[4]), path))
    return result


def mappings_of(view, maps=None):
    """The lines of /proc/self/maps that lie inside ``view`` (an object with start and length)."""
    maps = read_maps() if maps is None else maps
    return [m for m in maps if view.start <= m.start and m.end <= view.start + view.length]


def view_table(views, maps=None):
    """Rows (label, maps line) for each view, as the demo prints them."""
    maps = read_maps() if maps is None else maps
    rows = []
    for view in views:
        for m in mappings_of(view, maps):
            rows.append((view.name, m))
    return rows


def format_view_table(views, maps=None):
    rows = view_table(views, maps)
    width = max((len(name) for name, _ in rows), default=4)
    return "\n".join(f"  {name:<{width}}  {m!r}" for name, m in rows)
