// ctestsupport.h — C code linked into the test binary only. It has no interface: its one job
// runs before main (parallelism.c).
#ifndef CTESTSUPPORT_H
#define CTESTSUPPORT_H
#endif
