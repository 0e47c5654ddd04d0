/*
 * ref.c: miniheap._ref, the C-level Python Ref (a CPython extension type).
 *
 * A Python mutator makes three calls per GCBench node: an allocation, a store
 * and, when the Ref goes away, a release. Through cffi each costs a foreign
 * call (the GIL released and taken back) and the release a Python __del__.
 * Here they are methods of a type written against the CPython API that call
 * the core directly, through the table of miniheap-pyapi.h (the core itself
 * lives in miniheap._native: one copy of its globals and thread-locals):
 *
 *   Core.alloc(refs, data)   (bound to each Heap as heap.alloc)
 *   Ref.__getitem__          ref[i], a new Ref or None
 *   Ref.__setitem__          ref[i] = other (or None)
 *   Ref deallocation         the handle is released, no __del__
 *
 * Threads. The fast path keeps the GIL and must never wait for the heap's
 * lock: another thread may hold the heap and be waiting for the GIL (a Python
 * on_gc callback, say). So it calls the core's *_try functions, which take
 * the lock only if it is free and never collect; on MH_WOULD_BLOCK it
 * releases the GIL and calls the blocking function (which may collect, and
 * run the Python callbacks, which take the GIL back). Calls from several
 * threads are serialized by the heap's lock, as they were through cffi: the
 * README's promise holds unchanged.
 *
 * Errors are rare: the core says MH_ERROR, and the Heap's Python code turns
 * the core's last error into the right exception (heap._raise and friends),
 * so every message stays in one place.
 *
 * Everything else a Ref offers (data, address, copy, release, ==, repr...) is
 * written in Python (miniheap/heap.py) and attached to this type, which is a
 * heap type, so its slots follow attribute assignment.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include "miniheap-pyapi.h"

static const mh_pyapi *api;          /* from miniheap._native, set by _ref.init */
static PyTypeObject *ref_type;       /* the Ref type (a heap type made here) */
static PyObject *closed_error;       /* miniheap.errors.HeapClosedError */

/* ---- Core: what a Heap lends its Refs --------------------------------------- */

/* One per Heap: the core's heap pointer (NULL once closed or in a forked child)
 * and a weak reference to the Heap (a Ref keeps its Heap alive; the Core is
 * reached from the Heap and from bound heap.alloc methods, and must not). */
typedef struct {
    PyObject_HEAD
    mh_heap *ptr;
    PyObject *heap_ref;   /* weakref to the Heap */
} Core;

typedef struct {
    PyObject_HEAD
    PyObject *heap;       /* the Heap (strong) */
    Core *core;           /* the Heap's Core (strong) */
    int32_t h;            /* the handle; negative once released */
    PyObject *weakrefs;
} Ref;

static PyTypeObject *core_type;

static int core_init(Core *self, PyObject *args, PyObject *kwds)
{
    PyObject *heap;
    unsigned long long ptr;
    if (!PyArg_ParseTuple(args, "OK", &heap, &ptr))
        return -1;
    PyObject *wr = PyWeakref_NewRef(heap, NULL);
    if (!wr)
        return -1;
    Py_XSETREF(self->heap_ref, wr);
    self->ptr = (mh_heap *)(uintptr_t)ptr;
    return 0;
}

static void core_dealloc(Core *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    Py_XDECREF(self->heap_ref);
    tp->tp_free(self);
    Py_DECREF(tp);
}

/* The Heap closed (or this is a forked child): its Refs and heap.alloc refuse from now on. */
static PyObject *core_close(Core *self, PyObject *unused)
{
    self->ptr = NULL;
    Py_RETURN_NONE;
}

/* The Heap, a new reference; NULL with HeapClosedError set if it is gone. */
static PyObject *core_heap(Core *self)
{
    PyObject *heap = self->heap_ref ? PyWeakref_GetObject(self->heap_ref) : Py_None;
    if (heap == Py_None || heap == NULL) {
        PyErr_SetString(closed_error, "the heap is closed: its objects and Refs can no longer be used; "
                                      "create a new Heap");
        return NULL;
    }
    Py_INCREF(heap);
    return heap;
}

/* Give a handle back. A release that would wait for the lock waits with the GIL
 * released, as any other call, and the call that finally takes the lock
 * delivers the cycles zgc's GC thread finished to on_gc: Python code. A Ref
 * often dies while an exception propagates (its frame unwinding), and that
 * code must neither see nor swallow the exception in flight (the interpreter
 * would go on unwinding with none set, and crash). */
static void release_handle(mh_heap *ptr, int32_t h)
{
    if (api->release_try(ptr, h) != MH_WOULD_BLOCK)
        return;
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    Py_BEGIN_ALLOW_THREADS
    api->release(ptr, h);
    Py_END_ALLOW_THREADS
    PyErr_Restore(type, value, tb);
}

static PyObject *new_ref(PyObject *heap, Core *core, int32_t h)
{
    Ref *ref = PyObject_GC_New(Ref, ref_type);
    if (!ref) {
        /* the handle would be lost: give it back */
        if (core->ptr)
            release_handle(core->ptr, h);
        return NULL;
    }
    Py_INCREF(heap);
    Py_INCREF(core);
    ref->heap = heap;
    ref->core = core;
    ref->h = h;
    ref->weakrefs = NULL;
    PyObject_GC_Track(ref);
    return (PyObject *)ref;
}

/* An int from 0 to 2**32-1, or -1 (no exception left set) for anything else. */
static inline int64_t as_u32(PyObject *v)
{
    if (!PyLong_CheckExact(v))
        return -1;
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || x < 0 || x > (long long)UINT32_MAX) {
        PyErr_Clear();
        return -1;
    }
    return x;
}

/* heap.alloc(refs=0, data=0) */
static PyObject *core_alloc(Core *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *refs = NULL, *data = NULL;
    if (nargs > 2)
        return PyErr_Format(PyExc_TypeError, "alloc() takes at most 2 arguments (refs, data), %zd given", nargs);
    if (nargs > 0)
        refs = args[0];
    if (nargs > 1)
        data = args[1];
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        PyObject **slot = PyUnicode_CompareWithASCIIString(name, "refs") == 0   ? &refs
                          : PyUnicode_CompareWithASCIIString(name, "data") == 0 ? &data
                                                                                : NULL;
        if (!slot || *slot)
            return PyErr_Format(PyExc_TypeError, "alloc() got %s keyword argument %R; it takes refs and data",
                                slot ? "a repeated" : "an unexpected", name);
        *slot = args[nargs + i];
    }
    PyObject *zero = NULL;
    if (!refs || !data) {
        zero = PyLong_FromLong(0);
        if (!zero)
            return NULL;
        if (!refs)
            refs = zero;
        if (!data)
            data = zero;
    }
    PyObject *heap = core_heap(self);
    PyObject *result = NULL;
    if (!heap)
        goto out;
    int64_t nrefs = as_u32(refs), nbytes = as_u32(data);
    mh_heap *ptr = self->ptr;
    mh_handle h = MH_ERROR;
    if (ptr && nrefs >= 0 && nbytes >= 0) {
        h = api->alloc_try(ptr, (uint32_t)nrefs, (uint32_t)nbytes);
        if (h == MH_WOULD_BLOCK) {
            Py_BEGIN_ALLOW_THREADS
            h = api->alloc(ptr, (uint32_t)nrefs, (uint32_t)nbytes);
            Py_END_ALLOW_THREADS
        }
    }
    if (h >= 0) {
        result = new_ref(heap, self, h);
    } else {
        /* the Heap explains: bad arguments, a closed heap, or the core's error */
        PyObject *raised = PyObject_CallMethod(heap, "_raise_alloc", "OO", refs, data);
        Py_XDECREF(raised);
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "miniheap: alloc failed without an error");
    }
    Py_DECREF(heap);
out:
    Py_XDECREF(zero);
    return result;
}

/* core.wrap(handle): a Ref owning a handle the caller got from the core (mh_dup) */
static PyObject *core_wrap(Core *self, PyObject *arg)
{
    long h = PyLong_AsLong(arg);
    if (h == -1 && PyErr_Occurred())
        return NULL;
    if (h < 0 || h > INT32_MAX)
        return PyErr_Format(PyExc_ValueError, "wrap(%ld): not a handle", h);
    PyObject *heap = core_heap(self);
    if (!heap)
        return NULL;
    PyObject *ref = new_ref(heap, self, (int32_t)h);
    Py_DECREF(heap);
    return ref;
}

static PyMethodDef core_methods[] = {
    {"wrap", (PyCFunction)core_wrap, METH_O, "wrap(handle): a Ref that owns the handle"},
    {"alloc", (PyCFunction)(void (*)(void))core_alloc, METH_FASTCALL | METH_KEYWORDS,
     "alloc(refs=0, data=0): a new object with refs null reference slots and data zeroed payload bytes"},
    {"close", (PyCFunction)core_close, METH_NOARGS, "the heap closed: refuse from now on"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot core_slots[] = {
    {Py_tp_doc, "What a Heap lends its Refs: the core's heap pointer. Core(heap, address)."},
    {Py_tp_init, core_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, core_dealloc},
    {Py_tp_methods, core_methods},
    {0, NULL},
};

static PyType_Spec core_spec = {
    .name = "miniheap._ref.Core",
    .basicsize = sizeof(Core),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = core_slots,
};

/* ---- Ref ---------------------------------------------------------------------- */

static int ref_traverse(Ref *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->heap);
    return 0;
}

static int ref_clear(Ref *self)
{
    Py_CLEAR(self->heap);
    return 0;
}

static void ref_dealloc(Ref *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    int32_t h = self->h;
    Core *core = self->core;
    if (h >= 0 && core && core->ptr) {
        /* no __del__: the handle goes back to the table here; a release that would
         * wait for the lock waits with the GIL released, as any other call */
        release_handle(core->ptr, h);
    }
    Py_CLEAR(self->heap);
    Py_CLEAR(self->core);
    PyObject_GC_Del(self);
    Py_DECREF(tp);
}

/* Ref.__new__(Ref): an empty Ref that owns nothing (heap.py fills it in). */
static PyObject *ref_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    Ref *self = (Ref *)type->tp_alloc(type, 0);
    if (self) {
        Py_INCREF(Py_None);
        self->heap = Py_None;
        self->core = NULL;
        self->h = -4; /* released: using it raises ReleasedRefError */
    }
    return (PyObject *)self;
}

/* Ref(): refused. A Ref names an object of a heap, so only the heap makes one;
 * Ref.__new__(Ref) alone (copy and pickle protocols) still gives an empty one. */
static int ref_init(PyObject *self, PyObject *args, PyObject *kwds)
{
    PyErr_SetString(PyExc_TypeError, "a Ref cannot be made directly: heap.alloc(refs, data) makes one "
                                     "for a new object, ref[i] loads one from a slot, ref.copy() gives "
                                     "another to the same object");
    return -1;
}

/* Let the Python side explain a failure of ref[slot] (or ref[slot] = value). */
static PyObject *fail_slot(Ref *self, PyObject *slot)
{
    PyObject *r = PyObject_CallMethod((PyObject *)self, "_fail_slot", "O", slot);
    Py_XDECREF(r);
    if (!PyErr_Occurred())
        PyErr_SetString(PyExc_RuntimeError, "miniheap: a slot access failed without an error");
    return NULL;
}

static inline mh_heap *ref_ptr(Ref *self)
{
    return self->core ? self->core->ptr : NULL;
}

static PyObject *ref_getitem(Ref *self, PyObject *slot)
{
    int64_t s = as_u32(slot);
    mh_heap *ptr = ref_ptr(self);
    if (s < 0 || !ptr)
        return fail_slot(self, slot);
    mh_handle h = api->load_try(ptr, self->h, (uint32_t)s);
    if (h == MH_WOULD_BLOCK) {
        Py_BEGIN_ALLOW_THREADS
        h = api->load(ptr, self->h, (uint32_t)s);
        Py_END_ALLOW_THREADS
    }
    if (h >= 0)
        return new_ref(self->heap, self->core, h);
    if (h == MH_NULL_HANDLE)
        Py_RETURN_NONE;
    return fail_slot(self, slot);
}

static int ref_setitem(Ref *self, PyObject *slot, PyObject *value)
{
    if (!value) {
        PyErr_SetString(PyExc_TypeError, "reference slots cannot be deleted; store None instead");
        return -1;
    }
    mh_handle v;
    if (value == Py_None) {
        v = MH_NULL_HANDLE;
    } else if (Py_TYPE(value) == ref_type && ((Ref *)value)->heap == self->heap) {
        v = ((Ref *)value)->h;
        if (v < 0) {
            PyObject *r = PyObject_CallMethod((PyObject *)self, "_fail_released_value", "O", slot);
            Py_XDECREF(r);
            return -1;
        }
    } else {
        PyObject *r = PyObject_CallMethod((PyObject *)self, "_fail_store_value", "O", value);
        Py_XDECREF(r);
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "miniheap: a slot refused its value without an error");
        return -1;
    }
    int64_t s = as_u32(slot);
    mh_heap *ptr = ref_ptr(self);
    if (s < 0 || !ptr) {
        fail_slot(self, slot);
        return -1;
    }
    int rc = api->store_try(ptr, self->h, (uint32_t)s, v);
    if (rc == MH_WOULD_BLOCK) {
        Py_BEGIN_ALLOW_THREADS
        rc = api->store(ptr, self->h, (uint32_t)s, v);
        Py_END_ALLOW_THREADS
    }
    if (rc == 0)
        return 0;
    fail_slot(self, slot);
    return -1;
}

static PyMemberDef ref_members[] = {
    {"_heap", T_OBJECT, offsetof(Ref, heap), READONLY, "the Heap"},
    {"_h", T_INT, offsetof(Ref, h), 0, "the handle; negative once released"},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(Ref, weakrefs), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot ref_slots[] = {
    {Py_tp_doc, "A handle to one object of a heap (miniheap.Ref)."},
    {Py_tp_new, ref_new},
    {Py_tp_init, ref_init},
    {Py_tp_dealloc, ref_dealloc},
    {Py_tp_traverse, ref_traverse},
    {Py_tp_clear, ref_clear},
    {Py_tp_members, ref_members},
    {Py_mp_subscript, ref_getitem},
    {Py_mp_ass_subscript, ref_setitem},
    {0, NULL},
};

static PyType_Spec ref_spec = {
    .name = "miniheap.heap.Ref",
    .basicsize = sizeof(Ref),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = ref_slots,
};

/* ---- the module ----------------------------------------------------------------- */

/* _ref.init(address of the core's mh_pyapi table, HeapClosedError) */
static PyObject *module_init(PyObject *module, PyObject *args)
{
    unsigned long long address;
    PyObject *error;
    if (!PyArg_ParseTuple(args, "KO", &address, &error))
        return NULL;
    const mh_pyapi *table = (const mh_pyapi *)(uintptr_t)address;
    if (!table || table->version != MH_PYAPI_VERSION || table->size != sizeof(mh_pyapi))
        return PyErr_Format(PyExc_ImportError, "miniheap._ref and miniheap._native do not match (API version "
                            "%u, expected %u): rebuild the package (pip install .)",
                            table ? table->version : 0, MH_PYAPI_VERSION);
    api = table;
    Py_INCREF(error);
    Py_XSETREF(closed_error, error);
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"init", module_init, METH_VARARGS, "init(api_address, HeapClosedError): connect to miniheap._native"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "miniheap._ref",
    "The C-level Ref of miniheap: allocation, slot loads and stores, and release, calling the core directly.",
    -1, module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__ref(void)
{
    PyObject *m = PyModule_Create(&module_def);
    if (!m)
        return NULL;
    ref_type = (PyTypeObject *)PyType_FromSpec(&ref_spec);
    core_type = (PyTypeObject *)PyType_FromSpec(&core_spec);
    if (!ref_type || !core_type || PyModule_AddObject(m, "Ref", (PyObject *)ref_type) < 0) {
        Py_XDECREF(ref_type);
        Py_XDECREF(core_type);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(ref_type); /* the module's reference above; this one is ours */
    if (PyModule_AddObject(m, "Core", (PyObject *)core_type) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(core_type);
    return m;
}
