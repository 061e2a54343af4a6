// Layer 10: a started thread handed from a busy M:N worker to an idle one (the essay: MNWorker.swift).

/// A started, ready M:N thread that a busy worker gave up for an idle one: its object, its
/// row, which stays in its home worker's table, and what its scheduling policy there gave up
/// with it (`SchedulingPolicy.emigrate`). Published by the `migrants` lock or by mail.
struct MNMigrant: @unchecked Sendable {
    let object: MNThreadObject
    let block: ControlBlock
    let policyState: (any Sendable)?
}
