// Layer 14: what the HTTP/1.1 parser extracts from a request (stand-alone, as the parser).

/// A parsed HTTP/1.x request head plus where its body lies in the parsed bytes.
public struct HTTPRequest: Sendable, Equatable {
    /// The request method exactly as sent (a token, case-sensitive: "GET", "POST", …).
    public var method: String
    /// The request target in origin form, exactly as sent (not percent-decoded): it starts with
    /// "/" and may carry a query, e.g. "/echo?x=1".
    public var target: String
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion: Int
    /// Header fields in order, names as sent.
    public var headers: [(name: String, value: String)]
    /// The body's length in bytes, from Content-Length (0 when absent). The body is the bytes
    /// `headLength..<headLength + contentLength` of the parsed buffer.
    public var contentLength: Int
    /// Whether the connection stays open after the response (HTTP/1.1 default unless
    /// "Connection: close"; HTTP/1.0 only with "Connection: keep-alive").
    public var keepAlive: Bool
    /// Bytes of the head (request line, headers, blank line): the body starts here.
    public var headLength: Int

    /// Equal when every field is (header fields compared in order, names and values as sent).
    public static func == (a: HTTPRequest, b: HTTPRequest) -> Bool {
        a.method == b.method && a.target == b.target && a.minorVersion == b.minorVersion
            && a.headers.map(\.name) == b.headers.map(\.name) && a.headers.map(\.value) == b.headers.map(\.value)
            && a.contentLength == b.contentLength && a.keepAlive == b.keepAlive && a.headLength == b.headLength
    }

    /// The first value of header `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.name.lowercased() == lower }?.value
    }
}
