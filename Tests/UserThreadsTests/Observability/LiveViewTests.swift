import Foundation
import Testing
@testable import UserThreads

/// The control socket serves the thread table; `uthreads top` shows it.
@Suite(.timeLimit(.minutes(1))) struct LiveViewTests {
    static func temporaryPath(_ suffix: String) -> String {
        FileManager.default.temporaryDirectory
            .appendingPathComponent("ut-\(getpid())-\(UInt32.random(in: 0...UInt32.max))\(suffix)").path
    }

    /// Sends one request line to a control socket and reads the answer (nil when it cannot).
    static func ask(_ path: String, _ request: String) -> Data? {
        (try? UThreadRuntime.queryControlSocket(path, request: request)).map { Data($0) }
    }

    /// Runs `uthreads selftest live-view SOCKET STOPFILE` (plus `extra` arguments) while `body`
    /// runs with the socket's path, from the moment the socket answers.
    static func withLiveView<R>(_ extra: [String] = [], _ body: (String) throws -> R) throws -> R {
        let socket = Self.temporaryPath(".sock")
        let stop = Self.temporaryPath(".stop")
        let target = Process()
        target.executableURL = URL(fileURLWithPath: ChildProcess.uthreadsPath)
        target.arguments = ["selftest", "live-view", socket, stop] + extra
        target.standardOutput = FileHandle.nullDevice
        target.standardError = FileHandle.nullDevice
        try target.run()
        defer {
            _ = FileManager.default.createFile(atPath: stop, contents: nil)
            target.waitUntilExit()
            try? FileManager.default.removeItem(atPath: stop)
        }
        // Wait for the event "the socket answers" (bounded), not for a guessed time.
        let giveUp = ContinuousClock.now + .seconds(60)
        while Self.ask(socket, "table") == nil && ContinuousClock.now < giveUp { usleep(2000) }
        return try body(socket)
    }

    @Test func uthreadsTopShowsALiveProcess() throws {
        try Self.withLiveView { socket in
            let r = try ChildProcess.uthreads("top", "--once", "--sort", "id", socket)
            #expect(r.status == 0, "\(r.stderr)")
            let lines = r.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first?.hasPrefix("uthreads top — \(socket)") == true)
            #expect(
                lines.contains {
                    $0.contains("TID") && $0.contains("CPU%") && $0.contains("SWITCHES") && $0.contains("WAIT")
                })
            #expect(lines.contains { $0.contains("sleeper") && $0.contains("sleeping") })
            #expect(lines.contains { $0.contains("joiner") && $0.contains("blocked") && $0.contains("join #2") })
            #expect(lines.contains { $0.contains("main") && $0.contains("sleeping") })
            // Two refreshes: the second has CPU% figures from the difference.
            let twice = try ChildProcess.uthreads("top", "-n", "2", "--interval", "0.05", socket)
            #expect(twice.status == 0, "\(twice.stderr)")
            #expect(twice.stdout.components(separatedBy: "uthreads top —").count == 3)
        }
    }

    @Test func uthreadsTopNamesAMissingSocket() throws {
        let r = try ChildProcess.uthreads("top", "--once", Self.temporaryPath(".sock"))
        #expect(r.status == 1)
        #expect(r.stderr.contains("Error: cannot connect"))
        #expect(!r.stderr.contains("Usage:"), "not a usage error: \(r.stderr)")
    }
}
