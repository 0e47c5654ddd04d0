/*
 * access.c: the mutator's view of objects: field loads and stores through
 * the barriers, shape, payload, age and space.
 */
#include "internal.h"
#include "barrier.h"
#include "card.h"
#include "miniheap-pyapi.h"

/* The object a handle names, reached by dereferencing its reference directly. */
static inline mh_object *object_of(mh_heap *h, mh_handle x)
{
    if (!heap_enter(h) || !handle_check(h, x))
        return NULL;
    return ref_addr(&h->views, h->handles[x]);
}

/* The same for a call that only reads (allowed in on_gc). */
static inline mh_object *object_to_read(mh_heap *h, mh_handle x)
{
    if (!heap_enter_read(h) || !handle_check(h, x))
        return NULL;
    return ref_addr(&h->views, h->handles[x]);
}

static bool __attribute__((noinline, cold)) slot_error(mh_heap *h, const mh_object *o, mh_handle x,
                                                       uint32_t slot)
{
    uint32_t n = obj_nrefs(o);
    if (n == 0)
        heap_error(h, MH_E_BAD_SLOT, "slot %u of handle %d is out of range: the object has no "
                   "reference slots (nrefs 0)", slot, x);
    else
        heap_error(h, MH_E_BAD_SLOT, "slot %u of handle %d is out of range: the object has %u "
                   "reference slots, 0..%u (nrefs %u)", slot, x, n, n - 1, n);
    return false;
}

static inline bool slot_check(mh_heap *h, const mh_object *o, mh_handle x, uint32_t slot)
{
    if (MH_LIKELY(slot < obj_nrefs(o)))
        return true;
    return slot_error(h, o, x, slot);
}

/* Stores into old and humongous objects mark the slot's card, whatever the
 * value: testing the value would cost more than the byte store. */
static inline void write_barrier(mh_heap *h, uint64_t slot_offset)
{
#ifndef MH_TEST_NO_CARD_MARK
    if (slot_offset >= h->card_from) /* serial: old and humongous; zgc has no write barrier */
        card_dirty(h, slot_offset);
#endif
}

static inline mh_handle mh_load_unlocked(mh_heap *h, mh_handle x, uint32_t slot)
{
    mh_object *o = object_of(h, x);
    if (!o || !slot_check(h, o, x, slot))
        return MH_ERROR;
    mh_ref v = load_barrier(h, &obj_slots(o)[slot]);
    return v ? handle_new(h, v) : MH_NULL_HANDLE;
}

static inline int mh_load_into_unlocked(mh_heap *h, mh_handle x, uint32_t slot, mh_handle dest)
{
    mh_object *o = object_of(h, x);
    if (!o || !slot_check(h, o, x, slot) || !handle_check(h, dest))
        return MH_ERROR;
    mh_ref v = load_barrier(h, &obj_slots(o)[slot]);
    if (!v)
        return 0;
    h->handles[dest] = v;
    return 1;
}

static inline int mh_store_unlocked(mh_heap *h, mh_handle x, uint32_t slot, mh_handle value)
{
    mh_object *o = object_of(h, x);
    if (!o || !slot_check(h, o, x, slot))
        return MH_ERROR;
    mh_ref v = 0;
    if (value != MH_NULL_HANDLE) {
        if (!handle_check(h, value))
            return MH_ERROR;
        v = h->handles[value]; /* handles hold good references: stores never store stale ones */
    }
    field_store(&obj_slots(o)[slot], v);
    write_barrier(h, ref_offset(&h->views, h->handles[x]) + obj_slot_offset(slot));
    h->stats.stores++;
    return 0;
}

mh_ref mh_peek_slot_unlocked(mh_heap *h, mh_handle x, uint32_t slot)
{
    mh_object *o = object_to_read(h, x);
    if (!o || !slot_check(h, o, x, slot))
        return MH_BAD_REF; /* 0 is a null slot */
    return field_load(&obj_slots(o)[slot]);
}

int64_t mh_nrefs_unlocked(mh_heap *h, mh_handle x)
{
    mh_object *o = object_to_read(h, x);
    return o ? (int64_t)obj_nrefs(o) : MH_ERROR;
}

int64_t mh_nbytes_unlocked(mh_heap *h, mh_handle x)
{
    mh_object *o = object_to_read(h, x);
    return o ? (int64_t)obj_nbytes(o) : MH_ERROR;
}

static inline uint8_t *mh_payload_unlocked(mh_heap *h, mh_handle x)
{
    mh_object *o = object_of(h, x);
    return o ? obj_payload(o) : NULL;
}

int mh_age_unlocked(mh_heap *h, mh_handle x)
{
    mh_object *o = object_to_read(h, x);
    return o ? (int)obj_age(o) : MH_ERROR;
}

int mh_ref_color_unlocked(mh_heap *h, mh_ref ref)
{
    if (!heap_ok(h))
        return MH_ERROR;
    if (!ref)
        return MH_COLOR_NONE;
    int c = ref_color(&h->views, ref);
    if (c < 0) {
        heap_error(h, MH_E_BAD_ARGUMENT, "0x%llx is not a reference into any view of this heap",
                   (unsigned long long)ref);
        return MH_ERROR;
    }
    return c;
}

uint64_t mh_ref_offset_unlocked(mh_heap *h, mh_ref ref)
{
    if (!heap_ok(h))
        return MH_BAD_OFFSET; /* 0 is a valid offset: the first object of eden */
    uint64_t off = ref_offset(&h->views, ref);
    if (!ref || ref_color(&h->views, ref) < 0 || off >= h->heap_size) {
        heap_error(h, MH_E_BAD_ARGUMENT, "0x%llx is not a reference into any view of this heap%s",
                   (unsigned long long)ref, ref ? "" : " (it is null)");
        return MH_BAD_OFFSET;
    }
    return off;
}

uint64_t mh_ref_address_unlocked(mh_heap *h, mh_ref ref)
{
    if (mh_ref_offset_unlocked(h, ref) == MH_BAD_OFFSET)
        return 0;
    return (uint64_t)(uintptr_t)ref_addr(&h->views, ref);
}

/* Payload copies, bounds-checked, for embedders that cannot hold mh_payload's
 * pointer safely: another thread's allocation may move the object between
 * getting the pointer and using it, while these copy under the heap's lock. */
static bool payload_range(mh_heap *h, const mh_object *o, mh_handle x, uint64_t offset,
                          uint64_t length)
{
    uint64_t n = obj_nbytes(o);
    if (offset <= n && length <= n - offset)
        return true;
    heap_error(h, MH_E_BAD_ARGUMENT, "payload range [%llu, %llu) of handle %d is out of range: the "
               "payload has %llu bytes", (unsigned long long)offset,
               (unsigned long long)(offset + length), x, (unsigned long long)n);
    return false;
}

int mh_read_payload_unlocked(mh_heap *h, mh_handle x, uint64_t offset, void *dst, uint64_t length)
{
    mh_object *o = object_to_read(h, x);
    if (!o || !payload_range(h, o, x, offset, length))
        return MH_ERROR;
    memcpy(dst, obj_payload(o) + offset, length);
    return 0;
}

int mh_write_payload_unlocked(mh_heap *h, mh_handle x, uint64_t offset, const void *src,
                              uint64_t length)
{
    mh_object *o = object_of(h, x);
    if (!o || !payload_range(h, o, x, offset, length))
        return MH_ERROR;
    memcpy(obj_payload(o) + offset, src, length);
    return 0;
}

/* The C-level Python Ref's calls (miniheap-pyapi.h): never wait for the lock. */
mh_handle load_try(mh_heap *h, mh_handle x, uint32_t slot)
{
    mh_heap *locked = heap_trylock(h);
    if (!locked)
        return MH_WOULD_BLOCK;
    mh_handle r = MH_LIKELY(!h->mutators) ? mh_load_unlocked(h, x, slot) : MH_WOULD_BLOCK;
    heap_unlock(locked);
    return r;
}

int store_try(mh_heap *h, mh_handle x, uint32_t slot, mh_handle value)
{
    mh_heap *locked = heap_trylock(h);
    if (!locked)
        return MH_WOULD_BLOCK;
    int r = MH_LIKELY(!h->mutators) ? mh_store_unlocked(h, x, slot, value) : MH_WOULD_BLOCK;
    heap_unlock(locked);
    return r;
}

/* The hot public functions are defined beside their implementation (so it is
 * inlined into them); api.c has the others. */
MH_LOCKED(mh_handle, mh_load, (mh_heap *h, mh_handle x, uint32_t slot), (h, x, slot))
MH_LOCKED(int, mh_load_into, (mh_heap *h, mh_handle x, uint32_t slot, mh_handle dest), (h, x, slot, dest))
MH_LOCKED(int, mh_store, (mh_heap *h, mh_handle x, uint32_t slot, mh_handle value), (h, x, slot, value))
MH_LOCKED(uint8_t *, mh_payload, (mh_heap *h, mh_handle x), (h, x))
