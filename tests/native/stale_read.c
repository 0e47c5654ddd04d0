/*
 * stale_read.c: keep a raw pointer to an object across a collection and read
 * through it. The collector has moved the object and poisoned the space it
 * left, so AddressSanitizer must report the read (use-after-poison). Argument:
 * "young" (eden after a flip) or "full" (an evacuated, freed old region).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "miniheap.h"

int main(int argc, char **argv)
{
    int full = argc > 1 && strcmp(argv[1], "full") == 0;
    size_t size = 4u << 20;
    void *mem = aligned_alloc(1u << 20, size);
    mh_config c = {0};
    c.heap_size = size;
    c.region_size = 64 * 1024;
    c.young_size = 16 * c.region_size;
    c.survivor_ratio = 6;
    c.tenuring_threshold = 0; /* every survivor goes to old at its first collection */
    c.max_handles = 64;
    c.view_base[0] = (uint64_t)(uintptr_t)mem;
    char err[256];
    mh_heap *h = mh_heap_new(&c, err, sizeof err);
    if (!h) {
        fprintf(stderr, "mh_heap_new: %s\n", err);
        return 2;
    }
    mh_handle x = mh_alloc(h, 0, 64);
    /* garbage that dies after promotion: x's region is left sparse, and the last piece spills
     * into a second region, which becomes the promotion region (never evacuated) */
    mh_handle garbage[3];
    for (int i = 0; i < 3; i++)
        garbage[i] = mh_alloc(h, 0, 30000);
    mh_collect(h, 0); /* all promoted to old */
    for (int i = 0; i < 3; i++)
        mh_release(h, garbage[i]);
    volatile uint8_t *stale = mh_payload(h, x);
    if (full)
        mh_collect(h, 1); /* evacuates x's sparse region and frees it */
    else {
        stale = mh_payload(h, mh_alloc(h, 0, 64)); /* a fresh eden object */
        mh_collect(h, 0);                          /* moves it out of eden */
    }
    printf("reading through a stale pointer\n");
    fflush(stdout);
    printf("read %d\n", stale[0]); /* ASan must stop here */
    mh_heap_free(h);
    free(mem);
    return 0;
}
