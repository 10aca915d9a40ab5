#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A small, fast, seedable generator (xoshiro256**, seeded through SplitMix64), so that every
/// run with the same seed is the same run on every machine.
public struct SimulationRandom: RandomNumberGenerator, Sendable {
    private var s0, s1, s2, s3: UInt64

    /// - Parameter stream: separates independent streams of one seed (arrivals, service
    ///   times, policy choices), so that what one policy draws cannot shift another's arrivals.
    public init(seed: UInt64, stream: UInt64 = 0) {
        var state = seed &+ stream &* 0x9E37_79B9_7F4A_7C15
        func splitMix() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        (s0, s1, s2, s3) = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = s3 << 45 | s3 >> 19
        return result
    }

    /// Uniform in (0, 1): never exactly 0, so logarithms are safe.
    public mutating func unit() -> Double {
        (Double(next() >> 11) + 0.5) / Double(1 << 53)
    }

    public mutating func exponential(mean: Double) -> Double {
        -mean * log(unit())
    }

    public mutating func normal() -> Double {
        // Box–Muller; one of the pair is enough here.
        (-2 * log(unit())).squareRoot() * cos(2 * Double.pi * unit())
    }

    /// Log-normal with the given mean and coefficient of variation.
    public mutating func logNormal(mean: Double, cv: Double) -> Double {
        let sigma2 = log(1 + cv * cv)
        return mean * exp(sigma2.squareRoot() * normal() - sigma2 / 2)
    }

    /// Poisson-distributed count with mean `mean` (Knuth for small means, a rounded normal
    /// approximation above 30, where it is within a fraction of a percent).
    public mutating func poisson(mean: Double) -> Int {
        guard mean > 0 else { return 0 }
        if mean > 30 {
            return max(0, Int((mean + mean.squareRoot() * normal()).rounded()))
        }
        let limit = exp(-mean)
        var product = unit()
        var count = 0
        while product > limit {
            product *= unit()
            count += 1
        }
        return count
    }
}

/// Walker's alias table: O(1) draws from a fixed discrete distribution.
struct AliasTable: Sendable {
    private var probability: [Double]
    private var alias: [Int]

    init(weights: [Double]) {
        let count = weights.count
        let total = weights.reduce(0, +)
        var scaled = weights.map { total > 0 ? $0 * Double(count) / total : 1 }
        probability = Array(repeating: 1, count: count)
        alias = Array(0..<count)
        var small = scaled.indices.filter { scaled[$0] < 1 }
        var large = scaled.indices.filter { scaled[$0] >= 1 }
        while let s = small.popLast(), let l = large.last {
            probability[s] = scaled[s]
            alias[s] = l
            scaled[l] -= 1 - scaled[s]
            if scaled[l] < 1 {
                large.removeLast()
                small.append(l)
            }
        }
    }

    func draw(_ random: inout SimulationRandom) -> Int {
        let slot = Int(random.next() % UInt64(probability.count))
        return random.unit() < probability[slot] ? slot : alias[slot]
    }
}
