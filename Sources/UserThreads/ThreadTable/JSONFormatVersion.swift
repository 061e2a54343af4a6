// Layer 4: the `"version"` of the thread table's JSON form (ThreadTable, ThreadDump).
//
// Written as a property wrapper so the two types keep their synthesised Codable conformances:
// the wrapper always encodes the current version, and decoding reads any version up to it. The
// first format had no `"version"` key, so a missing key is version 1: synthesised decoding
// calls `decode(_:forKey:)` for the wrapper's type, and the overload below answers a missing key
// with 1 instead of an error. Rejected: hand-written init(from:)/encode(to:) in both types, which
// restated every key of each.

/// The version of the JSON form a ``ThreadTable`` or ``ThreadDump`` was decoded from: 1 when the
/// document had no `"version"` key (the first format), at most ``ThreadTable/formatVersion``
/// (a newer one is a decoding error that names both). Encoding always writes
/// ``ThreadTable/formatVersion``.
@propertyWrapper
public struct JSONFormatVersion: Sendable, Hashable, Codable {
    /// The version.
    public var wrappedValue: Int

    /// A version (``ThreadTable/formatVersion`` for what this library makes).
    public init(wrappedValue: Int) {
        self.wrappedValue = wrappedValue
    }

    /// Decodes a version this library reads (1 through ``ThreadTable/formatVersion``).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let version = try c.decode(Int.self)
        guard (1...ThreadTable.formatVersion).contains(version) else {
            throw DecodingError.dataCorruptedError(
                in: c,
                debugDescription:
                    "thread table JSON version \(version) is not one this library reads (1...\(ThreadTable.formatVersion)): it was written by a newer UserThreads"
            )
        }
        wrappedValue = version
    }

    /// Encodes the current version: what this library writes is always in its own format.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(ThreadTable.formatVersion)
    }
}

extension KeyedDecodingContainer {
    /// A document without a `"version"` key is version 1.
    func decode(_ type: JSONFormatVersion.Type, forKey key: Key) throws -> JSONFormatVersion {
        try decodeIfPresent(type, forKey: key) ?? JSONFormatVersion(wrappedValue: 1)
    }
}
