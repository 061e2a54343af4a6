// symbols.c — names for addresses: the function (demangled when Swift) and the module.
//
// dladdr finds only the dynamic symbol table, and a Swift executable (into which SwiftPM links
// UserThreads statically) exports nothing, so for an address without a dynamic symbol the ELF
// file of its module is mapped once and its .symtab searched (debug builds and unstripped
// release builds have one). Swift names are demangled with the Swift runtime's swift_demangle.
// None of this runs in a signal handler: dumps and tables are built at the scheduler's safe
// points. The addresses come from backtrace.c's walks and from saved frames.
#define _GNU_SOURCE
#include "cuthreads.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char path[512];
    const unsigned char *map;
    size_t size;
    const Elf64_Sym *syms;
    size_t count;
    const char *strings;
    size_t strings_size;
} module_symbols;

#define MODULE_CACHE 8
static module_symbols modules[MODULE_CACHE];
static int module_count;
static pthread_mutex_t modules_lock = PTHREAD_MUTEX_INITIALIZER;

/// Maps `path` and finds its .symtab. Caller holds modules_lock.
static const module_symbols *load_module(const char *path) {
    for (int i = 0; i < module_count; i++)
        if (strcmp(modules[i].path, path) == 0) return modules[i].syms ? &modules[i] : NULL;
    if (module_count == MODULE_CACHE || strlen(path) >= sizeof modules[0].path) return NULL;
    module_symbols *m = &modules[module_count++];
    memset(m, 0, sizeof *m);
    strcpy(m->path, path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof(Elf64_Ehdr)) { close(fd); return NULL; }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return NULL;
    m->map = map;
    m->size = (size_t)st.st_size;
    const Elf64_Ehdr *eh = map;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_shoff == 0 || eh->e_shoff + (size_t)eh->e_shnum * sizeof(Elf64_Shdr) > m->size) return NULL;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(m->map + eh->e_shoff);
    for (int i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_link >= eh->e_shnum) continue;
        const Elf64_Shdr *str = &sh[sh[i].sh_link];
        if (sh[i].sh_offset + sh[i].sh_size > m->size || str->sh_offset + str->sh_size > m->size) return NULL;
        m->syms = (const Elf64_Sym *)(m->map + sh[i].sh_offset);
        m->count = sh[i].sh_size / sizeof(Elf64_Sym);
        m->strings = (const char *)(m->map + str->sh_offset);
        m->strings_size = str->sh_size;
        return m;
    }
    return NULL;
}

/// The function symbol of `module` that contains the file-relative address `rel`.
static const char *find_symbol(const module_symbols *m, uint64_t rel, uint64_t *offset) {
    const Elf64_Sym *best = NULL;
    for (size_t i = 0; i < m->count; i++) {
        const Elf64_Sym *s = &m->syms[i];
        if (ELF64_ST_TYPE(s->st_info) != STT_FUNC || s->st_value == 0 || s->st_value > rel) continue;
        if (s->st_size ? rel >= s->st_value + s->st_size : 0) continue;
        if (!best || s->st_value > best->st_value) best = s;
    }
    if (!best || best->st_name >= m->strings_size) return NULL;
    *offset = rel - best->st_value;
    return m->strings + best->st_name;
}

static void copy_out(char *dst, size_t size, const char *src) {
    if (size == 0) return;
    size_t n = strlen(src);
    if (n >= size) n = size - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

int uthreads_symbolicate(uint64_t address, char *symbol, size_t symbol_size,
                         char *module, size_t module_size, uint64_t *offset) {
    if (symbol_size) symbol[0] = 0;
    if (module_size) module[0] = 0;
    *offset = 0;
    Dl_info info;
    if (address == 0 || dladdr((void *)(uintptr_t)address, &info) == 0) return 0;
    if (info.dli_fname) copy_out(module, module_size, info.dli_fname);
    const char *name = info.dli_sname;
    if (name && info.dli_saddr) {
        *offset = address - (uint64_t)(uintptr_t)info.dli_saddr;
    } else if (info.dli_fname) {
        const char *path = info.dli_fname;
        // The main executable's dli_fname may be argv[0]; /proc/self/exe is the file.
        char exe[512];
        if (info.dli_fbase == (void *)(uintptr_t)getauxval(AT_PHDR) - ((const Elf64_Ehdr *)info.dli_fbase)->e_phoff) {
            ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
            if (n > 0) { exe[n] = 0; path = exe; }
        }
        pthread_mutex_lock(&modules_lock);
        const module_symbols *m = load_module(path);
        // Symbol values of a position-independent object are relative to its load base.
        const Elf64_Ehdr *eh = info.dli_fbase;
        uint64_t rel = eh->e_type == ET_DYN ? address - (uint64_t)(uintptr_t)info.dli_fbase : address;
        name = m ? find_symbol(m, rel, offset) : NULL;
        pthread_mutex_unlock(&modules_lock);
    }
    if (!name) return 1;
    // Swift symbols: "$s…" (Swift 5+), "_$s…", "$S…", "_T0…".
    if (strncmp(name, "$s", 2) == 0 || strncmp(name, "_$s", 3) == 0 || strncmp(name, "$S", 2) == 0 ||
        strncmp(name, "_T0", 3) == 0) {
        char *demangled = swift_demangle(name, strlen(name), NULL, NULL, 0);
        if (demangled) {
            copy_out(symbol, symbol_size, demangled);
            free(demangled);
            return 2;
        }
    }
    copy_out(symbol, symbol_size, name);
    return 2;
}
