/*
 * remap.c: the serial collector's load-barrier slow path (coloured layout).
 */
#include "remap.h"
#include "forwarding.h"

mh_ref barrier_remap(const mh_heap *h, mh_ref stale)
{
    uint64_t offset = ref_offset(&h->views, stale);
    /* Only references coloured by the last marking can predate the last
     * evacuation; a Remapped one was made after it and is already right,
     * even when it points into a region that was evacuated and reused. */
    if (ref_color(&h->views, stale) == h->stale_color)
        offset = fwd_resolve(h, offset);
    return ref_good(&h->views, offset);
}

mh_ref serial_load_slow(mh_heap *h, mh_ref *field, mh_ref stale)
{
    mh_ref good = barrier_remap(h, stale);
    h->stats.loads_slow++;
    *field = good;
    h->stats.loads_healed++;
    return good;
}
