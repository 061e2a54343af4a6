// registry.c — where a debugger finds the thread tables: `uthreads_runtime_registry`.
//
// A fixed, exported array of slots, one per live runtime, each pointing at that runtime's
// table view (the array of chunk pointers ControlBlockTable keeps for exactly this reader).
// gdb (tools/gdb/uthreads.py) reads it from a stopped process or a core file by name; no
// function has to run in the inferior. A runtime claims a slot with a compare-and-swap when
// `run` starts and clears it when `run` ends: never on the switch path. The table view is
// updated only when the table grows by a chunk.
#define _GNU_SOURCE
#include "cuthreads.h"

#include <unistd.h>

/// Exported (and kept) for debuggers. Read-only to everything but the two functions below.
__attribute__((used, visibility("default")))
uthreads_registry_entry uthreads_runtime_registry[UTHREADS_REGISTRY_SLOTS];

/// Layout version of the registry and the control block, for the gdb script.
__attribute__((used, visibility("default")))
const uint32_t uthreads_debug_layout_version = 1;

static int live_count;

int uthreads_registry_add(uthreads_table_view *view, void *runtime) {
    for (int i = 0; i < UTHREADS_REGISTRY_SLOTS; i++) {
        void *expected = NULL;
        if (__atomic_compare_exchange_n(&uthreads_runtime_registry[i].runtime, &expected, runtime, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
            uthreads_runtime_registry[i].table = view;
            uthreads_runtime_registry[i].kernel_tid = (uint64_t)gettid();
            __atomic_add_fetch(&live_count, 1, __ATOMIC_RELEASE);
            return i;
        }
    }
    return -1;  // more live runtimes than slots: this one is invisible to debuggers
}

void uthreads_registry_remove(int slot) {
    if (slot < 0 || slot >= UTHREADS_REGISTRY_SLOTS) return;
    uthreads_runtime_registry[slot].table = NULL;
    uthreads_runtime_registry[slot].kernel_tid = 0;
    __atomic_sub_fetch(&live_count, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&uthreads_runtime_registry[slot].runtime, NULL, __ATOMIC_RELEASE);
}

int uthreads_registry_live_count(void) {
    return __atomic_load_n(&live_count, __ATOMIC_ACQUIRE);
}

int32_t uthreads_kernel_thread_id(void) { return (int32_t)gettid(); }
