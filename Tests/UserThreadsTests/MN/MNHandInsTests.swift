import Testing

@testable import UserThreads

/// The deadlock check's bracket around hand-ins from outside, replayed step by step: every
/// interleaving of a spawn from outside with the check's reads.
@Suite(.timeLimit(.minutes(1))) struct MNHandInsTests {
    /// A spawn from outside, as the runtime makes it (MNRuntime.spawn, inject): bracketed, it
    /// counts the thread live, then queues it. The check's look reads the queue, then the live
    /// count, and sees a deadlock when a live thread is queued nowhere. No order of these steps
    /// is a real deadlock: the thread is always either not yet live or queued.
    final class Scene {
        let handIns = MNHandIns()
        var live = 0
        var queued = 0
        var order: [Character]  // "H": the hand-in's next step, "C": the check's next read
        var handInSteps = 0
        init(_ order: [Character]) { self.order = order }

        /// Runs the hand-in's steps up to the check's next read, then consumes that read's turn.
        func beforeRead(bracketed: Bool) {
            while let next = order.first, next == "H" {
                order.removeFirst()
                switch handInSteps {
                case 0: if bracketed { handIns.begin() }
                case 1: live = 1
                case 2: queued = 1
                default: if bracketed { handIns.end() }
                }
                handInSteps += 1
            }
            if !order.isEmpty { order.removeFirst() }
        }

        /// The look: the queue, then the live count, each read in its turn.
        func look(bracketed: Bool) -> Bool {
            beforeRead(bracketed: bracketed)
            let q = queued
            beforeRead(bracketed: bracketed)
            return q == 0 && live > 0
        }

        /// The whole check: the bracket's reads around the look.
        func check() -> Bool {
            beforeRead(bracketed: true)  // the read of `done`
            return handIns.noneDuring(
                { look(bracketed: true) },
                step: { step in
                    // After reading `done`: the read of `begun` comes next; after the look:
                    // the second read of `begun`.
                    if step != .readBegun { beforeRead(bracketed: true) }
                })
        }
    }

    /// Every order of `h` "H" and `c` "C" steps.
    static func interleavings(h: Int, c: Int) -> [[Character]] { UserThreadsTests.interleavings("H", h, "C", c) }

    /// The false deadlock ThreadSanitizer's CI run found: the look alone, without the bracket,
    /// reads the queue before the spawn and the live count after it.
    @Test func withoutTheBracketALookSeesALiveThreadQueuedNowhere() {
        var seen: [String] = []
        for order in Self.interleavings(h: 4, c: 2) {
            let scene = Scene(order)
            if scene.look(bracketed: false) { seen.append(String(order)) }
        }
        #expect(seen.contains("HHCHHC"))  // count live, [read queue], queue, [read live]
        #expect(!seen.isEmpty)
    }

    /// With the bracket, no order of the spawn's four steps (begin, count live, queue, end) and
    /// the check's five reads (done, begun, queue, live, begun) declares a deadlock.
    @Test func noInterleavingWithAHandInDeclaresADeadlock() {
        let orders = Self.interleavings(h: 4, c: 5)
        #expect(orders.count == 126)
        var declared: [String] = []
        for order in orders where Scene(order).check() {
            declared.append(String(order))
        }
        #expect(declared == [])
    }

    /// A look that finds nothing to do, with no hand-in before, during or after, is believed;
    /// a hand-in under way, or one begun during the look, makes the check answer no.
    @Test func theBracketBelievesAQuietLookOnly() {
        let handIns = MNHandIns()
        let quiet = handIns.noneDuring { true }
        #expect(quiet)
        let workFound = handIns.noneDuring { false }
        #expect(!workFound)
        handIns.begin()
        let underWay = handIns.noneDuring { true }
        #expect(!underWay)
        handIns.end()
        let quietAgain = handIns.noneDuring { true }
        #expect(quietAgain)
        let begunDuring = handIns.noneDuring {
            handIns.begin()
            handIns.end()
            return true
        }
        #expect(!begunDuring)
        var steps: [MNHandIns.Step] = []
        let stepped = handIns.noneDuring({ true }, step: { steps.append($0) })
        #expect(stepped)
        #expect(steps == [.readDone, .readBegun, .looked])
    }
}
