import UserThreads
import CUThreads
for acct in [false, true] {
var c = UThreadRuntime.Configuration(); c.cpuAccounting = acct
try UThreadRuntime.run(c) {
    let N = 5_000_000
    let a = UThread { for _ in 0..<N { UThread.yield() } }
    let t0 = uthreads_monotonic_ns()
    for _ in 0..<N { UThread.yield() }
    try a.join()
    let t1 = uthreads_monotonic_ns()
    print("acct \(acct) yield switch: \(Double(t1 - t0) / Double(2 * N)) ns")
    let M = 1_000_000
    let s0 = uthreads_monotonic_ns()
    for _ in 0..<M { try UThread { }.join() }
    let s1 = uthreads_monotonic_ns()
    print("spawn+join: \(Double(s1 - s0) / Double(M)) ns")
}
}
