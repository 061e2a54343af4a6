import Glibc
import Testing
import UserThreads

/// Strings handed to C stop at their first NUL byte: an address, host or path that holds one
/// throws `invalidArgument` instead of silently naming its prefix ("/tmp/a\0b" was "/tmp/a").
/// An empty Unix path throws too (bind would choose an abstract address by itself).
@Suite(.timeLimit(.minutes(1)))
struct SocketAddressTests {
    @Test func aNULByteOrAnEmptyPathIsRejected() {
        for (label, body) in [
            ("host", { _ = try SocketAddress(host: "127.0.0.1\0junk", port: 80) }),
            ("unix path", { _ = try SocketAddress(unixPath: "/tmp/a\0b") }),
            ("empty unix path", { _ = try SocketAddress(unixPath: "") }),
            ("resolved host", { _ = try SocketAddress.resolve(host: "localhost\0junk", port: 80) }),
        ] as [(String, () throws -> Void)] {
            let message = expectError(sameCaseAs: .invalidArgument(""), Comment(rawValue: label), body)
            #expect(
                message?.contains(label.hasPrefix("empty") ? "is empty" : "contains a NUL byte") == true, "\(label)")
        }
        #expect(throws: Never.self) { try SocketAddress(unixPath: "/tmp/a b") }
        #expect((try? SocketAddress(host: "::1", port: 80))?.description == "[::1]:80")
    }

    /// `IO.readFile` and `IO.writeFile` refuse a path with a NUL byte before they touch any file.
    @Test func filePathsWithANULByteAreRejected() throws {
        try UThreadRuntime.run {
            expectError(sameCaseAs: .invalidArgument("")) { try IO.readFile("/etc/hostname\0junk") }
            expectError(sameCaseAs: .invalidArgument("")) { try IO.writeFile("/tmp/uthreads-nul\0junk", [1]) }
        }
        #expect(access("/tmp/uthreads-nul", F_OK) != 0)
    }
}
