/*
 * serial.h: the generational copying collector's entry points, for its
 * collector record (collector.c).
 */
#ifndef MH_SERIAL_H
#define MH_SERIAL_H

#include "internal.h"

mh_handle serial_alloc(mh_heap *h, uint32_t nrefs, uint32_t nbytes);
mh_handle serial_alloc_try(mh_heap *h, uint32_t nrefs, uint32_t nbytes);
int serial_verify(mh_heap *h);

#endif
