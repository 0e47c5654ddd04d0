/*
 * object.h: the layout of a heap object.
 *
 *   word 0   shape: nrefs (bits 0..31) | nbytes (bits 32..63)
 *   word 1   meta:  age (bits 0..3) | flags (bits 4..7) | magic 0x6d (bits 8..15)
 *                   | forwarding offset / 8 (bits 16..63, only while FORWARDED)
 *   nrefs words   reference slots (mh_ref; 0 is null)
 *   payload       nbytes, rounded up to 8
 *
 * Sizes are multiples of 8 and objects are laid end to end, so every space is
 * parsable from its start given its top: the collector walks regions
 * linearly (evacuation, zapping, verification, card scanning).
 *
 * The forwarding address lives in the header only during a young collection:
 * from-space is dead once the Cheney scan ends, so nobody reads it later. A
 * full collection leaves stale references behind in coloured mode and so
 * forwards through off-heap tables instead (forwarding.c).
 *
 * The magic byte lets the verifier tell a header from garbage.
 */
#ifndef MH_OBJECT_H
#define MH_OBJECT_H

#include <stdint.h>
#include <string.h>
#include "miniheap.h"

#define OBJ_HEADER_BYTES 16u
#define OBJ_MAX_NREFS ((1u << 24) - 1)
#define OBJ_MAX_AGE 15u

#define OBJ_AGE_MASK 0x0full
#define OBJ_FORWARDED 0x10ull   /* young GC: bits 16.. hold the new offset */
#define OBJ_FILLER 0x20ull      /* a dead object overwritten in place: no slots */
#define OBJ_HUMONGOUS 0x40ull   /* allocated directly in old, never moved */
#define OBJ_FLAGS_MASK 0xf0ull
#define OBJ_MAGIC 0x6d00ull
#define OBJ_MAGIC_MASK 0xff00ull

typedef struct mh_object {
    uint64_t shape;
    uint64_t meta;
} mh_object;

static inline uint64_t obj_size_for(uint64_t nrefs, uint64_t nbytes)
{
    return OBJ_HEADER_BYTES + 8 * nrefs + ((nbytes + 7) & ~7ull);
}

static inline uint32_t obj_nrefs(const mh_object *o) { return (uint32_t)o->shape; }
static inline uint32_t obj_nbytes(const mh_object *o) { return (uint32_t)(o->shape >> 32); }
static inline uint64_t obj_size(const mh_object *o) { return obj_size_for(obj_nrefs(o), obj_nbytes(o)); }
static inline mh_ref *obj_slots(mh_object *o) { return (mh_ref *)(o + 1); }
static inline uint8_t *obj_payload(mh_object *o) { return (uint8_t *)(obj_slots(o) + obj_nrefs(o)); }
static inline unsigned obj_age(const mh_object *o) { return (unsigned)(o->meta & OBJ_AGE_MASK); }
static inline int obj_is_filler(const mh_object *o) { return (o->meta & OBJ_FILLER) != 0; }
static inline int obj_is_forwarded(const mh_object *o) { return (o->meta & OBJ_FORWARDED) != 0; }
static inline uint64_t obj_forwardee(const mh_object *o) { return (o->meta >> 16) << 3; }

/* Offset of the first reference slot, from the object start. */
static inline uint64_t obj_slot_offset(uint32_t slot) { return OBJ_HEADER_BYTES + 8ull * slot; }

static inline void obj_init(mh_object *o, uint32_t nrefs, uint32_t nbytes, uint64_t flags)
{
    uint64_t body = obj_size_for(nrefs, nbytes) - OBJ_HEADER_BYTES;
    uint64_t *w = (uint64_t *)(o + 1);
    /* small objects (the common case): a few word stores, not a call to memset */
    if (body <= 64) {
        for (uint64_t i = 0; i < body / 8; i++) {
            __asm__("" : "+r"(i)); /* keep it a loop: GCC would turn it back into memset */
            w[i] = 0;
        }
    } else {
        memset(w, 0, body);
    }
    o->shape = (uint64_t)nrefs | ((uint64_t)nbytes << 32);
    o->meta = OBJ_MAGIC | flags;
}

static inline void obj_set_age(mh_object *o, unsigned age)
{
    if (age > OBJ_MAX_AGE)
        age = OBJ_MAX_AGE;
    o->meta = (o->meta & ~OBJ_AGE_MASK) | age;
}

static inline void obj_forward_to(mh_object *o, uint64_t offset)
{
    o->meta = (o->meta & 0xffffull) | OBJ_FORWARDED | ((offset >> 3) << 16);
}

/* A dead object becomes a slot-less filler of the same size, so the space
 * stays parsable and no stale reference inside it is ever read again. */
static inline void obj_make_filler(mh_object *o, uint64_t size)
{
    o->shape = (size - OBJ_HEADER_BYTES) << 32;
    o->meta = OBJ_MAGIC | OBJ_FILLER;
}

static inline int obj_header_sane(const mh_object *o)
{
    return (o->meta & OBJ_MAGIC_MASK) == OBJ_MAGIC && obj_nrefs(o) <= OBJ_MAX_NREFS;
}

#endif
