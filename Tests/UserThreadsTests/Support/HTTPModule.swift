// The HTTP application lives in its own module (UserThreadsHTTP); re-exporting it here makes
// it visible to every test file that imports UserThreads.
@_exported import UserThreadsHTTP
