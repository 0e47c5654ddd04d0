/*
 * remap.h: the serial collector's lazy remapping in the coloured layout.
 *
 * The full collection of the coloured layout fixes only the roots; a field
 * still holding the colour of the last marking may refer to an object that
 * evacuation moved, and the load barrier's slow path finds it through the
 * off-heap forwarding tables and heals the field.
 */
#ifndef MH_SERIAL_REMAP_H
#define MH_SERIAL_REMAP_H

#include "internal.h"

/* The good-coloured reference a stale one stands for. Never touches the heap. */
mh_ref barrier_remap(const mh_heap *h, mh_ref stale);
mh_ref serial_load_slow(mh_heap *h, mh_ref *field, mh_ref stale);

#endif
