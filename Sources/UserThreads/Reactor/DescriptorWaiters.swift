// Layer 5: the threads waiting on one descriptor, per direction.
//
// Two WaitQueues, so that a reader and a writer of one socket wait independently and several
// threads may wait for the same direction (the reactor wakes them all on an edge; each retries
// its call). Timeouts and cancel() unlink a waiter in O(1) through the queue (see ThreadList).
final class DescriptorWaiters {
    let readers = WaitQueue()
    let writers = WaitQueue()
}
