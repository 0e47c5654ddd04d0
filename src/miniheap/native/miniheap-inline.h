/*
 * miniheap-inline.h: the inline fast path for C mutators (C only; cffi does
 * not parse this file).
 *
 * A JIT compiles an allocation into a bump of a thread-local pointer, a field
 * store into a store and a card mark, a field load into a load and a colour
 * test: a few instructions each, with a call only on the rare slow path. A C
 * embedder gets the same here. It attaches a *mutator record* (one per thread)
 * holding what those instructions need: the allocation buffer, the card table,
 * the barrier's mask. The static inline functions below use the record; when
 * the fast path cannot finish (the buffer is full, a reference is stale) they
 * call an out-of-line slow path in the core.
 *
 *     mh_mutator *m = mh_mutator_attach(heap);      holds the heap (as mh_lock)
 *     uint32_t frame = mh_frame(m);
 *     uint32_t list = mh_push(m, 0);                a root: the shadow stack
 *     for (...) {
 *         mh_ref node = mh_new(m, 1, 8);            may collect: roots are updated
 *         if (!node) ...                            mh_last_error(heap) says why
 *         mh_put(m, node, 0, mh_root(m, list));     store with the card mark
 *         mh_set_root(m, list, node);
 *     }
 *     mh_ref second = mh_get(m, mh_root(m, list), 0);  load with the colour test
 *     mh_unwind(m, frame);
 *     mh_mutator_detach(m);
 *
 * When a raw reference stays valid. An mh_ref held in a C variable names an
 * object at one address; a collection moves objects and updates only the
 * roots it knows (handles, shadow stacks, the heap itself). So a raw mh_ref is
 * valid until the next call that may collect or stop at a safepoint: mh_new
 * (its slow path may collect, and nobody can tell in advance whether it will
 * take it), mh_poll, and every public function of miniheap.h. mh_get, mh_put,
 * the shadow-stack functions and the accessors below never collect. Keep
 * every reference you need across such a call in the shadow stack (mh_push,
 * then read it back with mh_root after the call), or in a handle. The same
 * holds for mh_data's pointer.
 *
 * The shadow stack is an array of roots in the record: mh_push appends (0,
 * null, is allowed), mh_root/mh_set_root read and write an entry, mh_unwind
 * drops everything above a saved mh_frame. The collector reads and updates
 * every entry below nroots. It grows on demand (mh_push calls the core when
 * it is full).
 *
 * What the record means for the collector that fills it (and who may
 * change it): top/limit and the rest are written by the core only, at attach,
 * after every slow path and after every public call this thread makes while
 * attached. The serial collector hands the mutator eden itself: top/limit
 * are eden's bump pointer and end, as addresses in the heap's good view, and
 * a new object's reference is its address (ref_bits 0). Setting limit to 0
 * sends every allocation and poll to the slow path: the way a concurrent
 * collector (zgc, DESIGN-C.md section 4) stops mutators at a safepoint, and the
 * way a sanitizer build of the core that cannot trust the embedder's inline
 * code keeps every allocation in the core.
 *
 * Statistics: the record counts nothing per object. Allocated bytes are read
 * from the bump pointer when a collection starts (stats.bytes_allocated);
 * objects_allocated, stores and loads_fast count only the handle API's calls.
 *
 * Threads: mh_mutator_attach holds the heap for the thread (as mh_lock does)
 * until mh_mutator_detach; other threads' calls wait meanwhile. A thread may
 * attach one record per heap. The record belongs to its thread: never pass it
 * to another.
 */
#ifndef MINIHEAP_INLINE_H
#define MINIHEAP_INLINE_H

#include <stdint.h>
#include "miniheap.h"
#include "core/object.h"

#if defined(__SANITIZE_ADDRESS__)
#define MH_INLINE_SANITIZED 1
#else
#define MH_INLINE_SANITIZED 0
#endif

/* Objects up to this size may be bump-allocated inline (a compile-time bound:
 * with constant arguments the test folds away). Larger ones, which may be
 * humongous, always take the slow path. */
#define MH_INLINE_MAX_BYTES 4096u

/* The card table, as the collector keeps it: one byte per 512 heap bytes. */
#define MH_CARD_SHIFT 9
#define MH_CARD_DIRTY 1

/* mh_mutator_attach_flags: the inline code of this translation unit was built
 * with AddressSanitizer, so it marks each object it allocates addressable. */
#define MH_ATTACH_SANITIZED 1u

typedef struct mh_mutator {
    /* --- read by the inline fast paths (hot fields first) --- */
    uint64_t top, limit;      /* allocation buffer [top, limit): addresses in the allocation view;
                                 limit 0 forces the slow path (safepoint poll, a collection,
                                 a new buffer) */
    uint64_t ref_bits;        /* or'ed into an address to make a new object's ref (good colour) */
    uint64_t bad_mask;        /* load barrier: a ref with any of these bits is stale */
    uint64_t addr_base;       /* ref -> address: (ref >> addr_shift) + addr_base */
    uint32_t addr_shift;      /* (0 and 0 with multi-mapped views: a ref is an address) */
    uint32_t nroots;          /* shadow stack: roots[0, nroots) are live roots */
    uintptr_t card_base;      /* biased card table: byte (card_base + (slot_address >> 9)) */
    uint64_t card_from;       /* a store into a slot at address >= card_from marks its card
                                 (serial: the end of young in the good view) */
    mh_ref *roots;            /* shadow stack: the collector reads and updates it */
    uint32_t maxroots;
    uint32_t flags;           /* MH_ATTACH_* given at attach */
    mh_heap *heap;
    /* --- private to the core --- */
    struct mh_mutator *next;  /* the heap's list of attached records */
    uintptr_t thread;         /* the attached thread */
} mh_mutator;

/* Out of line, in the core (core/mutator.c). Not in miniheap.h's cdef section:
 * Python uses the handle API. */
mh_mutator *mh_mutator_attach_flags(mh_heap *heap, uint32_t flags);
void mh_mutator_detach(mh_mutator *m);
mh_ref mh_new_slow(mh_mutator *m, uint32_t nrefs, uint32_t nbytes);
mh_ref mh_get_slow(mh_mutator *m, mh_ref *field, mh_ref stale);
void mh_poll_slow(mh_mutator *m);
int mh_roots_grow(mh_mutator *m);
void mh_mutator_unpoison(mh_mutator *m, uint64_t address, uint64_t size);
/* A handle for a raw reference (a root that outlives the call and the
 * record), or MH_ERROR; release it with mh_release. */
mh_handle mh_mutator_handle(mh_mutator *m, mh_ref ref);

#define MH_INLINE static inline __attribute__((always_inline))

/* The record's limit: a concurrent collector's GC thread sets it to 0 to stop
 * the mutator at its next allocation or poll, so it is read as an atomic
 * (relaxed: a plain load on x86-64). */
MH_INLINE uint64_t mh_limit(const mh_mutator *m) { return __atomic_load_n(&m->limit, __ATOMIC_RELAXED); }

/* NULL when the heap is not usable or this thread has a record attached
 * already (mh_last_error says which). */
MH_INLINE mh_mutator *mh_mutator_attach(mh_heap *heap)
{
    return mh_mutator_attach_flags(heap, MH_INLINE_SANITIZED ? MH_ATTACH_SANITIZED : 0);
}

/* The address of the object a reference names. */
MH_INLINE mh_object *mh_obj(const mh_mutator *m, mh_ref ref)
{
    return (mh_object *)(uintptr_t)((ref >> m->addr_shift) + m->addr_base);
}

/* A new object of nrefs null slots and nbytes of zeroed payload; 0 when the
 * heap cannot make one (mh_last_error(m->heap) says why). May collect. */
MH_INLINE mh_ref mh_new(mh_mutator *m, uint32_t nrefs, uint32_t nbytes)
{
    uint64_t size = obj_size_for(nrefs, nbytes);
    uint64_t top = m->top;
    if (__builtin_expect(size <= MH_INLINE_MAX_BYTES && top + size <= mh_limit(m), 1)) {
        m->top = top + size;
        if (MH_INLINE_SANITIZED)
            mh_mutator_unpoison(m, top, size);
        obj_init((mh_object *)(uintptr_t)top, nrefs, nbytes, 0);
        return ((top - m->addr_base) << m->addr_shift) | m->ref_bits;
    }
    return mh_new_slow(m, nrefs, nbytes);
}

/* Load a reference slot, through the load barrier. No bounds check: slot < nrefs. */
MH_INLINE mh_ref mh_get(mh_mutator *m, mh_ref obj, uint32_t slot)
{
    mh_ref *field = &obj_slots(mh_obj(m, obj))[slot];
    /* acquire: a concurrent collector may have healed the field with a copy it just made
     * (on x86-64 a plain load) */
    mh_ref v = __atomic_load_n(field, __ATOMIC_ACQUIRE);
    if (__builtin_expect((v & m->bad_mask) != 0, 0))
        v = mh_get_slow(m, field, v);
    return v;
}

/* Store a reference (or 0) into a slot, with the card mark: a store into an
 * old object marks the card of the slot, whatever the value, as HotSpot's
 * card-marking barrier does. No bounds check: slot < nrefs. */
MH_INLINE void mh_put(mh_mutator *m, mh_ref obj, uint32_t slot, mh_ref value)
{
    mh_ref *field = &obj_slots(mh_obj(m, obj))[slot];
    /* release: a concurrent collector reading the field sees the referent initialised
     * (on x86-64 a plain store) */
    __atomic_store_n(field, value, __ATOMIC_RELEASE);
#ifndef MH_TEST_NO_INLINE_CARD_MARK /* tests only: a build that must be caught */
    uint64_t address = (uint64_t)(uintptr_t)field;
    if (address >= m->card_from)
        *(volatile uint8_t *)(m->card_base + (address >> MH_CARD_SHIFT)) = MH_CARD_DIRTY;
#endif
}

/* A safepoint poll: call it in long loops that neither allocate nor call the
 * heap, so that a collector that needs the mutator stopped can have it. */
MH_INLINE void mh_poll(mh_mutator *m)
{
    if (__builtin_expect(mh_limit(m) == 0, 0))
        mh_poll_slow(m);
}

/* Shape and payload of an object (the payload pointer is valid as long as the
 * reference is: until the next call that may collect). */
MH_INLINE uint32_t mh_nrefs_of(const mh_mutator *m, mh_ref obj) { return obj_nrefs(mh_obj(m, obj)); }
MH_INLINE uint32_t mh_nbytes_of(const mh_mutator *m, mh_ref obj) { return obj_nbytes(mh_obj(m, obj)); }
MH_INLINE uint8_t *mh_data(const mh_mutator *m, mh_ref obj) { return obj_payload(mh_obj(m, obj)); }

/* ---- the shadow stack ------------------------------------------------------ */

/* Push a root; its index, or UINT32_MAX if the stack could not grow (the heap's
 * error says so). */
MH_INLINE uint32_t mh_push(mh_mutator *m, mh_ref ref)
{
    if (__builtin_expect(m->nroots == m->maxroots, 0) && mh_roots_grow(m) != 0)
        return UINT32_MAX;
    m->roots[m->nroots] = ref;
    return m->nroots++;
}

MH_INLINE mh_ref mh_root(const mh_mutator *m, uint32_t index) { return m->roots[index]; }
MH_INLINE void mh_set_root(mh_mutator *m, uint32_t index, mh_ref ref) { m->roots[index] = ref; }
MH_INLINE uint32_t mh_frame(const mh_mutator *m) { return m->nroots; }
MH_INLINE void mh_unwind(mh_mutator *m, uint32_t frame) { m->nroots = frame; }
MH_INLINE void mh_pop(mh_mutator *m, uint32_t n) { m->nroots -= n; }

#endif
