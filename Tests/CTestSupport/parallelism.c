// parallelism.c — bounds how many test cases Swift Testing runs at once, so that a test's
// `.timeLimit` measures that test and not the whole run.
//
// Swift Testing 6.3.1 starts a test case's time limit (a child task that sleeps for the limit,
// `withTimeLimit` in its TimeLimitTrait.swift) as soon as the test case's task starts, and by
// default it puts no bound on the test cases in flight: every one of the ~500 starts at once,
// its clock running, and waits for one of the cooperative pool's two threads, which the
// synchronous tests (every `UThreadRuntime.run`) hold until they return. So each limit counted
// from the start of the whole run: when the run took more than a minute (a loaded machine,
// ThreadSanitizer), every test still running or queued at the 60 s mark failed with "Time
// limit was exceeded: 60.000 seconds" (188 at once in one run, each of which then finished), however
// short it was. With a bound, a test case waits for a slot *before* its clock starts
// (Runner.swift's `testCaseSerializer`).
//
// The bound is the library's own switch, the environment variable
// SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH (read once, when the run is configured, after
// this constructor has run), at twice the CPUs, which is what Swift Testing's source names as
// its intended default. A value already in the environment wins, so a run can still choose.
//
// Rejected: longer time limits (the run only grows, and under ThreadSanitizer it is 5-10x
// slower: no limit is safe when it counts the whole run, and a longer one hides hangs for
// longer); the test binary's flag `--experimental-maximum-parallelization-width` (`swift test`
// has no option that reaches it); the same variable set in `.ci/run` only (a developer's
// `swift test` on a loaded machine would still fail).
#include "ctestsupport.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((constructor)) static void uthreads_tests_bound_parallelism(void) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    char width[24];
    snprintf(width, sizeof width, "%ld", 2 * (cpus > 0 ? cpus : 1));
    setenv("SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH", width, 0);
}
