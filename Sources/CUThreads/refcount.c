// Reference counting for objects no other kernel thread references (cuthreads.h): a
// non-atomic retain, a uniqueness test with a retain, and the check of the inline layout the
// latter relies on.
#include "cuthreads.h"

// libswiftCore's entry points (every Swift program links it).
void *swift_nonatomic_retain(void *object);
void *swift_retain(void *object);
void swift_release(void *object);
_Bool swift_isUniquelyReferenced_nonNull_native(const void *object);

void *uthreads_retain_unshared(void *object) { return swift_nonatomic_retain(object); }

int uthreads_retain_if_unique_called(void *object) {
    if (!swift_isUniquelyReferenced_nonNull_native(object)) return 0;
    swift_nonatomic_retain(object);
    return 1;
}

int uthreads_refcount_layout_check(void *object) {
    volatile uint64_t *word = uthreads_refcount_word(object);
    uint64_t one = *word;  // one strong reference, the caller's
    if (one >> 32 || !swift_isUniquelyReferenced_nonNull_native(object)) return 0;
    swift_retain(object);
    uint64_t two = *word;
    int ok = two == one + ((uint64_t)1 << 33) && !swift_isUniquelyReferenced_nonNull_native(object);
    // Two references (and bits above 31, as just checked): the inline test must refuse.
    if (ok) ok = !uthreads_retain_if_unique(object) && *word == two;
    swift_release(object);
    if (!ok || *word != one) return 0;
    swift_nonatomic_retain(object);
    ok = *word == two;
    swift_release(object);
    if (!ok || *word != one) return 0;
    // One reference: the inline test takes a second, which the runtime's release gives back.
    if (!uthreads_retain_if_unique(object)) return 0;
    ok = *word == two && !swift_isUniquelyReferenced_nonNull_native(object);
    swift_release(object);
    return ok && *word == one && swift_isUniquelyReferenced_nonNull_native(object);
}
