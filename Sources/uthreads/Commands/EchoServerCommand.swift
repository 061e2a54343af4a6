// `uthreads echo-server`: raw TCP echo, one user thread per connection.
import ArgumentParser
import UserThreads

struct EchoServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo-server",
        abstract: "TCP echo server, one user thread per connection (try: nc 127.0.0.1 7007).")

    @Option(help: "Port to listen on.") var port: UInt16 = 7007
    @Option(help: "Numeric address to bind.") var host = "127.0.0.1"

    func run() throws {
        let limit = IO.raiseDescriptorLimit()
        try UThreadRuntime.run {
            let listener = try TCPListener(host: host, port: port)
            print("uthreads echo-server: listening on \(listener.localAddress) (RLIMIT_NOFILE \(limit))")
            while true {
                let connection = try listener.accept()
                _ = UThread.local(name: "echo", stackSize: 64 * 1024) {
                    defer { try? connection.close() }
                    var buffer = [UInt8](repeating: 0, count: 16 * 1024)
                    while true {
                        let n = try buffer.withUnsafeMutableBytes { try connection.read(into: $0) }
                        if n == 0 { return }
                        try buffer.withUnsafeBytes {
                            try connection.write(all: UnsafeRawBufferPointer(rebasing: $0[0..<n]))
                        }
                    }
                }
            }
        }
    }
}
