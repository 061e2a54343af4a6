// Layer 7: the threads waiting on one descriptor, per direction.
//
// Two WaitQueues, so that a reader and a writer of one socket wait independently and several
// threads may wait for the same direction (the reactor wakes them all on an edge; each retries
// its call). Timeouts and cancel() unlink a waiter in O(1) through the queue (see ThreadList).
//
// `readEdge` remembers a read-side edge that arrived while no thread waited (Go's pdReady), so a
// stream whose last read came back short (the kernel buffer was drained) can wait for the next
// edge without first making a read(2) that would only say EAGAIN: one system call less per
// request-response exchange (NIO skips the same read the same way). A short read does not
// drain a pending end of stream, hence the sticky `hangUp`.
final class DescriptorWaiters {
    let readers = WaitQueue()
    let writers = WaitQueue()
    var readEdge = false
    /// The peer shut down or the descriptor is in error (RDHUP/HUP/ERR, sticky): there will be no
    /// more edges, and a read returns at once (end of stream or the error).
    var hangUp = false
}
