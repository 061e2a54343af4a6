import Testing
@testable import UserThreads

@Suite(.timeLimit(.minutes(1))) struct HTTPParserTests {
    let parser = HTTPRequestParser(maxHeadBytes: 1024, maxHeaderCount: 10, maxBodyBytes: 100)

    func parse(_ s: String) -> HTTPParseResult { parser.parse(Array(s.utf8)) }

    @Test func simpleGet() {
        guard case .request(let r, let consumed) = parse("GET / HTTP/1.1\r\nHost: x\r\n\r\n") else { Issue.record("not parsed"); return }
        #expect(r.method == "GET" && r.target == "/" && r.minorVersion == 1 && r.keepAlive)
        #expect(consumed == 27)
        #expect(r.header("host") == "x")
    }

    @Test func postWithBodyAndPipelining() {
        let text = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n"
        guard case .request(let r, let consumed) = parse(text) else { Issue.record("not parsed"); return }
        #expect(r.contentLength == 5)
        #expect(consumed == text.utf8.count - "GET / HTTP/1.1\r\n".utf8.count)
    }

    @Test func incompleteIsNeedMore() {
        #expect(parse("GET / HTTP/1.1\r\nHo") == .needMore)
        #expect(parse("GET") == .needMore)
        #expect(parse("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel") == .needMore)
    }

    @Test func connectionHeaders() {
        if case .request(let r, _) = parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") { #expect(!r.keepAlive) } else { Issue.record("") }
        if case .request(let r, _) = parse("GET / HTTP/1.0\r\n\r\n") { #expect(!r.keepAlive) } else { Issue.record("") }
        if case .request(let r, _) = parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n") { #expect(r.keepAlive) } else { Issue.record("") }
    }

    @Test(arguments: [
        "GARBAGE\r\n\r\n",
        " GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET / HTTP/2.0\r\nHost: x\r\n\r\n",
        "GET / HTTP/1.1 \r\nHost: x\r\n\r\n",
        "GET x HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET / HTTP/1.1\nHost: x\n\n",
        "GET / HTTP/1.1\r\nHost: x\rY\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nBad\u{1}: y\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX: a\u{7F}b\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "\r\n\r\n",
        "GET\r\n\r\n",
    ])
    func malformedIs400(_ text: String) {
        #expect(parse(text) == .error(status: 400), "\(text.debugDescription)")
    }

    @Test func oversized() {
        #expect(parse("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n") == .error(status: 413))
        let longHeader = "GET / HTTP/1.1\r\nHost: x\r\nX: " + String(repeating: "a", count: 2000) + "\r\n\r\n"
        #expect(parse(longHeader) == .error(status: 431))
        let incompleteButLong = "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 2000)
        #expect(parse(incompleteButLong) == .error(status: 431))
        let many = "GET / HTTP/1.1\r\nHost: x\r\n" + (0..<20).map { "X\($0): y\r\n" }.joined() + "\r\n"
        #expect(parse(many) == .error(status: 431))
        #expect(parse("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n") == .error(status: 501))
    }

    @Test func randomBytesNeverCrash() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let n = Int.random(in: 0..<200, using: &rng)
            var bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if Bool.random() { bytes = Array("GET / HTTP/1.1\r\n".utf8) + bytes }
            _ = parser.parse(bytes)
        }
    }
}
