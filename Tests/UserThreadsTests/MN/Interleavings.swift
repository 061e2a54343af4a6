/// Every order of `countA` steps of one party and `countB` of another, each a list of their
/// letters ("LCCLLCC"): the replays of MNStuckCensusTests and MNHandInsTests run each one.
func interleavings(_ a: Character, _ countA: Int, _ b: Character, _ countB: Int) -> [[Character]] {
    var out: [[Character]] = []
    func build(_ prefix: [Character], _ na: Int, _ nb: Int) {
        if na == 0 && nb == 0 {
            out.append(prefix)
            return
        }
        if na > 0 { build(prefix + [a], na - 1, nb) }
        if nb > 0 { build(prefix + [b], na, nb - 1) }
    }
    build([], countA, countB)
    return out
}
