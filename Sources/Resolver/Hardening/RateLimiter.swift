import Scoring
import Synchronization

/// Response rate limiting as NSD, Knot and BIND do it: a spoofed flood of queries turns
/// into a flood of responses at its victim, so identical responses to one network are capped.
public struct RateLimitConfiguration: Sendable, Equatable {
    /// Responses per second a bucket may get, averaged over `window` seconds: a bucket holds
    /// up to rate × window responses and refills at `rate` a second.
    public var rate: Int
    public var window: Int
    /// Every `slip`-th limited response is sent as an empty TC=1 response instead of being
    /// dropped, so a real client behind a spoofed address still gets through over TCP;
    /// 0 drops them all, 1 truncates them all.
    public var slip: Int
    /// Clients are grouped per network: /24 for IPv4 and /56 for IPv6 by default.
    public var ipv4PrefixLength: Int
    public var ipv6PrefixLength: Int
    /// Buckets kept; more clients than this share buckets (memory stays fixed).
    public var tableSize: Int

    public init(rate: Int, window: Int = 1, slip: Int = 2, ipv4PrefixLength: Int = 24, ipv6PrefixLength: Int = 56,
                tableSize: Int = 65_536) {
        self.rate = rate
        self.window = window
        self.slip = slip
        self.ipv4PrefixLength = ipv4PrefixLength
        self.ipv6PrefixLength = ipv6PrefixLength
        self.tableSize = tableSize
    }
}

/// The kind of response a bucket counts, so that a flood of one kind does not starve others.
public enum ResponseClass: UInt8, Sendable, CaseIterable {
    case answer, nodata, nxdomain, referral, error

    public var label: String {
        switch self {
        case .answer: "answer"
        case .nodata: "nodata"
        case .nxdomain: "nxdomain"
        case .referral: "referral"
        case .error: "error"
        }
    }
}

public enum RateLimitAction: Sendable, Equatable {
    case send
    /// Send an empty TC=1 response instead (the client retries over TCP).
    case slip
    case drop
}

/// A fixed table of token buckets keyed by (client network, response class, name), shared
/// by every UDP event loop. The table is split into shards with a lock each, so loops
/// rarely contend; its size never grows, whatever the number of sources.
public final class ResponseRateLimiter: Sendable {
    public let configuration: RateLimitConfiguration

    private struct Bucket {
        var key: UInt64 = 0
        var tokens: Double = 0
        var last: Double = 0
        var limited: UInt32 = 0
    }

    private final class Shard: Sendable {
        let buckets: Mutex<[Bucket]>
        init(size: Int) { buckets = Mutex(Array(repeating: Bucket(), count: size)) }
    }

    private let shards: [Shard]
    private let perShard: Int

    public init(_ configuration: RateLimitConfiguration) {
        self.configuration = configuration
        let shardCount = 64
        let size = max(1, (configuration.tableSize + shardCount - 1) / shardCount)
        perShard = size
        shards = (0..<shardCount).map { _ in Shard(size: size) }
    }

    /// The bucket key for a response to `client` of class `kind` about `name` (the query
    /// name for answers and NODATA, the zone or delegation for NXDOMAIN and referrals, nil for
    /// errors), so that random names under one zone share a bucket.
    public func key(client: IPAddress, kind: ResponseClass, name: DNSName?) -> UInt64 {
        let prefix = client.family == .ipv4 ? configuration.ipv4PrefixLength : configuration.ipv6PrefixLength
        var hasher = Hasher()
        hasher.combine(client.masked(to: prefix))
        hasher.combine(kind.rawValue)
        if let name { hasher.combine(name) }
        return UInt64(bitPattern: Int64(hasher.finalize()))
    }

    /// Counts one response in bucket `key` at `now` (seconds) and says what to do with it.
    public func account(key: UInt64, now: Double) -> RateLimitAction {
        let shard = shards[Int(key % UInt64(shards.count))]
        let index = Int((key / UInt64(shards.count)) % UInt64(perShard))
        let capacity = Double(configuration.rate * configuration.window)
        let rate = Double(configuration.rate)
        let slip = configuration.slip
        return shard.buckets.withLock { buckets in
            var bucket = buckets[index]
            if bucket.key != key {
                // A new network (or a collision, which then resets the other's count).
                bucket = Bucket(key: key, tokens: capacity, last: now, limited: 0)
            }
            bucket.tokens = min(capacity, bucket.tokens + max(0, now - bucket.last) * rate)
            bucket.last = now
            let action: RateLimitAction
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                action = .send
            } else {
                bucket.limited &+= 1
                action = slip > 0 && bucket.limited % UInt32(slip) == 0 ? .slip : .drop
            }
            buckets[index] = bucket
            return action
        }
    }
}
