import CUThreads
import Foundation
import Testing
@testable import UserThreads

@Suite(.timeLimit(.minutes(1))) struct ThreadTableTests {
    /// A bigger row makes zeroing it at spawn a memset call (DEVELOPERS.md): keep 256 bytes.
    @Test func controlBlockIs256Bytes() {
        #expect(MemoryLayout<uthreads_tcb>.size == 256)
    }

    /// `contains` answers for rows of every chunk (its first chunk's fast test and the search
    /// of the others) and for no address outside them.
    @Test func containsFindsRowsOfEveryChunk() {
        let table = ControlBlockTable()
        let other = ControlBlockTable()
        let rows = (0..<(2 * ControlBlockTable.chunkSize + 1)).map { _ in table.allocate() }
        let foreign = other.allocate()
        #expect(rows.allSatisfy { table.contains($0) })
        #expect(rows.allSatisfy { !other.contains($0) })
        #expect(!table.contains(foreign) && other.contains(foreign))
        #expect(
            !table.contains(ControlBlock(bitPattern: 64)!) && !table.contains(ControlBlock(bitPattern: UInt.max - 255)!)
        )
        for row in rows { table.release(row) }
        other.release(foreign)
    }

    /// Ownership of rows moves between tables (M:N migration) while the rows stay put.
    @Test func rowOwnershipMovesBetweenTables() {
        let home = ControlBlockTable()
        let adopter = ControlBlockTable()
        let row = home.allocate()
        row.pointee.state = .stateReady
        #expect(home.contains(row) && !adopter.contains(row) && home.owns(row) && !adopter.owns(row))
        home.emigrate(row)
        adopter.immigrate(row)
        #expect(
            !home.owns(row) && adopter.owns(row) && home.liveCount == 0 && home.abroadCount == 1
                && adopter.liveCount == 1)
        var listed: [ControlBlock] = []
        home.forEachLive { listed.append($0) }
        #expect(listed.isEmpty)
        adopter.forEachLive { listed.append($0) }
        #expect(listed == [row])
        adopter.emigrate(row)  // back home
        home.immigrate(row)
        #expect(
            home.owns(row) && !adopter.owns(row) && home.abroadCount == 0 && home.liveCount == 1
                && adopter.liveCount == 0)
        home.emigrate(row)  // finishes abroad, comes home to be freed
        adopter.immigrate(row)
        adopter.leave(row)
        home.returned(row)
        #expect(home.liveCount == 0 && home.abroadCount == 0 && adopter.liveCount == 0 && adopter.immigrants.isEmpty)
    }

    @Test func statesAtAChosenMoment() throws {
        let table = try UThreadRuntime.run {
            let sleeper = UThread(name: "sleeper") { try UThread.sleep(for: .seconds(3600)) }
            let joiner = UThread(name: "joiner") { try sleeper.join() }
            UThread.yield()  // both park
            let ready = UThread(name: "fresh", priority: 3) {}
            let table = UThreadRuntime.threadTable()
            sleeper.cancel()
            _ = try? joiner.join()
            try ready.join()
            return table
        }
        func row(_ name: String) -> ThreadInfo? { table.threads.first { $0.name == name } }
        #expect(row("main")?.state == .running)
        #expect(row("main")?.isMain == true)
        #expect(row("sleeper")?.state == .sleeping)
        #expect(row("sleeper")?.waitReason?.kind == .sleep)
        #expect((row("sleeper")?.deadlineInSeconds ?? 0) > 3000)
        #expect(row("joiner")?.state == .blocked)
        #expect(row("joiner")?.waitReason?.description == "join \(row("sleeper")!.id)")
        #expect(row("fresh")?.state == .ready)
        #expect(row("fresh")?.priority == 3)
        #expect(row("fresh")?.parentID == row("main")?.id)
        #expect(row("sleeper")!.stack.highWater > 0)
        #expect(row("sleeper")!.switches == 1)
        let text = table.render()
        #expect(text.contains("sleeper") && text.contains("sleeping") && text.contains("join #"))
    }

    @Test func snapshotIsCodable() throws {
        let table = try UThreadRuntime.run {
            let t = UThread(name: "x") { UThread.yield() }
            let table = UThreadRuntime.threadTable()
            try t.join()
            return table
        }
        let data = try JSONEncoder().encode(table)
        let back = try JSONDecoder().decode(ThreadTable.self, from: data)
        #expect(back == table)
        #expect(String(decoding: data, as: UTF8.self).contains("\"state\":\"ready\""))
    }

    @Test func cpuTimeIsAccounted() throws {
        let cpu = try UThreadRuntime.run {
            let t = UThread(name: "spin") {
                var x = 0
                for i in 0..<2_000_000 { x &+= i }
                UThread.yield()
                return x
            }
            UThread.yield()
            let seconds = UThreadRuntime.threadTable().threads.first { $0.name == "spin" }?.cpuSeconds ?? 0
            _ = try t.join()
            return seconds
        }
        #expect(cpu > 0)
    }

    @Test func longNamesAreTruncatedOnACharacterBoundary() throws {
        try UThreadRuntime.run {
            let name = String(repeating: "é", count: 30)
            let t = UThread(name: name) {}
            #expect(t.name == name)
            #expect(t.object.controlBlock!.cName == String(repeating: "é", count: 11))
            try t.join()
        }
    }
}
