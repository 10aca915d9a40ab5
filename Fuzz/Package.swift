// swift-tools-version:6.1
// A libFuzzer harness for resolverd's query path. It is a package of its own because it links
// only with -sanitize=fuzzer (libFuzzer's driver); `make fuzz` builds and runs it.
import PackageDescription

let package = Package(
    name: "resolverd-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "resolverd", path: ".."),
    ],
    targets: [
        // LLVMFuzzerTestOneInput: bytes in → decode → answer → the response must decode.
        .target(
            name: "FuzzTargets",
            dependencies: [
                .product(name: "Resolver", package: "resolverd"),
                .product(name: "Scoring", package: "resolverd"),
                .product(name: "ExampleState", package: "resolverd"),
            ]
        ),
        // main() in C hands control to libFuzzer's driver (LLVMFuzzerRunDriver).
        .executableTarget(name: "resolverd-fuzz", dependencies: ["FuzzTargets"]),
    ]
)
