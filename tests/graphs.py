"""Object graphs for collector tests: a pure-Python model, and its canonical shape read back from a heap.

Every object's payload starts with an 8-byte serial number, so identity survives moves without
relying on addresses. ``shape(roots)`` walks from the roots breadth-first and numbers objects in
discovery order, so two graphs with the same structure (sharing and cycles included) have equal shapes.
"""
import struct

SERIAL = struct.Struct("<Q")


class Model:
    """What the heap should hold: per object, its reference slots and its payload bytes."""

    def __init__(self):
        self.objects = {}  # serial -> [slots (serials or None), payload bytes]

    def add(self, serial, nrefs, payload):
        self.objects[serial] = [[None] * nrefs, payload]

    def shape(self, roots):
        order, index = [], {}
        queue = [r for r in roots if r is not None]
        for r in queue:
            if r not in index:
                index[r] = len(order)
                order.append(r)
        i = 0
        while i < len(order):
            for child in self.objects[order[i]][0]:
                if child is not None and child not in index:
                    index[child] = len(order)
                    order.append(child)
            i += 1
        return [(tuple(None if c is None else index[c] for c in self.objects[s][0]),
                 self.objects[s][1]) for s in order], [index.get(r) for r in roots]

    def reachable_bytes(self, roots, header=8):
        shape, _ = self.shape(roots)
        return sum(header + 8 * len(slots) + -(-len(payload) // 8) * 8 for slots, payload in shape)


def serial_of(ref):
    return SERIAL.unpack(ref.data[:8])[0]


def heap_shape(refs):
    """The canonical shape of what the heap holds, reachable from ``refs`` (Refs or None)."""
    order, index, held = [], {}, []
    for r in refs:
        if r is not None and serial_of(r) not in index:
            index[serial_of(r)] = len(order)
            order.append(r)
    i = 0
    rows = []
    while i < len(order):
        obj = order[i]
        slots = []
        for k in range(obj.nrefs):
            child = obj[k]
            if child is None:
                slots.append(None)
                continue
            s = serial_of(child)
            if s not in index:
                index[s] = len(order)
                order.append(child)
            else:
                held.append(child)
            slots.append(index[s])
        rows.append((tuple(slots), bytes(obj.data)))
        i += 1
    for ref in order[len([r for r in refs if r is not None]):] + held:
        ref.release()
    return rows, [None if r is None else index[serial_of(r)] for r in refs]
