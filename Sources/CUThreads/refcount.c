// A non-atomic retain for objects no other kernel thread references (cuthreads.h).
#include "cuthreads.h"

// libswiftCore's entry point (every Swift program links it).
void *swift_nonatomic_retain(void *object);

void *uthreads_retain_unshared(void *object) { return swift_nonatomic_retain(object); }
