/*
 * zforwarding.c: forwarding tables with CAS-claimed entries (zforwarding.h).
 */
#include <stdlib.h>
#include "zforwarding.h"
#include "zpage.h"

#define INDEX_SHIFT 40
#define TO_MASK ((1ull << INDEX_SHIFT) - 1)

static inline uint64_t entry_make(uint64_t index, uint64_t to_off)
{
    return index << INDEX_SHIFT | ((to_off >> 3) + 1);
}

static inline uint64_t entry_index(uint64_t e) { return e >> INDEX_SHIFT; }
static inline uint64_t entry_to(uint64_t e) { return ((e & TO_MASK) - 1) << 3; }

static inline uint32_t hash(uint64_t index)
{
    /* Fibonacci hashing: neighbouring objects land apart */
    return (uint32_t)((index * 0x9e3779b97f4a7c15ull) >> 32);
}

zforwarding *zforwarding_new(zpage *page, uint32_t live_objects, uint64_t live_bytes)
{
    uint64_t n = 2;
    while (n < 2ull * live_objects)
        n <<= 1;
    zforwarding *f = calloc(1, sizeof *f + n * sizeof(uint64_t));
    if (!f)
        return NULL;
    f->start = page->start;
    f->size = page->size;
    f->type = page->type;
    f->page = page;
    f->live_objects = live_objects;
    f->live_bytes = live_bytes;
    f->refcount = 1;
    f->mask = (uint32_t)(n - 1);
    return f;
}

uint64_t zforwarding_find(const zforwarding *f, uint64_t from_off)
{
    uint64_t index = (from_off - f->start) >> 3;
    for (uint32_t i = hash(index) & f->mask;; i = (i + 1) & f->mask) {
        uint64_t e = __atomic_load_n(&f->entries[i], __ATOMIC_ACQUIRE);
        if (e == ZFWD_EMPTY)
            return UINT64_MAX;
        if (entry_index(e) == index)
            return entry_to(e);
    }
}

uint64_t zforwarding_insert(zforwarding *f, uint64_t from_off, uint64_t to_off)
{
    uint64_t index = (from_off - f->start) >> 3;
    uint64_t mine = entry_make(index, to_off);
    for (uint32_t i = hash(index) & f->mask;; i = (i + 1) & f->mask) {
        uint64_t e = __atomic_load_n(&f->entries[i], __ATOMIC_ACQUIRE);
        while (e == ZFWD_EMPTY) {
#ifdef MH_TEST_NO_FORWARDING_CAS
            /* broken on purpose: a plain store, the last copier wins */
            __atomic_store_n(&f->entries[i], mine, __ATOMIC_RELEASE);
            return to_off;
#else
            /* release: the copy's words are visible before the entry that names them */
            if (__atomic_compare_exchange_n(&f->entries[i], &e, mine, false, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE))
                return to_off;
#endif
        }
        if (entry_index(e) == index) {
#ifdef MH_TEST_NO_FORWARDING_CAS
            __atomic_store_n(&f->entries[i], mine, __ATOMIC_RELEASE);
            return to_off;
#else
            return entry_to(e); /* someone else's copy was installed first */
#endif
        }
    }
}

bool zforwarding_retain(zforwarding *f)
{
    int32_t c = __atomic_load_n(&f->refcount, __ATOMIC_ACQUIRE);
    while (c > 0)
        if (__atomic_compare_exchange_n(&f->refcount, &c, c + 1, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            return true;
    return false;
}

void zforwarding_release(zforwarding *f)
{
    __atomic_sub_fetch(&f->refcount, 1, __ATOMIC_ACQ_REL);
}
