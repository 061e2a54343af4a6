import Glibc
import Logging
import Synchronization
import Testing
@testable import UserThreads

/// Runtime diagnostics go through the configured swift-log Logger.
@Suite(.timeLimit(.minutes(1))) struct LoggingTests {
    /// A LogHandler that keeps what it is given.
    struct Capture: LogHandler {
        let entries: Entries
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            entries.value.withLock { $0.append((event.level, "\(event.message)", event.metadata ?? [:])) }
        }
    }

    final class Entries: Sendable {
        let value = Mutex<[(Logger.Level, String, Logger.Metadata)]>([])
    }

    @Test func aDumpSignalTheProgramAlreadyHandlesIsReportedThroughTheLogger() throws {
        // SIGUSR2 gets a handler of "the program's own" (nothing else in the tests uses it).
        signal(SIGUSR2) { _ in }
        let entries = Entries()
        var configuration = UThreadRuntime.Configuration()
        configuration.dumpSignal = SIGUSR2
        configuration.logger = Logger(label: "test") { _ in Capture(entries: entries) }
        try UThreadRuntime.run(configuration) {}
        let logged = entries.value.withLock { $0 }
        let entry = try #require(logged.first { $0.1.contains("thread dumps on a signal are off") })
        #expect(entry.0 == .notice)
        #expect(entry.1.contains("the program has its own handler"))
        #expect(entry.2["signal"] == "\(SIGUSR2)")
    }

    @Test func theDefaultLoggerIsLabelledUthreads() {
        #expect(UThreadRuntime.Configuration().logger.label == "uthreads")
    }
}
