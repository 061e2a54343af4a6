import Glibc
import Testing
@testable import UserThreads

@Suite(.timeLimit(.minutes(1))) struct HTTPParserTests {
    let parser = HTTPRequestParser(maxHeadBytes: 1024, maxHeaderCount: 10, maxBodyBytes: 100)

    func parse(_ s: String) -> HTTPParseResult { parser.parse(Array(s.utf8)) }

    @Test func simpleGet() {
        guard case .request(let r, let consumed) = parse("GET / HTTP/1.1\r\nHost: x\r\n\r\n") else {
            Issue.record("not parsed")
            return
        }
        #expect(r.method == "GET" && r.target == "/" && r.minorVersion == 1 && r.keepAlive)
        #expect(consumed == 27)
        #expect(r.header("host") == "x")
    }

    @Test func postWithBodyAndPipelining() {
        let text = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n"
        guard case .request(let r, let consumed) = parse(text) else {
            Issue.record("not parsed")
            return
        }
        #expect(r.contentLength == 5)
        #expect(consumed == text.utf8.count - "GET / HTTP/1.1\r\n".utf8.count)
    }

    @Test func incompleteIsNeedMore() {
        #expect(parse("GET / HTTP/1.1\r\nHo") == .needMore)
        #expect(parse("GET") == .needMore)
        #expect(parse("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel") == .needMore)
    }

    @Test func connectionHeaders() {
        if case .request(let r, _) = parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") {
            #expect(!r.keepAlive)
        } else {
            Issue.record("")
        }
        if case .request(let r, _) = parse("GET / HTTP/1.0\r\n\r\n") { #expect(!r.keepAlive) } else { Issue.record("") }
        if case .request(let r, _) = parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n") {
            #expect(r.keepAlive)
        } else {
            Issue.record("")
        }
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

    /// The seed of the random tests: `UTHREADS_TEST_SEED` to replay a failure, otherwise a fresh
    /// one per run. Written to stderr before use (a crash prints nothing after it), and part of
    /// every failure message.
    static let seed: UInt64 = {
        let given = getenv("UTHREADS_TEST_SEED").flatMap { UInt64(String(cString: $0)) }
        let seed = given ?? UInt64.random(in: 0...UInt64.max)
        let line =
            "HTTPParserTests: random inputs from seed \(seed) (replay: UTHREADS_TEST_SEED=\(seed) swift test --filter HTTPParserTests)\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
        return seed
    }()

    /// Random bytes, alone or after a request line, never crash the parser, and what it answers
    /// is consistent: a request consumes 1...count bytes and parses again, alone, to the same
    /// request and length; an error is one of the statuses the parser documents; the same
    /// input gives the same answer twice.
    @Test func randomBytesNeverCrash() {
        let seed = Self.seed
        var rng = SplitMix64(seed: seed)
        var outcomes: [String: Int] = [:]
        for i in 0..<2000 {
            let n = Int.random(in: 0..<200, using: &rng)
            var bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if Bool.random(using: &rng) { bytes = Array("GET / HTTP/1.1\r\n".utf8) + bytes }
            let result = parser.parse(bytes)
            let context: Comment = "seed \(seed), input \(i): \(bytes)"
            #expect(parser.parse(bytes) == result, context)
            if case .request(_, let consumed) = result {
                outcomes["request", default: 0] += 1
                #expect((1...bytes.count).contains(consumed), context)
                if (1...bytes.count).contains(consumed) {
                    #expect(parser.parse(Array(bytes[0..<consumed])) == result, context)
                }
            } else if case .error(let status) = result {
                outcomes["error", default: 0] += 1
                #expect([400, 413, 431, 501].contains(status), context)
            } else {
                outcomes["\(result)", default: 0] += 1
            }
        }
        // Both kinds of input were exercised: garbage (errors) and incomplete heads.
        #expect(
            outcomes["error", default: 0] > 0 && outcomes["\(HTTPParseResult.needMore)", default: 0] > 0,
            "seed \(seed): \(outcomes)")
    }
}
