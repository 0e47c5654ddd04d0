/*
 * zmarkstack.h: the stacks of objects still to be traced.
 *
 * The GC thread has its own stack. Mutators push the objects their load
 * barrier marks onto a stack of their own (one for all of them: only the
 * thread holding the heap uses it) and hand it over in chunks, as JDK
 * ZGC's threads publish their thread-local mark stacks to the marking
 * workers. What a mutator has not handed over when the GC thread runs out
 * of work is taken at Pause Mark End; if there is any, marking continues
 * (Concurrent Mark Continue) and Mark End is tried again.
 *
 * Entries are heap offsets of marked objects.
 */
#ifndef MH_ZGC_MARKSTACK_H
#define MH_ZGC_MARKSTACK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct zmarkstack {
    uint64_t *items;
    size_t top, cap;
} zmarkstack;

typedef struct zchunk {
    struct zchunk *next;
    size_t n;
    uint64_t items[];
} zchunk;

typedef struct zpublished {
    pthread_mutex_t lock;
    zchunk *head;
    size_t nitems;            /* atomic, for a lock-free "anything there?" */
    size_t bytes_high;        /* most bytes ever held by the stacks, for the log */
} zpublished;

/* Mutators hand their stack over once it holds this many entries. */
#define ZMARK_PUBLISH_AT 256

/* The GC thread's stack never has less room than this, so that Pause Mark
 * Start pushes the roots' objects without a malloc (see zstack_reserve). */
#define ZMARK_STACK_MIN 1024

/* false if the stack cannot grow (the entry is lost: the caller flags overflow) */
bool zstack_push(zmarkstack *s, uint64_t off);

static inline bool zstack_pop(zmarkstack *s, uint64_t *off)
{
    if (s->top == 0)
        return false;
    *off = s->items[--s->top];
    return true;
}

void zstack_free(zmarkstack *s);
/* Room for n entries without growing; false if out of memory. */
bool zstack_reserve(zmarkstack *s, size_t n);
/* Give an empty stack's memory back, keeping room for ZMARK_STACK_MIN entries. */
void zstack_shrink(zmarkstack *s);

void zpublished_init(zpublished *p);
void zpublished_free(zpublished *p);
/* Move every entry of s into a new chunk; false (s unchanged) if out of memory. */
bool zpublish(zpublished *p, zmarkstack *s);
/* Move one chunk's entries onto dst; false if there was none (or dst cannot grow). */
bool zpublished_take(zpublished *p, zmarkstack *dst);
static inline bool zpublished_empty(zpublished *p)
{
    return __atomic_load_n(&p->nitems, __ATOMIC_ACQUIRE) == 0;
}

#endif
