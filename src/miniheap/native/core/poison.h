/*
 * poison.h: telling AddressSanitizer which parts of the heap are dead.
 *
 * The heap lives in memory the embedder mmapped, which ASan knows nothing
 * about: a read of an object the collector has already moved away would look
 * like any other read. In a sanitizer build (MINIHEAP_SANITIZE=1) the spaces a
 * collection empties (eden and the from-survivor after a flip, freed regions)
 * are poisoned in every view, and what allocation and copying hand out again
 * is unpoisoned, so a stale read is reported where it happens. Elsewhere these
 * compile to nothing.
 */
#ifndef MINIHEAP_POISON_H
#define MINIHEAP_POISON_H

#include "internal.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>

static inline void space_mark(const mh_heap *h, uint64_t offset, uint64_t length, bool dead)
{
    int views = views_count(&h->views);
    for (int c = 0; c < views; c++) {
        void *addr = (void *)(uintptr_t)(h->views.base[c] + offset);
        if (dead)
            ASAN_POISON_MEMORY_REGION(addr, length);
        else
            ASAN_UNPOISON_MEMORY_REGION(addr, length);
    }
}

static inline void space_poison(const mh_heap *h, uint64_t offset, uint64_t length)
{
    space_mark(h, offset, length, true);
}

static inline void space_unpoison(const mh_heap *h, uint64_t offset, uint64_t length)
{
    space_mark(h, offset, length, false);
}
#else
static inline void space_poison(const mh_heap *h, uint64_t offset, uint64_t length)
{
    (void)h, (void)offset, (void)length;
}

static inline void space_unpoison(const mh_heap *h, uint64_t offset, uint64_t length)
{
    (void)h, (void)offset, (void)length;
}
#endif

#endif
