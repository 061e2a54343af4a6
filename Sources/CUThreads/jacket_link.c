// jacket_link.c — hands the runtime's side of the jacket contract to the jacket, if the
// program has one (linked in, or preloaded as libuthreads-jacket.so). Programs without it are
// unaffected: the weak reference is NULL and dlsym finds nothing.
#define _GNU_SOURCE
#include "cuthreads.h"

#include <dlfcn.h>

#include "uthreads_jacket_abi.h"

#pragma weak uthreads_jacket_install

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
