// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "UserThreads",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "UserThreads", targets: ["UserThreads"]),
        .library(name: "UserThreadsHTTP", targets: ["UserThreadsHTTP"]),
        .executable(name: "uthreads", targets: ["uthreads"]),
        // Opt-in: the C library's blocking calls park user threads (Sources/UserThreadsJacket).
        .library(name: "UserThreadsJacket", targets: ["UserThreadsJacket"]),
        // The same, as libuthreads-jacket.so for LD_PRELOAD into binaries that cannot be relinked.
        .library(name: "uthreads-jacket", type: .dynamic, targets: ["UserThreadsJacket"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // The runtime's gauges and counters (Runtime/RuntimeMetrics.swift); the Prometheus
        // exporter behind `uthreads serve --metrics`.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // `swift package generate-documentation --target UserThreads` (scripts/check-docs.sh).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // Layer 0: the context switch in assembly, the thread control block layout,
        // the fault handler and the few syscalls Glibc does not export to Swift.
        .target(name: "CUThreads", dependencies: ["CUThreadsJacketABI"]),
        // The contract between the runtime and the jacket (a header: the jacket links no runtime code).
        .target(name: "CUThreadsJacketABI"),
        // The jacket: defines read, write, poll, connect, nanosleep, … and reaches the real ones
        // with dlsym(RTLD_NEXT); on a user thread a call that would block parks instead.
        .target(name: "UserThreadsJacket", dependencies: ["CUThreadsJacketABI"]),
        // libcurl's easy API loaded with dlopen (no headers needed to build): `demo jacket`, tests.
        .target(name: "CJacketCurl"),
        // Layers 1..12 (DEVELOPERS.md, "Layers"): stacks to the public API, M:N and the bridge.
        .target(
            name: "UserThreads",
            dependencies: [
                "CUThreads",
                "CUThreadsJacketABI",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        // An application on top of the library: the HTTP/1.1 parser and server of `uthreads serve`.
        .target(
            name: "UserThreadsHTTP",
            dependencies: ["UserThreads", .product(name: "Logging", package: "swift-log")]
        ),
        // The benchmark harness: one workload over user threads or kernel threads (layer 13,
        // above the public API, so not in the core library).
        .target(
            name: "UserThreadsBackends",
            dependencies: ["UserThreads", .product(name: "SystemPackage", package: "swift-system")]
        ),
        // The kernel-thread peers of the benchmarks (pthreads, futex), in C.
        .target(name: "CKernelPeers"),
        // The command line: tour, benchmarks, demos.
        .executableTarget(
            name: "uthreads",
            dependencies: [
                "UserThreads",
                "UserThreadsHTTP",
                "UserThreadsBackends",
                "CUThreads",
                "CKernelPeers",
                "CJacketCurl",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // The tests also run `uthreads selftest …` as child processes (crash reports, the
        // kernel's view of the process), so the executable is a dependency.
        .testTarget(
            name: "UserThreadsTests",
            dependencies: [
                "UserThreads", "UserThreadsHTTP", "UserThreadsBackends", "CUThreads", "uthreads", "CTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            exclude: ["ThreadTable/Fixtures"]),  // JSON earlier versions wrote, read by path
        // Runs before the test binary's main: bounds the test cases Swift Testing runs at once,
        // so that each `.timeLimit` measures its own test (Tests/CTestSupport/parallelism.c).
        .target(name: "CTestSupport", path: "Tests/CTestSupport"),
        // The jacket's scenarios, run by Tests/UserThreadsTests/Jacket as a child process: a
        // binary of its own, because the test binary holds every test target and a jacket linked
        // into it would interpose every read and write of every test. CJacketProbe makes the
        // plain C calls that the jacket interposes. Not a dependency of the test target: that
        // would link the probe's modules, jacket included, into the test binary; `swift build
        // --build-tests` (and so `swift test`) builds it as one of the package's executables.
        .target(name: "CJacketProbe", path: "Tests/CJacketProbe"),
        .executableTarget(
            name: "jacket-probe",
            dependencies: ["UserThreads", "UserThreadsJacket", "CJacketProbe", "CJacketCurl"],
            path: "Tests/JacketProbe"),
    ],
    swiftLanguageModes: [.v6]
)
