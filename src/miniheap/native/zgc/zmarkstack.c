/*
 * zmarkstack.c: mark stacks and the chunks mutators publish (zmarkstack.h).
 */
#include <stdlib.h>
#include <string.h>
#include "zmarkstack.h"

bool zstack_reserve(zmarkstack *s, size_t n)
{
    if (s->cap >= n)
        return true;
    uint64_t *bigger = realloc(s->items, n * sizeof *bigger);
    if (!bigger)
        return false;
    s->items = bigger;
    s->cap = n;
    return true;
}

bool zstack_push(zmarkstack *s, uint64_t off)
{
#ifdef MH_TEST_MARK_STACK_CAP /* tests: a tiny stack, to exercise the overflow rescan */
    if (s->top >= MH_TEST_MARK_STACK_CAP)
        return false;
#endif
    if (s->top == s->cap && !zstack_reserve(s, s->cap ? 2 * s->cap : ZMARK_STACK_MIN))
        return false;
    s->items[s->top++] = off;
    return true;
}

void zstack_free(zmarkstack *s)
{
    free(s->items);
    s->items = NULL;
    s->top = s->cap = 0;
}

void zstack_shrink(zmarkstack *s)
{
    if (s->top != 0 || s->cap <= ZMARK_STACK_MIN)
        return;
    uint64_t *smaller = realloc(s->items, ZMARK_STACK_MIN * sizeof *smaller);
    if (smaller) { /* else the bigger one stays: still a stack */
        s->items = smaller;
        s->cap = ZMARK_STACK_MIN;
    }
}

void zpublished_init(zpublished *p)
{
    pthread_mutex_init(&p->lock, NULL);
    p->head = NULL;
    p->nitems = 0;
}

void zpublished_free(zpublished *p)
{
    for (zchunk *c = p->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    p->head = NULL;
    pthread_mutex_destroy(&p->lock);
}

bool zpublish(zpublished *p, zmarkstack *s)
{
    if (s->top == 0)
        return true;
    zchunk *c = malloc(sizeof *c + s->top * sizeof(uint64_t));
    if (!c)
        return false;
    c->n = s->top;
    memcpy(c->items, s->items, s->top * sizeof(uint64_t));
    s->top = 0;
    pthread_mutex_lock(&p->lock);
    c->next = p->head;
    p->head = c;
    size_t n = __atomic_add_fetch(&p->nitems, c->n, __ATOMIC_RELEASE);
    if (n * sizeof(uint64_t) > p->bytes_high)
        p->bytes_high = n * sizeof(uint64_t);
    pthread_mutex_unlock(&p->lock);
    return true;
}

bool zpublished_take(zpublished *p, zmarkstack *dst)
{
    if (zpublished_empty(p))
        return false;
    pthread_mutex_lock(&p->lock);
    zchunk *c = p->head;
    if (c) {
        p->head = c->next;
        __atomic_sub_fetch(&p->nitems, c->n, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&p->lock);
    if (!c)
        return false;
    bool ok = true;
    for (size_t i = 0; i < c->n; i++)
        ok &= zstack_push(dst, c->items[i]);
    free(c);
    return ok;
}
