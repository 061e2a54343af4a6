import Testing
import UserThreadsHTTP

/// Inputs the libFuzzer harness (fuzz/http-parser, scripts/fuzz-http.sh) found, each with the
/// invariant it broke.
@Suite(.timeLimit(.minutes(1))) struct HTTPParserFuzzRegressionTests {
    /// A head whose blank line ended up to 3 bytes past `maxHeadBytes` was accepted (the scan
    /// stopped at the limit but peeked past it): heads are at most `maxHeadBytes`, always.
    @Test(arguments: 20...30)
    func headIsNeverLongerThanTheLimit(maxHeadBytes: Int) {
        let parser = HTTPRequestParser(maxHeadBytes: maxHeadBytes, maxHeaderCount: 10, maxBodyBytes: 10)
        let head = Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)  // 27 bytes
        switch parser.parse(head) {
        case .request(let request, _):
            #expect(request.headLength <= maxHeadBytes)
            #expect(head.count <= maxHeadBytes)
        case .error(let status):
            #expect(status == 431 && head.count > maxHeadBytes)
        case .needMore:
            Issue.record("a complete head is never .needMore")
        }
    }
}
