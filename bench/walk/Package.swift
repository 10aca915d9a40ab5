// swift-tools-version: 6.1
// bench/walk: the latency map's lookup (LatencyMap.walk) with and without the IPv4 trie's
// first-level index (PrefixTrie.starts), run by bench/walk/run.sh.
import PackageDescription

let package = Package(
    name: "walk",
    dependencies: [.package(path: "../..")],
    targets: [
        .executableTarget(name: "walk", dependencies: [.product(name: "Scoring", package: "main")],
                          swiftSettings: [.unsafeFlags(["-Ounchecked"])]),
    ]
)
