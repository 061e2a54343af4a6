// `uthreads demo …`: the classic synchronization problems, solved with the sync layer, each
// printing what it checked and a snapshot of the thread table taken mid-run (every blocked
// thread shows what it waits for).
import ArgumentParser
import UserThreads

/// Prints the thread table once, the first time `when` holds.
private struct Snapshot {
    var taken = false
    mutating func take(if when: Bool) {
        guard !taken, when else { return }
        taken = true
        print("thread table mid-run:")
        print(UThreadRuntime.threadTable().render(limit: 12))
    }
}

struct DemoPhilosophersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "philosophers",
        abstract: "Dining philosophers: forks are mutexes, taken in resource order; every philosopher eats.")

    @Option(help: "Number of philosophers.") var philosophers = 5
    @Option(help: "Meals in total.") var meals = 10_000

    func validate() throws {
        guard (2...100_000).contains(philosophers) else { throw ValidationError("--philosophers must be 2...100000") }
        guard (1...10_000_000).contains(meals) else { throw ValidationError("--meals must be 1...10000000") }
    }

    func run() throws {
        let n = philosophers
        let total = meals
        let clock = ContinuousClock()
        let start = clock.now
        let eaten = try UThreadRuntime.run {
            let forks = (0..<n).map { UMutex(name: "fork \($0)") }
            var eaten = [Int](repeating: 0, count: n)
            var served = 0
            var snapshot = Snapshot()
            try withThreadGroup(name: "table") { g in
                for p in 0..<n {
                    try g.spawnLocal(name: "philosopher \(p)") {
                        let first = min(p, (p + 1) % n)
                        let second = max(p, (p + 1) % n)
                        while served < total {
                            UThread.yield()  // think
                            try forks[first].withLock {
                                try forks[second].withLock {
                                    guard served < total else { return }
                                    served += 1
                                    eaten[p] += 1
                                    snapshot.take(if: served == total / 2)
                                    UThread.yield()  // eat
                                }
                            }
                        }
                    }
                }
            }
            return eaten
        }
        let elapsed = clock.now - start
        for (p, m) in eaten.enumerated() { print("philosopher \(p): \(m) meals") }
        let ok = eaten.reduce(0, +) == total && eaten.allSatisfy { $0 > 0 }
        print("\(eaten.reduce(0, +)) meals, no deadlock, every philosopher ate: \(ok ? "yes" : "NO") (\(elapsed))")
        if !ok { throw ExitCode.failure }
    }
}

struct DemoBoundedBufferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "buffer",
        abstract: "Bounded buffer: producers and consumers over a bounded Channel; count and checksum checked.")

    @Option(help: "Producers.") var producers = 4
    @Option(help: "Consumers.") var consumers = 3
    @Option(help: "Items per producer.") var items = 25_000
    @Option(help: "Channel capacity (0: unbuffered).") var capacity = 8

    func validate() throws {
        // A negative count trapped in a range; no consumer left the producers blocked forever.
        guard (1...100_000).contains(producers) else { throw ValidationError("--producers must be 1...100000") }
        guard (1...100_000).contains(consumers) else { throw ValidationError("--consumers must be 1...100000") }
        guard (0...10_000_000).contains(items) else { throw ValidationError("--items must be 0...10000000") }
        guard (0...1_000_000).contains(capacity) else { throw ValidationError("--capacity must be 0...1000000") }
    }

    func run() throws {
        let (np, nc, per, cap) = (producers, consumers, items, capacity)
        let (count, sum, perConsumer) = try UThreadRuntime.run { () -> (Int, Int, [Int]) in
            let buffer = try Channel<Int>(capacity: cap, name: "buffer")
            var counts = [Int](repeating: 0, count: nc)
            var sum = 0
            var snapshot = Snapshot()
            try withThreadGroup(name: "factory") { g in
                try withThreadGroup(name: "producers") { pg in
                    for p in 0..<np {
                        try pg.spawnLocal(name: "producer \(p)") { for i in 0..<per { try buffer.send(p * per + i) } }
                    }
                    for c in 0..<nc {
                        try g.spawnLocal(name: "consumer \(c)") {
                            for v in buffer {
                                counts[c] += 1
                                sum &+= v
                                snapshot.take(if: counts[c] == 1_000)
                            }
                        }
                    }
                }
                buffer.close()  // every producer finished: consumers drain, then stop
            }
            return (counts.reduce(0, +), sum, counts)
        }
        let total = np * per
        let expected = (0..<total).reduce(0, &+)
        print("consumed per consumer: \(perConsumer)")
        print(
            "items: \(count) of \(total), checksum \(sum) (expected \(expected)): \(count == total && sum == expected ? "ok" : "MISMATCH")"
        )
        if count != total || sum != expected { throw ExitCode.failure }
    }
}

struct DemoReadersWritersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "readers-writers",
        abstract: "Readers–writers with URWLock: readers share, writers exclude, writers are not starved.")

    @Option(help: "Readers.") var readers = 12
    @Option(help: "Writers.") var writers = 3
    @Option(help: "Operations per thread.") var operations = 500

    func validate() throws {
        guard (0...100_000).contains(readers) else { throw ValidationError("--readers must be 0...100000") }
        guard (0...100_000).contains(writers) else { throw ValidationError("--writers must be 0...100000") }
        guard (0...1_000_000).contains(operations) else { throw ValidationError("--operations must be 0...1000000") }
    }

    func run() throws {
        let (nr, nw, ops) = (readers, writers, operations)
        let (reads, writes, bad, maxShared) = try UThreadRuntime.run { () -> (Int, Int, Int, Int) in
            let rw = URWLock(name: "db")
            var db = [Int](repeating: 0, count: 32)
            var reads = 0
            var writes = 0
            var bad = 0
            var shared = 0
            var maxShared = 0
            var snapshot = Snapshot()
            try withThreadGroup { g in
                for w in 0..<nw {
                    try g.spawnLocal(name: "writer \(w)") {
                        for _ in 0..<ops {
                            try rw.withWriteLock {
                                for k in db.indices {
                                    db[k] += 1
                                    if k == 16 { UThread.yield() }
                                }
                                writes += 1
                            }
                            UThread.yield()
                        }
                    }
                }
                for r in 0..<nr {
                    try g.spawnLocal(name: "reader \(r)") {
                        for _ in 0..<ops {
                            try rw.withReadLock {
                                shared += 1
                                maxShared = max(maxShared, shared)
                                let first = db[0]
                                UThread.yield()
                                if db.contains(where: { $0 != first }) { bad += 1 }
                                reads += 1
                                shared -= 1
                                snapshot.take(if: reads == nr * ops / 2)
                            }
                        }
                    }
                }
            }
            return (reads, writes, bad, maxShared)
        }
        print("reads \(reads), writes \(writes), inconsistent reads \(bad), most readers at once \(maxShared)")
        if bad != 0 || writes != nw * ops { throw ExitCode.failure }
    }
}

struct DemoSleepingBarberCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "barber",
        abstract: "The sleeping barber: semaphores for customers and the barber, a mutex for the chairs.")

    @Option(help: "Waiting-room chairs.") var chairs = 3
    @Option(help: "Customers.") var customers = 100
    @Option(help: "Microseconds per haircut.") var haircut = 200

    func validate() throws {
        guard (0...100_000).contains(chairs) else { throw ValidationError("--chairs must be 0...100000") }
        guard (0...1_000_000).contains(customers) else { throw ValidationError("--customers must be 0...1000000") }
        guard (0...1_000_000).contains(haircut) else { throw ValidationError("--haircut must be 0...1000000 µs") }
    }

    func run() throws {
        let (nChairs, nCustomers, cut) = (chairs, customers, haircut)
        let (served, away) = try UThreadRuntime.run { () -> (Int, Int) in
            let customersReady = try USemaphore(value: 0, name: "customers")
            let barberReady = try USemaphore(value: 0, name: "barber chair")
            let seats = UMutex(name: "waiting room")
            var waiting = 0
            var served = 0
            var away = 0
            var snapshot = Snapshot()
            let barber = UThread.local(name: "barber") {
                while true {
                    try customersReady.wait()  // asleep while nobody waits
                    try seats.withLock { waiting -= 1 }
                    barberReady.signal()
                    try UThread.sleep(for: .microseconds(cut))
                }
            }
            try withThreadGroup(name: "customers") { g in
                for c in 0..<nCustomers {
                    try g.spawnLocal(name: "customer \(c)") {
                        try UThread.sleep(for: .microseconds(c * cut / 2))  // arrivals
                        let sits = try seats.withLock { () -> Bool in
                            guard waiting < nChairs else { return false }
                            waiting += 1
                            return true
                        }
                        guard sits else {
                            away += 1
                            return
                        }
                        customersReady.signal()
                        snapshot.take(if: waiting == nChairs)
                        try barberReady.wait()
                        served += 1
                    }
                }
            }
            barber.cancel()
            _ = try? barber.join()
            return (served, away)
        }
        print("customers \(nCustomers): served \(served), turned away \(away)")
        if served + away != nCustomers { throw ExitCode.failure }
    }
}
