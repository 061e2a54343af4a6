// Which sanitizer the test binary runs under (scripts/tsan.sh builds with -sanitize=thread).
import Glibc

enum Sanitizers {
    /// Built with ThreadSanitizer: its runtime, linked into the binary, defines `__tsan_init`
    /// (looked up in the global scope: `RTLD_DEFAULT` is a null handle on glibc).
    static let thread: Bool = dlsym(nil, "__tsan_init") != nil

    /// Why tests with tens of thousands of live user threads do not run under ThreadSanitizer:
    /// every user thread is a TSan fiber, and each fiber costs about two kernel mappings (measured:
    /// 10,000 parked threads, 17 k mappings plain, 41 k under TSan). Two such tests in parallel
    /// pass vm.max_map_count (65530), and TSan aborts ("failed to mmap"). They are single-kernel-
    /// thread tests, where TSan has nothing to find; `swift test` runs them.
    static let tooManyFibers = "tens of thousands of TSan fibers exhaust vm.max_map_count (2 mappings each)"
}
