/*
 * object.h: the layout of a heap object. One header word, then the slots,
 * then the payload:
 *
 *   header   bits 0..7    tag: FORWARDED (bit 0), FILLER (1), HUMONGOUS (2),
 *                         SELF_FORWARDED (3), age (4..7)
 *            bits 8..27   nrefs
 *            bits 28..31  magic 0xa
 *            bits 32..63  nbytes
 *   nrefs words   reference slots (mh_ref; 0 is null)
 *   payload       nbytes, rounded up to 8
 *
 * One word, as a JVM object with compressed class pointers has a mark word and
 * a 4-byte class word: a GCBench node (2 references and 8 bytes) takes 32
 * bytes, as it does on the JDK. The header holds the shape itself (there is no
 * class to point to), so the slot count is limited to 20 bits.
 *
 * Sizes are multiples of 8 and objects are laid end to end, so every space is
 * parsable from its start given its top: the collector walks regions
 * linearly (evacuation, zapping, verification, card scanning).
 *
 * Forwarding (the serial young collection only): a copied object's header is
 * replaced by the copy's heap offset with bit 0 set. The offset is a multiple
 * of 8, so the word is the forwarding pointer and its tag at once, and the
 * shape is still there, in the copy's header. An object that could not be
 * copied (promotion failure) keeps its header and is marked SELF_FORWARDED:
 * HotSpot writes the object's own address into the mark word and saves the
 * mark aside; a flag beside the shape needs no side table. The zgc collector
 * never forwards in the header (mutators and its GC thread race on
 * forwarding, so it keeps it off-heap).
 *
 * Only this file reads or writes header bits: everything else (the
 * collectors, the verifier, the inline fast path of miniheap-inline.h) uses
 * the functions below.
 */
#ifndef MH_OBJECT_H
#define MH_OBJECT_H

#include <stdint.h>
#include <string.h>
#include "miniheap.h"

#define OBJ_HEADER_BYTES ((unsigned)MH_HEADER_BYTES)
#define OBJ_MAX_NREFS ((1u << 20) - 1)
#define OBJ_MAX_AGE 15u

#define OBJ_FORWARDED 0x1ull       /* young GC: the other bits are the copy's offset */
#define OBJ_FILLER 0x2ull          /* a dead object overwritten in place: no slots */
#define OBJ_HUMONGOUS 0x4ull       /* allocated directly in old, never moved */
#define OBJ_SELF_FORWARDED 0x8ull  /* young GC: could not be copied, stays where it is */
#define OBJ_AGE_SHIFT 4
#define OBJ_AGE_MASK (0xfull << OBJ_AGE_SHIFT)
#define OBJ_NREFS_SHIFT 8
#define OBJ_MAGIC (0xaull << 28)
#define OBJ_MAGIC_MASK (0xfull << 28)

typedef struct mh_object {
    uint64_t header;
} mh_object;

/* ---- sizes and shapes, from a header word --------------------------------- */

static inline uint64_t obj_size_for(uint64_t nrefs, uint64_t nbytes)
{
    return OBJ_HEADER_BYTES + 8 * nrefs + ((nbytes + 7) & ~7ull);
}

static inline uint64_t hdr_make(uint32_t nrefs, uint32_t nbytes, uint64_t flags)
{
    return (uint64_t)nrefs << OBJ_NREFS_SHIFT | OBJ_MAGIC | (uint64_t)nbytes << 32 | flags;
}

static inline uint32_t hdr_nrefs(uint64_t w) { return (uint32_t)(w >> OBJ_NREFS_SHIFT) & OBJ_MAX_NREFS; }
static inline uint32_t hdr_nbytes(uint64_t w) { return (uint32_t)(w >> 32); }
static inline uint64_t hdr_size(uint64_t w) { return obj_size_for(hdr_nrefs(w), hdr_nbytes(w)); }
static inline unsigned hdr_age(uint64_t w) { return (unsigned)((w & OBJ_AGE_MASK) >> OBJ_AGE_SHIFT); }

/* The same header one collection older (the age saturates at 15). */
static inline uint64_t hdr_older(uint64_t w)
{
    return w + ((uint64_t)((w & OBJ_AGE_MASK) != OBJ_AGE_MASK) << OBJ_AGE_SHIFT);
}

/* ---- objects ---------------------------------------------------------------- */

static inline uint64_t obj_header(const mh_object *o) { return o->header; }
static inline uint32_t obj_nrefs(const mh_object *o) { return hdr_nrefs(o->header); }
static inline uint32_t obj_nbytes(const mh_object *o) { return hdr_nbytes(o->header); }
static inline uint64_t obj_size(const mh_object *o) { return hdr_size(o->header); }
static inline mh_ref *obj_slots(mh_object *o) { return (mh_ref *)(o + 1); }
static inline uint8_t *obj_payload(mh_object *o) { return (uint8_t *)(obj_slots(o) + obj_nrefs(o)); }
static inline unsigned obj_age(const mh_object *o) { return hdr_age(o->header); }
/* (Bits 1 and 2 are 0 in a forwarded header too: a forwarding offset is a multiple of 8.) */
static inline int obj_is_filler(const mh_object *o) { return (o->header & OBJ_FILLER) != 0; }
static inline int obj_is_humongous(const mh_object *o) { return (o->header & OBJ_HUMONGOUS) != 0; }

/* Offset of a reference slot from the object start. */
static inline uint64_t obj_slot_offset(uint32_t slot) { return OBJ_HEADER_BYTES + 8ull * slot; }

/* Zero the slots and the payload of a new object, then write its header.
 * Small bodies (the common case) are a few word stores, chosen by a switch:
 * with a constant shape (the inline fast path's usual case) the compiler
 * keeps just the stores; a loop would become a call to memset. */
static inline __attribute__((always_inline)) void obj_init(mh_object *o, uint32_t nrefs, uint32_t nbytes,
                                                          uint64_t flags)
{
    uint64_t words = (obj_size_for(nrefs, nbytes) - OBJ_HEADER_BYTES) >> 3;
    uint64_t *w = (uint64_t *)(o + 1);
    switch (words) {
    case 8: w[7] = 0; /* fall through */
    case 7: w[6] = 0; /* fall through */
    case 6: w[5] = 0; /* fall through */
    case 5: w[4] = 0; /* fall through */
    case 4: w[3] = 0; /* fall through */
    case 3: w[2] = 0; /* fall through */
    case 2: w[1] = 0; /* fall through */
    case 1: w[0] = 0; /* fall through */
    case 0: break;
    default: memset(w, 0, words << 3);
    }
    o->header = hdr_make(nrefs, nbytes, flags);
}

static inline void obj_set_age(mh_object *o, unsigned age)
{
    if (age > OBJ_MAX_AGE)
        age = OBJ_MAX_AGE;
    o->header = (o->header & ~OBJ_AGE_MASK) | (uint64_t)age << OBJ_AGE_SHIFT;
}

/* A dead object (or dead space) becomes a slot-less filler of the same size,
 * so the space stays parsable and no stale reference inside it is ever read
 * again. Any size from 8 bytes up to 4 GiB + 8. */
static inline void obj_make_filler(mh_object *o, uint64_t size)
{
    o->header = hdr_make(0, (uint32_t)(size - OBJ_HEADER_BYTES), OBJ_FILLER);
}

/* Whether the word looks like a header the heap wrote (and not forwarded). */
static inline int obj_header_sane(const mh_object *o)
{
    return (o->header & (OBJ_MAGIC_MASK | OBJ_FORWARDED)) == OBJ_MAGIC;
}

/* ---- forwarding in the header: the serial young collection only ------------- */

static inline int hdr_is_forwarded(uint64_t w) { return (w & OBJ_FORWARDED) != 0; }
/* The copy's heap offset, from a forwarded header. */
static inline uint64_t hdr_forwardee(uint64_t w) { return w & ~OBJ_FORWARDED; }
static inline int obj_is_forwarded(const mh_object *o) { return hdr_is_forwarded(o->header); }
/* A copy's header, computed from the original's (hdr_older) without re-reading it. */
static inline void obj_set_header(mh_object *o, uint64_t w) { o->header = w; }
static inline void obj_forward_to(mh_object *o, uint64_t offset) { o->header = offset | OBJ_FORWARDED; }

/* (Bit 3 of a forwarded header belongs to the offset: test both bits.) */
static inline int hdr_is_self_forwarded(uint64_t w)
{
    return (w & (OBJ_SELF_FORWARDED | OBJ_FORWARDED)) == OBJ_SELF_FORWARDED;
}
static inline int obj_is_self_forwarded(const mh_object *o) { return hdr_is_self_forwarded(o->header); }
static inline void obj_self_forward(mh_object *o) { o->header |= OBJ_SELF_FORWARDED; }
static inline void obj_clear_self_forward(mh_object *o) { o->header &= ~OBJ_SELF_FORWARDED; }

#endif
