import Foundation
import Testing
@testable import UserThreads

/// The JSON of the thread table and of thread dumps: self-describing (enumerations as strings,
/// times with their unit in the key), versioned, and readable when an earlier version wrote it.
@Suite(.timeLimit(.minutes(1))) struct ThreadTableJSONTests {
    static func fixture(_ name: String) throws -> Data {
        try Data(
            contentsOf: ChildProcess.repositoryRoot
                .appendingPathComponent("Tests/UserThreadsTests/ThreadTable/Fixtures/\(name)"))
    }

    static func object(_ json: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    }

    /// What `uthreads table --json` wrote before the format had a version (wait reason kinds
    /// as numbers) still decodes, and encodes again in the current format.
    @Test(arguments: ["thread-table-v1.json", "thread-table-v1-workers.json"])
    func decodesWhatVersion1Wrote(_ name: String) throws {
        let table = try JSONDecoder().decode(ThreadTable.self, from: Self.fixture(name))
        #expect(table.version == 1)
        #expect(!table.threads.isEmpty)
        #expect(table.threads.allSatisfy { $0.registers == nil })  // version 1 had none
        let parked = table.threads.filter { $0.state == .blocked || $0.state == .sleeping }
        #expect(!parked.isEmpty && parked.allSatisfy { $0.waitReason != nil })
        if name.contains("workers") {
            #expect(table.workers == 2)
            let kinds = Set(parked.compactMap { $0.waitReason?.kind })
            #expect(kinds.isSuperset(of: [.sleep, .mutex, .channelSend, .barrier]), "\(kinds)")
        } else {
            #expect(table.threads.first { $0.name == "sleeper" }?.waitReason?.kind == .sleep)
            #expect(table.threads.first { $0.name == "waiter" }?.waitReason?.kind == .join)
        }
        let again = try Self.object(table.json())
        #expect(again["version"] as? Int == ThreadTable.formatVersion)
        let kinds = (again["threads"] as? [[String: Any]] ?? []).compactMap {
            ($0["waitReason"] as? [String: Any])?["kind"]
        }
        #expect(!kinds.isEmpty && kinds.allSatisfy { $0 is String }, "\(kinds)")
    }

    /// A live table: version, enumerations as strings, time keys that name their unit, and it
    /// decodes back to what was encoded.
    @Test func currentFormatIsSelfDescribing() throws {
        let table = try ThreadDumpTests.withKnownStates { UThreadRuntime.threadTable() }
        let json = table.json()
        let root = try Self.object(json)
        #expect(root["version"] as? Int == 2)
        let rows = try #require(root["threads"] as? [[String: Any]])
        for row in rows {
            #expect(row["state"] is String)
            #expect((row["stack"] as? [String: Any])?["mode"] is String)
            if let reason = row["waitReason"] as? [String: Any] { #expect(reason["kind"] is String, "\(reason)") }
            for key in row.keys where ["waiting", "deadline", "created", "cpu"].contains(where: key.hasPrefix) {
                #expect(key.hasSuffix("Seconds"), "a time key without its unit: \(key)")
            }
        }
        #expect(json.contains("\"kind\" : \"sleep\"") && json.contains("\"kind\" : \"join\""))
        let decoded = try JSONDecoder().decode(ThreadTable.self, from: Data(json.utf8))
        #expect(decoded == table)
    }

    /// Thread dumps carry the same version and the same row format.
    @Test func dumpIsVersionedToo() throws {
        let json = try ThreadDumpTests.withKnownStates { UThreadRuntime.dump(format: .json) }
        let root = try Self.object(json)
        #expect(root["version"] as? Int == ThreadTable.formatVersion)
        #expect(json.contains("\"kind\" : \"sleep\""))
        let dump = try JSONDecoder().decode(ThreadDump.self, from: Data(json.utf8))
        #expect(dump.version == ThreadTable.formatVersion && dump.threads.count == 4)
    }

    /// A newer version, or a kind this library does not know, is a clear error.
    @Test func newerVersionsAndUnknownKindsAreClearErrors() throws {
        let v1 = try String(decoding: Self.fixture("thread-table-v1.json"), as: UTF8.self)
        let newer = v1.replacingOccurrences(of: "\"spawned\"", with: "\"version\" : 99, \"spawned\"")
        #expect {
            try JSONDecoder().decode(ThreadTable.self, from: Data(newer.utf8))
        } throws: { "\($0)".contains("version 99") && "\($0)".contains("newer") }
        let strange = v1.replacingOccurrences(of: "\"kind\" : 2", with: "\"kind\" : \"teleport\"")
        #expect {
            try JSONDecoder().decode(ThreadTable.self, from: Data(strange.utf8))
        } throws: { "\($0)".contains("unknown wait reason kind \"teleport\"") }
        let outOfRange = v1.replacingOccurrences(of: "\"kind\" : 2", with: "\"kind\" : 200")
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(ThreadTable.self, from: Data(outOfRange.utf8)) }
    }
}
