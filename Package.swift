// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "UserThreads",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "UserThreads", targets: ["UserThreads"]),
        .library(name: "UserThreadsHTTP", targets: ["UserThreadsHTTP"]),
        .executable(name: "uthreads", targets: ["uthreads"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // `swift package generate-documentation --target UserThreads` (scripts/check-docs.sh).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // Layer 0: the context switch in assembly, the thread control block layout,
        // the fault handler and the few syscalls Glibc does not export to Swift.
        .target(name: "CUThreads"),
        // Layers 1..7: stacks, thread table, scheduler, timers, reactor, sync, public API.
        .target(
            name: "UserThreads",
            dependencies: [
                "CUThreads",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // An application on top of the library: the HTTP/1.1 parser and server of `uthreads serve`.
        .target(
            name: "UserThreadsHTTP",
            dependencies: ["UserThreads", .product(name: "Logging", package: "swift-log")]
        ),
        // The kernel-thread peers of the benchmarks (pthreads, futex), in C.
        .target(name: "CKernelPeers"),
        // The command line: tour, benchmarks, demos.
        .executableTarget(
            name: "uthreads",
            dependencies: [
                "UserThreads",
                "UserThreadsHTTP",
                "CUThreads",
                "CKernelPeers",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The tests also run `uthreads selftest …` as child processes (crash reports, the
        // kernel's view of the process), so the executable is a dependency.
        .testTarget(
            name: "UserThreadsTests",
            dependencies: ["UserThreads", "UserThreadsHTTP", "CUThreads", "uthreads", .product(name: "Logging", package: "swift-log")]),
    ],
    swiftLanguageModes: [.v6]
)
