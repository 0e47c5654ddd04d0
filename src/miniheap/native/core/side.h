/*
 * side.h: per-region side tables that follow use.
 *
 * A collector keeps metadata beside each region (the serial collector: a mark
 * bitmap, 1/64 of the region, and a block-offset table, 1/128). Sized for the
 * whole reservation, a 4 TiB heap would need 96 GiB of them before holding a
 * byte. Instead each region gets one block, allocated with malloc when the
 * region is committed and freed when it is uncommitted: memory follows the
 * regions in use, and the core still never calls the kernel.
 *
 * Why malloc'd blocks and not one big reservation of the whole table: giving
 * the pages of a flat table back (when regions are uncommitted) needs
 * madvise, a kernel call the core must not make, or a callback through which
 * the embedder would do it for the core's own malloc'd memory. One block per
 * region is freed by free(), and a region's block is where its tables are
 * found with one load. The card table is the exception: the write barrier
 * (and the inline fast path of C mutators) indexes it by address, so it stays
 * one flat array, reserved by calloc (untouched pages cost nothing) and only
 * 1/512 of the heap.
 *
 * Parts of a block are reserved at heap creation (side_reserve), before any
 * region is committed; every part starts 8-byte aligned.
 */
#ifndef MH_SIDE_H
#define MH_SIDE_H

#include <stddef.h>
#include <stdint.h>

struct mh_heap;

int side_init(struct mh_heap *h);                         /* the per-region pointer array */
size_t side_reserve(struct mh_heap *h, size_t bytes);      /* a part of every block: its offset */
int side_alloc(struct mh_heap *h, uint32_t r);             /* 0, or -1 out of memory */
void side_free(struct mh_heap *h, uint32_t r);
void side_free_all(struct mh_heap *h);

#endif
