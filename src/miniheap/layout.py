"""Layouts: where each view of the heap lives in the address space.

* ``none``: one view of the whole heap, in one reservation.
* ``colored``: three views of the whole heap, one per pointer colour, as non-generational ZGC did on
  x86-64 in JDK 11 to 23: Marked0 at ``1 << color_bits``, Marked1 at ``1 << (color_bits + 1)``,
  Remapped at ``1 << (color_bits + 2)`` (JDK 17 uses bits 42-44 up to a 256G heap, 44-46 at -Xmx1t). An object at heap offset ``o`` is at ``base[colour] | o`` in every view,
  so a pointer of any colour can be dereferenced as it is.
* ``none`` with the zgc collector: one view, as generational ZGC has since JDK 21, at the heap base bit
  ``1 << color_bits`` (where JDK 25 maps its ``java_heap``, 4 TiB for a small heap). The colour is no
  longer a view: it sits in the pointer's low 16 bits, and the address is the pointer shifted right by 16.
* ``young-mirror``: the heap view plus extra views of the young generation (eden and survivors),
  read-only by default, for example at the fixed address 0x100000 of the 2017 thread's example.

A layout knows reservations and the backend, nothing of the collector; the collector learns only the
view bases (:attr:`Layout.view_bases`).
"""
import contextlib
import errno

from .cleanup import Cleanup
from .config import COLOR_BITS_RANGE
from .errors import ReservationError
from .reservation import Reservation

COLOR_NAMES = ("Marked0", "Marked1", "Remapped")


class Layout:
    name = ""
    colored = False          # three views, one per colour (the colour selects the view)
    color_in_low_bits = False  # one view; the colour rides in the pointer's low 16 bits

    def __init__(self, syscalls, backend, config):
        self.sys, self.backend, self.config = syscalls, backend, config
        self.reservations = []
        self.views = []
        try:
            self._build()
        except BaseException:
            self.close()  # a failure half-way leaves nothing mapped
            raise

    def _reserve(self, size, at=None, label="heap", alignment=None):
        # The collector's views are region-aligned (it addresses regions by offset); other views
        # need only the backend's granule (a page, or a huge page).
        if alignment is None:
            alignment = max(self.backend.granule, self.config.region_size)
        reservation = Reservation(self.sys, size, at=at, alignment=alignment, label=label)
        self.reservations.append(reservation)
        return reservation

    def _view(self, reservation, name, offset, length, writable=True, at=None):
        addr = reservation.start if at is None else at
        view = self.backend.map_view(reservation, addr, offset, length, writable, name)
        self.views.append(view)
        return view

    def _build(self):
        raise NotImplementedError

    @property
    def view_bases(self):
        """The three bases the collector addresses objects through (all the same in one view)."""
        base = self.views[0].start
        return (base, base, base)

    def close(self):
        """Unmap every reservation, even when one munmap fails (that failure is raised afterwards)."""
        with Cleanup() as cleanup:
            for reservation in self.reservations:
                cleanup.run(reservation.close)
            self.reservations.clear()
            self.views.clear()


class SingleView(Layout):
    name = "none"

    def _build(self):
        size = self.config.heap_size
        self._view(self._reserve(size, at=self.config.reserve_at), "heap", 0, size)


class LowBitsView(Layout):
    """zgc with one view (JDK 21+): the whole heap once, at the heap base bit."""
    name = "none"
    color_in_low_bits = True

    def _build(self):
        size, bits = self.config.heap_size, self.config.color_bits
        if size > 1 << bits:
            raise ReservationError(f"heap_size {size} does not fit below the heap base bit {bits} "
                                   f"({1 << bits} bytes): lower heap_size or raise color_bits")
        with _taken_by_another_zgc_heap(bits, 1):
            self._view(self._reserve(size, at=1 << bits, label="heap"), "heap", 0, size)


@contextlib.contextmanager
def _taken_by_another_zgc_heap(bits, nbits):
    """A zgc heap's views sit at fixed addresses, as JDK 17's (one heap per JVM): the usual reason one
    cannot be reserved is another zgc heap of this process at the same colour bits. Say so, and how to
    have both, rather than 'choose another address' (a zgc heap has no address setting)."""
    try:
        yield
    except ReservationError as e:
        if getattr(e.__cause__, "errno", None) != errno.EEXIST:
            raise
        ways = [f"color_bits = {bits - 3} or lower"] if bits - 3 >= COLOR_BITS_RANGE[0] else []
        ways += [f"color_bits = {bits + 3} or higher"] if bits + 3 <= COLOR_BITS_RANGE[1] else []
        hint = f"give this heap {' or '.join(ways)}" if ways else "give this heap other colour bits"
        raise ReservationError(
            f"{e}. With zgc this is most likely another zgc heap of this process, whose views sit at "
            f"the same addresses (bits {bits} to {bits + nbits - 1}: JDK 17's ZGC has one heap per JVM): "
            f"close it first, or {hint}, so the two heaps' views do not meet") from e.__cause__


class ColoredViews(Layout):
    name = "colored"
    colored = True

    def _build(self):
        size, bits = self.config.heap_size, self.config.color_bits
        if size > 1 << bits:
            raise ReservationError(f"heap_size {size} does not fit below the colour bit {bits} "
                                   f"({1 << bits} bytes): lower heap_size or raise color_bits")
        with _taken_by_another_zgc_heap(bits, len(COLOR_NAMES)):
            for colour, name in enumerate(COLOR_NAMES):
                base = 1 << (bits + colour)
                self._view(self._reserve(size, at=base, label=f"{name} view"), name, 0, size)

    @property
    def view_bases(self):
        return tuple(v.start for v in self.views)


class YoungMirror(Layout):
    name = "young-mirror"

    def _build(self):
        size, young = self.config.heap_size, self.config.young_size
        self._view(self._reserve(size, at=self.config.reserve_at), "heap", 0, size)
        for i, spec in enumerate(self.config.mirrors, 1):
            label = f"young mirror {i}"
            reservation = self._reserve(young, at=spec.address, label=label,
                                        alignment=self.backend.granule)
            self._view(reservation, label, 0, young, writable=spec.writable)

    @property
    def mirrors(self):
        return self.views[1:]


LAYOUTS = {cls.name: cls for cls in (SingleView, ColoredViews, YoungMirror)}


def open_layout(name, syscalls, backend, config):
    try:
        cls = LAYOUTS[name]
    except KeyError:
        raise ValueError(f"unknown mapping {name!r}: choose one of {', '.join(LAYOUTS)}") from None
    if cls is SingleView and getattr(config, "collector", None) == "zgc":
        cls = LowBitsView  # zgc's pointers carry a colour: with one view it goes in the low bits
    return cls(syscalls, backend, config)
