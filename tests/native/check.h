/*
 * check.h: the C tests' one assertion. A failed CHECK prints where and why and the test goes on,
 * so a run reports every broken check; main returns failures != 0. Counted with atomics: the zgc
 * tests check from several threads at once.
 */
#ifndef MH_TEST_CHECK_H
#define MH_TEST_CHECK_H

#include <stdio.h>

static int failures, checks;

#define CHECK(cond, ...)                                                               \
    do {                                                                               \
        __atomic_add_fetch(&checks, 1, __ATOMIC_RELAXED);                              \
        if (!(cond)) {                                                                 \
            __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);                        \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                              \
            fputc('\n', stderr);                                                       \
        }                                                                              \
    } while (0)

/* after mh_verify: the heap's own check of every invariant */
#define VERIFY(h) CHECK(mh_verify(h) == 0, "verify: %s", mh_last_error_message(h))

#define KiB 1024ull
#define MiB (1024ull * 1024)

#endif
