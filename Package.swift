// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "resolverd",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "resolverd", targets: ["resolverd"]),
        .library(name: "Resolver", targets: ["Resolver"]),
        .library(name: "Scoring", targets: ["Scoring"]),
        .library(name: "Simulation", targets: ["Simulation"]),
        // The example zone and service built in code, for the fuzzer and the microbenchmarks.
        .library(name: "ExampleState", targets: ["ExampleState"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
    ],
    targets: [
        // ldns is used only to read master files; nothing on the query path calls it.
        .systemLibrary(
            name: "CLDNS",
            pkgConfig: "ldns",
            providers: [.apt(["libldns-dev"])]
        ),
        // recvmmsg/sendmmsg batches for the UDP workers, and the thread calls Glibc does not
        // bring to Swift (name, nice, affinity): system calls only.
        .target(name: "CUDPBatch"),
        // Pure selection logic: no NIO, no DNS.
        .target(name: "Scoring"),
        // Discrete-event model of clients, resolvers and sites driving the real Scoring code.
        .target(name: "Simulation", dependencies: ["Scoring"]),
        // DNS: wire format, zones, answering, transports.
        .target(
            name: "Resolver",
            dependencies: [
                "CLDNS",
                "CUDPBatch",
                "Scoring",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .target(name: "ExampleState", dependencies: ["Resolver", "Scoring"]),
        .executableTarget(
            name: "resolverd",
            dependencies: [
                "Resolver",
                "Scoring",
                "Simulation",
                "Yams",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        .testTarget(name: "ScoringTests", dependencies: ["Scoring"]),
        .testTarget(name: "SimulationTests", dependencies: ["Simulation", "Scoring"]),
        .testTarget(name: "ResolverTests", dependencies: ["Resolver", "Scoring"]),
        .testTarget(
            name: "ResolverdTests",
            dependencies: [
                "resolverd", "Resolver", "Scoring", "Simulation",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            resources: [.copy("Fixtures")]
        ),
    ]
)
