// Layer 11: the M:N channel names of before, kept so that code written against them still
// compiles while the API is being unified: `Channel` and `channelSelect` (Sync/) work between
// threads on any worker.

/// The M:N channel: now `Channel`, which works on any number of workers.
public typealias MNChannel<Element> = Channel<Element>

/// The M:N select's case builder: now `ChannelSelect`.
public typealias MNSelect<R> = ChannelSelect<R>

/// The M:N select: now `channelSelect`, which works on any number of workers.
public func mnSelect<R>(timeout: Duration? = nil, _ build: (ChannelSelect<R>) throws -> Void) throws -> R {
    try channelSelect(timeout: timeout, build)
}
