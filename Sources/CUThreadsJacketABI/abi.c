// The jacket's contract is a header (include/uthreads_jacket_abi.h); SwiftPM wants one source.
#include "uthreads_jacket_abi.h"
_Static_assert(sizeof(uthreads_jacket_runtime) == 7 * sizeof(void *), "uthreads_jacket_runtime layout");
