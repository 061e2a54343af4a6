// Which `UThreadError` a call threw, not only that it threw one: a test that accepts any error
// passes when the call fails for the wrong reason.
import Testing
import UserThreads

extension UThreadError {
    /// The name of the case ("closed", "invalidArgument", …), read by reflection so that a case
    /// added to the library needs no change here; nil for cases without a payload (compare those
    /// with `==`: `#expect(throws: UThreadError.timedOut) { … }`).
    var payloadCaseName: String? { Mirror(reflecting: self).children.first?.label }

    /// The text a payload-carrying case holds (a message, or the deadlock report).
    var payloadText: String? { Mirror(reflecting: self).children.first?.value as? String }
}

/// Runs `body` and checks that it throws a `UThreadError` of the same case as `example` (the
/// payload, free text, is not compared: `expectError(sameCaseAs: .closed("")) { … }`). Returns
/// the error's text (message or report) for further checks, or nil after recording an issue.
@discardableResult
func expectError<R>(
    sameCaseAs example: UThreadError, _ comment: Comment? = nil,
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> R
) -> String? {
    let wanted = example.payloadCaseName ?? "\(example)"
    let note = comment.map { " (\($0))" } ?? ""
    do {
        _ = try body()
        Issue.record("expected UThreadError.\(wanted), nothing was thrown\(note)", sourceLocation: sourceLocation)
    } catch let error as UThreadError {
        if let name = error.payloadCaseName, name == example.payloadCaseName { return error.payloadText ?? "" }
        if example.payloadCaseName == nil && error == example { return "" }
        Issue.record("expected UThreadError.\(wanted), got \(error)\(note)", sourceLocation: sourceLocation)
    } catch {
        Issue.record(
            "expected UThreadError.\(wanted), got \(type(of: error)): \(error)\(note)", sourceLocation: sourceLocation)
    }
    return nil
}
