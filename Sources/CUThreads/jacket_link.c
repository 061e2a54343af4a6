// jacket_link.c — hands the runtime's side of the jacket contract to the jacket, if the
// program has one (linked in, or preloaded as libuthreads-jacket.so). Programs without it are
// unaffected: the weak reference is NULL and dlsym finds nothing.
#define _GNU_SOURCE
#include "cuthreads.h"

#include <dlfcn.h>

#include "uthreads_jacket_abi.h"

#pragma weak uthreads_jacket_install

#pragma weak uthreads_jacket_forget

/// The jacket's `uthreads_jacket_forget`, looked up once (NULL: no jacket in the process).
static void (*jacket_forget)(int);
static int jacket_forget_resolved;

void uthreads_jacket_forget_descriptor(int fd) {
    if (!__atomic_load_n(&jacket_forget_resolved, __ATOMIC_ACQUIRE)) {
        void (*f)(int) = uthreads_jacket_forget;  // linked in; a preloaded one is in the global scope
        if (!f) f = (void (*)(int))dlsym(RTLD_DEFAULT, "uthreads_jacket_forget");
        jacket_forget = f;
        __atomic_store_n(&jacket_forget_resolved, 1, __ATOMIC_RELEASE);
    }
    if (jacket_forget) jacket_forget(fd);
}

int uthreads_jacket_connect(void *argument) {
    uthreads_jacket_runtime *table = argument;
    table->version = UTHREADS_JACKET_ABI_VERSION;
    table->current_tls_offset = uthreads_current_tls_offset();
    void (*install)(const uthreads_jacket_runtime *) = uthreads_jacket_install;
    // A preloaded jacket is not seen by a weak reference the static linker already resolved
    // to nothing; the global scope has it.
    if (!install) install = (void (*)(const uthreads_jacket_runtime *))dlsym(RTLD_DEFAULT, "uthreads_jacket_install");
    if (!install) return 0;
    install(table);
    return 1;
}
