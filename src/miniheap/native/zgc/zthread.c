/*
 * zthread.c: the GC thread (one: JDK 17 uses as many concurrent workers as
 * -XX:ConcGCThreads, and a director thread; miniheap's one thread is both).
 *
 * It sleeps until a tick or a request, asks the director whether to start a
 * cycle, and runs it: pauses at a safepoint, concurrent phases without the
 * heap. Requests come from mh_collect (System.gc(): the caller waits for a
 * cycle that starts after its call) and from allocation stalls. It never
 * calls the embedder: events are posted (core/events.c) and mutators
 * deliver them. Closing the heap stops it before anything is freed.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "zgc.h"
#include "safepoint.h"

#define TICK_NS 100000000ull /* 10 Hz, the JDK director's rate */

static uint64_t tick_ns(const zheap *z)
{
    uint64_t interval = (uint64_t)z->h->config.collection_interval_ms * 1000000ull;
    if (interval && interval < TICK_NS)
        return interval;
    return TICK_NS;
}

static void wait_until(zheap *z, uint64_t deadline_ns)
{
    /* ctl_cond uses CLOCK_MONOTONIC (zthread_start), as clock_ns does */
    struct timespec ts = {(time_t)(deadline_ns / 1000000000ull), (long)(deadline_ns % 1000000000ull)};
    pthread_cond_timedwait(&z->ctl_cond, &z->ctl_lock, &ts);
}

static void *gc_main(void *arg)
{
    mh_heap *h = arg;
    zheap *z = h->z;
    pthread_mutex_lock(&z->ctl_lock);
    uint64_t next_tick = clock_ns() + tick_ns(z);
    z->last_tick_ns = z->last_cycle_end_ns = clock_ns();
    while (!z->stop) {
        int cause = z->requested_cause;
        uint64_t now = clock_ns();
        if (cause < 0 && now >= next_tick) {
            cause = zdirector_decide(z, now);
            next_tick = now + tick_ns(z);
        }
        if (cause < 0) {
            wait_until(z, next_tick);
            continue;
        }
        z->requested_cause = -1;
        z->cycles_started++;
        pthread_mutex_unlock(&z->ctl_lock);
        pthread_mutex_lock(&z->cycle_lock);
        zdriver_cycle(z, cause);
        pthread_mutex_unlock(&z->cycle_lock);
        pthread_mutex_lock(&z->ctl_lock);
    }
    pthread_mutex_unlock(&z->ctl_lock);
    return NULL;
}

/* The GC thread's stack is ours (malloc'd, freed at stop): a stack glibc
 * allocated would stay cached as a mapping after the thread ends, and a heap
 * must leave nothing behind when closed. The thread recurses nowhere. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define STACK_BYTES (8u << 20)
#else
#define STACK_BYTES (1u << 20)
#endif

int zthread_start(mh_heap *h, char *err, size_t errlen)
{
    zheap *z = h->z;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    int rc = posix_memalign(&z->stack, 4096, STACK_BYTES);
    if (rc == 0)
        rc = pthread_attr_setstack(&attr, z->stack, STACK_BYTES);
    /* The GC thread takes no signals (it inherits the mask it is created with):
     * a Ctrl-C is for the program's own threads, which may be waiting for it. */
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    if (rc == 0)
        rc = pthread_create(&z->thread, &attr, gc_main, h);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        free(z->stack);
        z->stack = NULL;
        snprintf(err, errlen, "could not start the GC thread: %s; raise the process's thread "
                 "limit, or use stepping mode", strerror(rc));
        return -1;
    }
    z->thread_started = true;
    return 0;
}

void zthread_stop(mh_heap *h)
{
    zheap *z = h->z;
    if (!z || !z->thread_started)
        return;
    pthread_mutex_lock(&z->ctl_lock);
    __atomic_store_n(&z->stop, true, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&z->ctl_cond);
    pthread_mutex_unlock(&z->ctl_lock);
    /* a GC thread waiting to start a pause needs the heap: if this thread
     * holds it (mh_lock around the close), let go until the thread is gone */
    bool held = heap_held(h);
    heap_hold saved = {0, 0};
    if (held)
        saved = heap_let_go(h);
    pthread_join(z->thread, NULL);
    z->thread_started = false;
    free(z->stack);
    z->stack = NULL;
    if (held)
        heap_take_back(h, saved);
}

void zthread_collect_and_wait(mh_heap *h, int cause)
{
    zheap *z = h->z;
    pthread_mutex_lock(&z->ctl_lock);
    uint64_t target = z->cycles_started + 1; /* one that starts after this call */
    if (z->requested_cause < 0)
        z->requested_cause = cause;
    pthread_cond_broadcast(&z->ctl_cond);
    pthread_mutex_unlock(&z->ctl_lock);
    heap_hold saved = heap_let_go(h);
    pthread_mutex_lock(&z->ctl_lock);
    while (z->cycles_completed < target && !z->stop)
        pthread_cond_wait(&z->ctl_cond, &z->ctl_lock);
    pthread_mutex_unlock(&z->ctl_lock);
    heap_take_back(h, saved);
    if (heap_ok(h))
        heap_poll(h); /* the cycle's event is waiting: deliver it before the caller returns */
}
