// The command line of issue 6: the kernel's table beside the user table.
import Foundation
import Testing

@Suite struct KernelCommandLineTests {
    @Test func tableKernelShowsOneKernelThreadForThousandsOfUserThreads() throws {
        let r = try ChildProcess.uthreads("table", "--kernel", "--parked", "2000", "--json")
        #expect(r.status == 0, "\(r.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let user = (object?["user"] as? [String: Any])?["threads"] as? [Any] ?? []
        let kernel = (object?["kernel"] as? [String: Any])?["threads"] as? [[String: Any]] ?? []
        #expect(user.count > 2000)
        #expect(kernel.count == 1)  // the M:1 runtime: one kernel thread runs them all
        #expect(kernel.first?["voluntarySwitches"] is Int)

        let text = try ChildProcess.uthreads("table", "--kernel")
        #expect(text.status == 0)
        #expect(text.stdout.contains("the kernel sees 1 thread"))
    }
}
