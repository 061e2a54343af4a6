// libFuzzer harness for the HTTP/1.1 request parser (Sources/UserThreadsHTTP/HTTPParser.swift).
//
// Built stand-alone with the parser's two files (they import nothing) by scripts/fuzz-http.sh:
//   swiftc -sanitize=fuzzer,address -parse-as-library fuzz/http-parser/FuzzHTTPParser.swift \
//       Sources/UserThreadsHTTP/HTTPParser.swift Sources/UserThreadsHTTP/HTTPRequest.swift
//
// Besides "no crash, no sanitizer report", each input checks the parser's contract; a broken
// one traps (a finding, with the input saved by libFuzzer):
//   - `consumed` and `headLength` lie within the input, and the body is Content-Length bytes;
//   - bytes after `consumed` do not change the request (a pipelined next request is not read);
//   - the request parsed alone (input cut at `consumed`) is the same request;
//   - a strict prefix of a whole request is `.needMore` (never an error, never a request):
//     tried at a few cut points, not all (that would be quadratic);
//   - errors are only 400, 413, 431, 501; the same input gives the same result twice;
//   - with small limits (the first byte picks them) the same holds.

import Glibc

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPParser(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    check(HTTPRequestParser(), bytes)
    if let first = bytes.first {
        // Small limits, so that the 431 and 413 paths are reached with short inputs.
        var small = HTTPRequestParser(
            maxHeadBytes: 16 + Int(first & 0x3F), maxHeaderCount: Int(first >> 6),
            maxBodyBytes: Int(first & 0x0F))
        small.recordsHeaders = first & 0x10 != 0
        check(small, Array(bytes.dropFirst()))
    }
    return 0
}

private func check(_ parser: HTTPRequestParser, _ bytes: [UInt8]) {
    let result = parser.parse(bytes)
    expect(result == parser.parse(bytes), "not deterministic")
    switch result {
    case .needMore:
        break
    case .error(let status):
        expect([400, 413, 431, 501].contains(status), "unexpected status \(status)")
    case .request(let request, let consumed):
        expect(
            request.headLength > 0 && request.headLength <= consumed && consumed <= bytes.count,
            "consumed \(consumed), head \(request.headLength), input \(bytes.count)")
        expect(consumed - request.headLength == request.contentLength, "body length")
        expect(request.contentLength <= parser.maxBodyBytes, "body over the limit")
        expect(request.headLength <= parser.maxHeadBytes, "head over the limit")
        expect(request.target.hasPrefix("/"), "target not in origin form")
        let alone = Array(bytes[..<consumed])
        expect(parser.parse(alone) == result, "the request parsed alone differs")
        expect(parser.parse(alone + Array("GET / HTTP/1.1\r\n".utf8)) == result, "trailing bytes changed it")
        for cut in Set([consumed - 1, request.headLength - 1, request.headLength / 2, 1])
        where cut > 0 && cut < consumed {
            expect(parser.parse(Array(alone[..<cut])) == .needMore, "prefix of \(cut) bytes is not .needMore")
        }
    }
}

/// A broken invariant: says which (precondition's message is dropped in -O builds), then traps.
private func expect(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() {
        fputs("fuzz-http-parser: broken invariant: \(message())\n", stderr)  // unbuffered
        fatalError("broken invariant")
    }
}
