// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "UserThreads",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "UserThreads", targets: ["UserThreads"]),
        .executable(name: "uthreads", targets: ["uthreads"]),
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
        .target(name: "CUThreads"),
        // Layers 1..7: stacks, thread table, scheduler, timers, reactor, sync, public API.
        .target(
            name: "UserThreads",
            dependencies: [
                "CUThreads",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        // The kernel-thread peers of the benchmarks (pthreads, futex), in C.
        .target(name: "CKernelPeers"),
        // The command line: tour, benchmarks, demos.
        .executableTarget(
            name: "uthreads",
            dependencies: [
                "UserThreads",
                "CUThreads",
                "CKernelPeers",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // The tests also run `uthreads selftest …` as child processes (crash reports, the
        // kernel's view of the process), so the executable is a dependency.
        .testTarget(
            name: "UserThreadsTests",
            dependencies: ["UserThreads", "CUThreads", "uthreads", .product(name: "Logging", package: "swift-log"),
                           .product(name: "MetricsTestKit", package: "swift-metrics")],
            exclude: ["ThreadTable/Fixtures"]),  // JSON earlier versions wrote, read by path
    ],
    swiftLanguageModes: [.v6]
)
