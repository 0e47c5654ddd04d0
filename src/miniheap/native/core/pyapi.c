/*
 * pyapi.c: the table of functions miniheap._ref calls (miniheap-pyapi.h).
 */
#include "internal.h"
#include "collector.h"
#include "miniheap-pyapi.h"

/* Never waits: a free heap's lock or none, the collector's fast path or none. */
static mh_handle alloc_try(mh_heap *h, uint32_t nrefs, uint32_t nbytes)
{
    mh_heap *locked = heap_trylock(h);
    if (!locked)
        return MH_WOULD_BLOCK;
    /* a record attached on this thread, or a callback in progress: the blocking path */
    mh_handle x = MH_LIKELY(!h->mutators && !h->busy && h->collector->alloc_try)
                      ? h->collector->alloc_try(h, nrefs, nbytes)
                      : MH_WOULD_BLOCK;
    heap_unlock(locked);
    return x;
}

static const mh_pyapi python_api = {
    .version = MH_PYAPI_VERSION,
    .size = sizeof(mh_pyapi),
    .alloc_try = alloc_try,
    .load_try = load_try,
    .store_try = store_try,
    .release_try = release_try,
    .alloc = mh_alloc,
    .load = mh_load,
    .store = mh_store,
    .release = mh_release,
};

MH_API const void *mh_python_api(void)
{
    return &python_api;
}
