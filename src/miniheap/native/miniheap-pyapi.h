/*
 * miniheap-pyapi.h: the functions the C-level Python Ref (miniheap._ref, a
 * CPython extension type) calls in the core (C only; cffi does not parse it).
 *
 * The core is built once, into miniheap._native (cffi). The extension is a
 * second shared object; were the core compiled into it as well, there would be
 * two copies of the core's globals and thread-locals (the per-thread last
 * error), and a heap made by one copy would be used by the other. So the core
 * hands out this table instead: mh_python_api() returns its address, Python
 * passes it to the extension at import, and the extension calls through it.
 *
 * Python calls keep the GIL on their fast path, so those must never block
 * (another thread may hold the heap and wait for the GIL: a deadlock). The
 * *_try functions take the heap's lock only if it is free, and do only what
 * cannot collect: they return MH_WOULD_BLOCK when the lock is taken, or when
 * an allocation needs its slow path (a collection, which calls back into
 * Python, or a humongous object). The extension then releases the GIL and
 * calls the blocking function, the public API's.
 */
#ifndef MINIHEAP_PYAPI_H
#define MINIHEAP_PYAPI_H

#include <stdint.h>
#include "miniheap.h"

#define MH_WOULD_BLOCK -5
#define MH_PYAPI_VERSION 1

typedef struct mh_pyapi {
    uint32_t version;     /* MH_PYAPI_VERSION */
    uint32_t size;        /* sizeof(mh_pyapi) */
    /* never block: a result, an error (MH_ERROR; mh_last_error says which), or MH_WOULD_BLOCK */
    mh_handle (*alloc_try)(mh_heap *h, uint32_t nrefs, uint32_t nbytes);
    mh_handle (*load_try)(mh_heap *h, mh_handle object, uint32_t slot);
    int (*store_try)(mh_heap *h, mh_handle object, uint32_t slot, mh_handle value);
    int (*release_try)(mh_heap *h, mh_handle handle);
    /* may block and collect: call with the GIL released */
    mh_handle (*alloc)(mh_heap *h, uint32_t nrefs, uint32_t nbytes);
    mh_handle (*load)(mh_heap *h, mh_handle object, uint32_t slot);
    int (*store)(mh_heap *h, mh_handle object, uint32_t slot, mh_handle value);
    int (*release)(mh_heap *h, mh_handle handle);
} mh_pyapi;

#endif
