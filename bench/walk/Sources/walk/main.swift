// Nanoseconds per latency-map lookup of a client /24, for maps of N random /24s with three
// measured sites each, without and with the first-level index that `LatencyMap.compact`
// builds. Between two lookups, 64 writes spread over 8 MiB stand for the kernel's work between
// two queries of one client, which evicts the trie's lower levels from the caches (a lookup
// of a client asked a moment ago would otherwise find them all cached).
import Scoring
#if canImport(Glibc)
import Glibc
#endif

func nanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

struct Random {
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}

let sizes = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let lookups = 200_000
var random = Random()
var pollution = [UInt8](repeating: 1, count: 8 << 20)
var cursor = 0
var sink = 0
print("| /24s in the map | ns per lookup, no index | with the index | ratio |")
print("|---:|---:|---:|---:|")
for size in sizes.isEmpty ? [4_096, 65_536, 1_000_000] : sizes {
    var plain = LatencyMap()
    var prefixes: [UInt32] = []
    for _ in 0..<size {
        let address = UInt32(truncatingIfNeeded: random.next()) & 0xFFFF_FF00
        prefixes.append(address)
        for site in 0..<3 { plain.setRTT(Double(5 + site), prefix: IPPrefix(address: .v4(address), length: 24)!, site: site) }
    }
    var indexed = plain
    indexed.compact()
    var figures: [Double] = []
    for map in [plain, indexed] {
        var best = Double.infinity
        for _ in 0..<3 {   // the best of three runs
            var total: UInt64 = 0
            for _ in 0..<lookups {
                let client = prefixes[Int(random.next() % UInt64(prefixes.count))] | 7
                for _ in 0..<64 {
                    cursor = (cursor &+ 4_099) & (pollution.count - 1)
                    pollution[cursor] &+= 1
                }
                let start = nanoseconds()
                let path = map.walk(.v4(client), prefixLength: 24) { site, _, _ in sink &+= site }
                total &+= nanoseconds() - start
                sink &+= path.scope
            }
            best = min(best, Double(total) / Double(lookups))
        }
        figures.append(best)
    }
    print("| \(size) | \(Int(figures[0].rounded())) | \(Int(figures[1].rounded())) | \((figures[1] / figures[0] * 100).rounded() / 100) |")
}
if sink == 42 { print("") }   // keeps the lookups from being optimised away
