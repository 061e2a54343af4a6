// Layer 14: a strict HTTP/1.1 request parser (RFC 9112) for `uthreads serve`. It imports
// nothing (it compiles stand-alone for the fuzzer in fuzz/http-parser).
//
// Strict means: anything not clearly valid is a 400, never a guess. Lines end in CRLF (a bare
// LF or CR is an error); the request line is `token SP origin-form SP HTTP/1.0|HTTP/1.1`;
// header names are tokens followed directly by ':'; values hold no control characters but
// HTAB; obsolete line folding is rejected; Content-Length is digits only and may appear more
// than once only with the same value; HTTP/1.1 requires exactly one Host. Transfer-Encoding
// (chunked bodies) is not implemented: 501. Limits: a head larger than `maxHeadBytes` or with
// more than `maxHeaderCount` fields is 431, a body larger than `maxBodyBytes` is 413 (decided
// from Content-Length, before reading the body).
//
// The parser is stateless over the bytes buffered so far: it returns `.needMore` until a whole
// request (head and body) is there. Requests are small, so re-scanning the few bytes of a head
// that arrived in pieces is cheaper than keeping a state machine.

/// Outcome of parsing buffered bytes.
public enum HTTPParseResult: Sendable, Equatable {
    /// A complete request; `consumed` bytes (head + body) belong to it.
    case request(HTTPRequest, consumed: Int)
    /// The bytes so far are a valid prefix; read more.
    case needMore
    /// Reply with this status and close the connection (400, 413, 431, 501).
    case error(status: Int)
}

/// A strict HTTP/1.1 request parser (RFC 9112): anything not clearly valid is an error status,
/// never a guess (see `HTTPParseResult`).
///
/// It keeps no state between calls: `parse(_:)` re-examines the bytes buffered so far and
/// answers `.needMore` until a whole request (head and body) is there. Chunked bodies
/// (Transfer-Encoding) are answered with 501. Used by `HTTPServer`, one call per read.
public struct HTTPRequestParser: Sendable {
    /// The largest head (request line, header fields and the blank line) accepted, in bytes
    /// (default 8192). A buffer this long that still holds no complete head is answered with 431.
    public var maxHeadBytes: Int
    /// The most header fields accepted in one request (default 100); one more is answered with 431.
    public var maxHeaderCount: Int
    /// The largest body accepted, in bytes (default 1 MiB). A larger Content-Length is answered
    /// with 413 as soon as the head is parsed, before any of the body is read.
    public var maxBodyBytes: Int
    /// Whether `HTTPRequest.headers` is filled (a server that only needs Content-Length,
    /// Connection and Host can skip making two strings per field).
    public var recordsHeaders = true

    /// A parser with the given limits; `recordsHeaders` starts true.
    ///
    /// - Parameters:
    ///   - maxHeadBytes: the largest head accepted, in bytes (default 8192; larger: 431).
    ///   - maxHeaderCount: the most header fields accepted (default 100; more: 431).
    ///   - maxBodyBytes: the largest body accepted, in bytes (default 1 MiB; larger: 413).
    public init(maxHeadBytes: Int = 8192, maxHeaderCount: Int = 100, maxBodyBytes: Int = 1 << 20) {
        self.maxHeadBytes = maxHeadBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodyBytes = maxBodyBytes
    }

    /// Parses the request at the start of `bytes`: the array form of `parse(_:)` taking an
    /// `UnsafeRawBufferPointer`, with the same results.
    ///
    /// Returns `.request(_, consumed:)` when a whole request is there (bytes after `consumed`
    /// belong to the next, pipelined request), `.needMore` while `bytes` is a valid prefix, or
    /// `.error(status:)` with the status to answer before closing the connection. O(n) in the
    /// buffered bytes.
    public func parse(_ bytes: [UInt8]) -> HTTPParseResult {
        bytes.withUnsafeBytes { parse($0) }
    }

    /// Parses the request at the start of the buffered bytes `b`.
    ///
    /// Returns `.request(_, consumed:)` when the head and the whole body (Content-Length bytes)
    /// are there; the body is `b[request.headLength..<consumed]`, and bytes after `consumed` belong
    /// to the next, pipelined request. Returns `.needMore` while `b` is a valid prefix of a request,
    /// and `.error(status:)` — 400 (malformed), 413 (body over `maxBodyBytes`), 431 (head over
    /// `maxHeadBytes` or `maxHeaderCount`) or 501 (Transfer-Encoding) — as soon as the bytes so far
    /// decide it. O(n) in `b.count`: each call re-scans from the start, which is cheap for
    /// requests as small as this parser accepts.
    public func parse(_ b: UnsafeRawBufferPointer) -> HTTPParseResult {
        // Find the end of the head, checking line endings on the way.
        var headEnd = -1
        var i = 0
        let limit = min(b.count, maxHeadBytes)
        while i < limit {
            let c = b[i]
            if c == 0x0A { return .error(status: 400) }  // LF without CR
            if c == 0x0D {
                guard i + 1 < b.count else { break }
                if b[i + 1] != 0x0A { return .error(status: 400) }  // CR without LF
                if i + 3 < b.count, b[i + 2] == 0x0D, b[i + 3] == 0x0A {
                    headEnd = i + 4
                    break
                }
                i += 2
                continue
            }
            i += 1
        }
        if headEnd < 0 {
            if b.count >= maxHeadBytes { return .error(status: 431) }
            return checkPrefix(b)
        }
        // The scan stops at `maxHeadBytes` but looks up to 3 bytes past it for the blank line.
        if headEnd > maxHeadBytes { return .error(status: 431) }
        // Request line.
        var p = 0
        let methodStart = p
        while p < headEnd, isTokenChar(b[p]) { p += 1 }
        guard p > methodStart, b[p] == 0x20 else { return .error(status: 400) }
        let method = string(b, methodStart, p)
        p += 1
        let targetStart = p
        while p < headEnd, b[p] > 0x20, b[p] < 0x7F { p += 1 }
        guard p > targetStart, b[p] == 0x20, b[targetStart] == UInt8(ascii: "/") else { return .error(status: 400) }
        let target = string(b, targetStart, p)
        p += 1
        guard p + 10 <= headEnd, matches(b, p, "HTTP/1."), b[p + 7] == 0x30 || b[p + 7] == 0x31,
            b[p + 8] == 0x0D, b[p + 9] == 0x0A
        else { return .error(status: 400) }
        let minor = Int(b[p + 7] - 0x30)
        p += 10
        // Header fields.
        var headers: [(name: String, value: String)] = []
        var contentLength: Int? = nil
        var hosts = 0
        var fieldCount = 0
        var keepAlive = minor == 1
        while p < headEnd - 2 {
            if b[p] == 0x20 || b[p] == 0x09 { return .error(status: 400) }  // obsolete folding
            let nameStart = p
            while isTokenChar(b[p]) { p += 1 }
            guard p > nameStart, b[p] == UInt8(ascii: ":") else { return .error(status: 400) }
            let nameEnd = p
            p += 1
            while b[p] == 0x20 || b[p] == 0x09 { p += 1 }
            let valueStart = p
            while b[p] != 0x0D {
                let c = b[p]
                if (c < 0x20 && c != 0x09) || c == 0x7F { return .error(status: 400) }
                p += 1
            }
            var valueEnd = p
            while valueEnd > valueStart, b[valueEnd - 1] == 0x20 || b[valueEnd - 1] == 0x09 { valueEnd -= 1 }
            p += 2
            fieldCount += 1
            if fieldCount > maxHeaderCount { return .error(status: 431) }
            if recordsHeaders { headers.append((string(b, nameStart, nameEnd), string(b, valueStart, valueEnd))) }
            switch nameEnd - nameStart {
            case 14 where equalsLower(b, nameStart, "content-length"):
                guard valueEnd > valueStart, valueEnd - valueStart <= 18 else { return .error(status: 400) }
                var n = 0
                for k in valueStart..<valueEnd {
                    let d = b[k]
                    guard d >= 0x30 && d <= 0x39 else { return .error(status: 400) }
                    n = n * 10 + Int(d - 0x30)
                }
                if let previous = contentLength, previous != n { return .error(status: 400) }
                contentLength = n
            case 17 where equalsLower(b, nameStart, "transfer-encoding"):
                return .error(status: 501)
            case 4 where equalsLower(b, nameStart, "host"):
                hosts += 1
            case 10 where equalsLower(b, nameStart, "connection"):
                for token in string(b, valueStart, valueEnd).lowercased().split(separator: ",") {
                    let t = token.trimmingSpaces
                    if t == "close" { keepAlive = false } else if t == "keep-alive" { keepAlive = true }
                }
            default:
                break
            }
        }
        if minor == 1 && hosts != 1 { return .error(status: 400) }
        let length = contentLength ?? 0
        if length > maxBodyBytes { return .error(status: 413) }
        if b.count < headEnd + length { return .needMore }
        let request = HTTPRequest(
            method: method, target: target, minorVersion: minor, headers: headers,
            contentLength: length, keepAlive: keepAlive, headLength: headEnd)
        return .request(request, consumed: headEnd + length)
    }

    /// Rejects an incomplete head early when its request line is already invalid.
    private func checkPrefix(_ b: UnsafeRawBufferPointer) -> HTTPParseResult {
        var p = 0
        while p < b.count, isTokenChar(b[p]) { p += 1 }
        if p == b.count { return .needMore }
        if p == 0 || b[p] != 0x20 { return .error(status: 400) }
        return .needMore
    }

    @inline(__always)
    private func isTokenChar(_ c: UInt8) -> Bool {
        // tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
        switch c {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E: return true
        default: return false
        }
    }

    private func string(_ b: UnsafeRawBufferPointer, _ from: Int, _ to: Int) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: b[from..<to]), as: UTF8.self)
    }

    private func matches(_ b: UnsafeRawBufferPointer, _ at: Int, _ literal: StaticString) -> Bool {
        let n = literal.utf8CodeUnitCount
        guard at + n <= b.count else { return false }
        let l = literal.utf8Start
        for k in 0..<n where b[at + k] != l[k] { return false }
        return true
    }

    private func equalsLower(_ b: UnsafeRawBufferPointer, _ at: Int, _ lower: StaticString) -> Bool {
        let l = lower.utf8Start
        for k in 0..<lower.utf8CodeUnitCount {
            var c = b[at + k]
            if c >= 0x41 && c <= 0x5A { c |= 0x20 }
            if c != l[k] { return false }
        }
        return true
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return s
    }
}
