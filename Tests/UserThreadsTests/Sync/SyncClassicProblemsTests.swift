import Testing
import UserThreads

@Suite("Sync: classic problems", .timeLimit(.minutes(1)))
struct SyncClassicProblemsTests {
    /// Five philosophers, five forks (mutexes), 10,000 meals in total. Deadlock is avoided by
    /// resource ordering (each takes the lower-numbered fork first); FIFO handoff makes sure
    /// every philosopher eats.
    @Test func diningPhilosophers() throws {
        let meals = try UThreadRuntime.run {
            let n = 5
            let totalMeals = 10_000
            let forks = (0..<n).map { UMutex(name: "fork \($0)") }
            var eaten = [Int](repeating: 0, count: n)
            var served = 0
            try withThreadGroup { g in
                for p in 0..<n {
                    try g.spawnLocal(name: "philosopher \(p)") {
                        let (first, second) = (min(p, (p + 1) % n), max(p, (p + 1) % n))
                        while served < totalMeals {
                            UThread.yield()  // think
                            try forks[first].withLock {
                                try forks[second].withLock {
                                    guard served < totalMeals else { return }
                                    served += 1
                                    eaten[p] += 1
                                    UThread.yield()  // eat, holding both forks
                                }
                            }
                        }
                    }
                }
            }
            return eaten
        }
        #expect(meals.reduce(0, +) == 10_000)
        #expect(meals.allSatisfy { $0 > 10_000 / 5 / 4 }, "\(meals)")
    }

    /// Dijkstra's bounded buffer: a ring of 8 slots guarded by a mutex, with counting
    /// semaphores for empty and full slots; 4 producers and 3 consumers.
    @Test func boundedBufferProducersConsumers() throws {
        try UThreadRuntime.run {
            let slots = 8
            let producers = 4
            let consumers = 3
            let perProducer = 2_500
            var ring = [Int](repeating: 0, count: slots)
            var head = 0
            var tail = 0
            let mutex = UMutex(name: "buffer")
            let empty = try USemaphore(value: slots, name: "empty")
            let full = try USemaphore(value: 0, name: "full")
            var received: [Int] = []
            try withThreadGroup { g in
                for p in 0..<producers {
                    try g.spawnLocal {
                        for i in 0..<perProducer {
                            try empty.wait()
                            try mutex.withLock {
                                ring[tail] = p * perProducer + i
                                tail = (tail + 1) % slots
                            }
                            full.signal()
                        }
                    }
                }
                let total = producers * perProducer
                var taken = 0
                for _ in 0..<consumers {
                    try g.spawnLocal {
                        while true {
                            let more = try mutex.withLock { () -> Bool in
                                guard taken < total else { return false }
                                taken += 1
                                return true
                            }
                            guard more else { return }
                            try full.wait()
                            let v = try mutex.withLock { () -> Int in
                                let v = ring[head]
                                head = (head + 1) % slots
                                return v
                            }
                            empty.signal()
                            received.append(v)
                            if v % 3 == 0 { UThread.yield() }
                        }
                    }
                }
            }
            let total = producers * perProducer
            #expect(received.count == total)
            #expect(received.reduce(0, &+) == (0..<total).reduce(0, &+))
            #expect(Set(received).count == total)  // nothing duplicated (so nothing lost)
        }
    }

    /// Readers check that the "database" is consistent (all entries equal) while writers update
    /// it entry by entry, yielding in the middle.
    @Test func readersWriters() throws {
        try UThreadRuntime.run {
            let rw = URWLock(name: "db")
            var db = [Int](repeating: 0, count: 16)
            var inconsistent = 0
            var reads = 0
            try withThreadGroup { g in
                for _ in 0..<4 {
                    try g.spawnLocal {
                        for _ in 0..<100 {
                            try rw.withWriteLock {
                                for k in db.indices {
                                    db[k] += 1
                                    if k == 8 { UThread.yield() }
                                }
                            }
                            UThread.yield()
                        }
                    }
                }
                for _ in 0..<12 {
                    try g.spawnLocal {
                        for _ in 0..<200 {
                            try rw.withReadLock {
                                let first = db[0]
                                UThread.yield()
                                if db.contains(where: { $0 != first }) { inconsistent += 1 }
                                reads += 1
                            }
                        }
                    }
                }
            }
            #expect(inconsistent == 0)
            #expect(reads == 12 * 200)
            #expect(db.allSatisfy { $0 == 400 })
        }
    }

    /// The sleeping barber: one barber, 3 waiting chairs, 200 customers arriving over time.
    /// Every customer is either served or turned away; the barber sleeps when nobody waits.
    @Test func sleepingBarber() throws {
        try UThreadRuntime.run {
            let chairs = 3
            let customers = 200
            let customersReady = try USemaphore(value: 0, name: "customers")
            let barberReady = try USemaphore(value: 0, name: "barber")
            let seats = UMutex(name: "seats")
            var waiting = 0
            var served = 0
            var turnedAway = 0
            var haircuts = 0
            let barber = UThread.local(name: "barber") {
                while true {
                    try customersReady.wait()  // sleeps while nobody waits
                    try seats.withLock { waiting -= 1 }
                    barberReady.signal()
                    for _ in 0..<3 { UThread.yield() }  // cutting
                    haircuts += 1
                }
            }
            try withThreadGroup { g in
                for c in 0..<customers {
                    try g.spawnLocal(name: "customer \(c)") {
                        for _ in 0..<(c % 11) { UThread.yield() }  // arrival time
                        let sits = try seats.withLock { () -> Bool in
                            guard waiting < chairs else { return false }
                            waiting += 1
                            return true
                        }
                        guard sits else {
                            turnedAway += 1
                            return
                        }
                        customersReady.signal()
                        try barberReady.wait()
                        served += 1
                    }
                }
            }
            barber.cancel()
            #expect(throws: CancellationError.self) { try barber.join() }
            #expect(served + turnedAway == customers)
            #expect(served > 0 && turnedAway > 0, "served \(served), turned away \(turnedAway)")
            #expect(waiting == 0)
            #expect(haircuts >= served - 1)
        }
    }
}
