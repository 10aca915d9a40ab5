// swift-tools-version:6.1
// Microbenchmarks of the query path (ordo-one/benchmark): `make microbench`, or
// `swift package --package-path Benchmarks benchmark`. A package of its own so that `make test`
// does not build the benchmark framework.
import PackageDescription

let package = Package(
    name: "resolverd-benchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "resolverd", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "QueryPath",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Resolver", package: "resolverd"),
                .product(name: "Scoring", package: "resolverd"),
                .product(name: "ExampleState", package: "resolverd"),
            ],
            path: "Benchmarks/QueryPath",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
