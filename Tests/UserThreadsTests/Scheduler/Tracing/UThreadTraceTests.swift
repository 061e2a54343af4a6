import Testing

@testable import UserThreads

/// The trace's ring capacity: rounded up to a power of two, within 16...maximumCapacity, for any
/// `Int` (the rounding loop ran forever for `Int.max` and trapped in the allocation for 2^62).
@Suite(.timeLimit(.minutes(1)))
struct UThreadTraceTests {
    @Test func capacityIsAPowerOfTwoWithinItsLimits() {
        #expect(UThreadTrace(capacity: 1000).capacity == 1024)
        #expect(UThreadTrace(capacity: 1 << 16).capacity == 1 << 16)
        for small in [Int.min, -1, 0, 1, 16] {
            #expect(UThreadTrace(capacity: small).capacity == 16, "capacity \(small)")
        }
        for huge in [UThreadTrace.maximumCapacity + 1, 1 << 62, Int.max] {
            #expect(UThreadTrace(capacity: huge).capacity == UThreadTrace.maximumCapacity, "capacity \(huge)")
        }
    }
}
