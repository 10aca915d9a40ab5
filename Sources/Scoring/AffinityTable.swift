import Synchronization

/// The bindings of client prefixes to sites, per service, bounded in size.
///
/// Bindings expire `hold` seconds after the last query that used them (the caller passes
/// `now`; nothing here reads a clock). When the table is over its capacity, the least
/// recently used tenth is evicted in one pass, so eviction costs O(n) once per n/10 inserts.
public final class AffinityTable: Sendable {
    public struct Key: Hashable, Sendable {
        public var service: String
        public var prefix: IPPrefix
        public init(service: String, prefix: IPPrefix) {
            self.service = service
            self.prefix = prefix
        }
    }

    /// Counts of what happened to bindings, for metrics.
    public struct Counts: Sendable, Equatable {
        public var created = 0
        public var kept = 0
        public var expired = 0
        public var evicted = 0
        public var moved: [MoveReason: Int] = [:]
        public var movedTotal: Int { moved.values.reduce(0, +) }
    }

    struct State {
        var bindings: [Key: Binding] = [:]
        /// Recent new bindings per site ID, decayed with a one-minute half-life.
        var fresh: [String: Double] = [:]
        var freshAt: Double = 0
        var counts = Counts()
    }

    public let capacity: Int
    private let state = Mutex(State())
    static let halfLife = 60.0

    public init(capacity: Int = 1_000_000) {
        self.capacity = max(capacity, 10)
    }

    public var count: Int { state.withLock { $0.bindings.count } }
    public var counts: Counts { state.withLock { $0.counts } }

    public func binding(for key: Key) -> Binding? {
        state.withLock { $0.bindings[key] }
    }

    /// Records the outcome of a decision.
    public func record(_ outcome: Affinity.Outcome, service: String, now: Double) {
        let key = Key(service: service, prefix: outcome.key)
        state.withLock { state in
            switch outcome.event {
            case .kept: state.counts.kept += 1
            case .created: state.counts.created += 1
            case .expired: state.counts.expired += 1
            case .moved(let reason): state.counts.moved[reason, default: 0] += 1
            }
            guard let binding = outcome.binding else {
                state.bindings[key] = nil
                return
            }
            state.bindings[key] = binding
            if outcome.event != .kept {
                Self.decay(&state, now: now)
                state.fresh[binding.site, default: 0] += 1
            }
            if state.bindings.count > capacity { evict(&state) }
        }
    }

    /// Each site's share of recent new bindings, by site index of `sites`.
    public func newBindingShare(sites: [Site], now: Double) -> [Double] {
        state.withLock { state in
            Self.decay(&state, now: now)
            let total = state.fresh.values.reduce(0, +)
            guard total > 0 else { return [] }
            return sites.map { (state.fresh[$0.id] ?? 0) / total }
        }
    }

    /// Drops bindings not used for longer than their service's hold. Returns how many.
    @discardableResult
    public func expire(now: Double, hold: (String) -> Double) -> Int {
        state.withLock { state in
            let before = state.bindings.count
            state.bindings = state.bindings.filter { now - $0.value.lastSeen <= hold($0.key.service) }
            let removed = before - state.bindings.count
            state.counts.expired += removed
            return removed
        }
    }

    /// Anti-herding: per site index, the request rate this server has sent there through
    /// bindings made since the site's last report (which therefore cannot include it):
    /// Σ bindings × their prefix's query rate × `requestsPerQuery`.
    public func directedLoad(snapshot: SteeringSnapshot, now: Double) -> [Double] {
        var ttl: [String: Double] = [:]
        for service in snapshot.services { ttl[service.name] = Double(service.ttl) }
        var index: [String: Int] = [:]
        for (position, site) in snapshot.sites.enumerated() { index[site.id] = position }
        var load = Array(repeating: 0.0, count: snapshot.sites.count)
        let perQuery = snapshot.parameters.loadPerAnswer
        guard perQuery > 0 else { return load }
        state.withLock { state in
            for (key, binding) in state.bindings {
                guard let site = index[binding.site] else { continue }
                let reportedAt = snapshot.loads[site].reportedAt ?? -Double.infinity
                guard binding.boundAt > reportedAt else { continue }
                load[site] += binding.queryRate(now: now, ttl: ttl[key.service] ?? 20) * perQuery
            }
        }
        return load
    }

    /// Every binding, for persistence.
    public func entries() -> [(Key, Binding)] {
        state.withLock { $0.bindings.map { ($0.key, $0.value) } }
    }

    /// Restores persisted bindings (keeping any made since start).
    public func restore(_ entries: [(Key, Binding)]) {
        state.withLock { state in
            for (key, binding) in entries where state.bindings[key] == nil { state.bindings[key] = binding }
            if state.bindings.count > capacity { evict(&state) }
        }
    }

    private func evict(_ state: inout State) {
        let excess = state.bindings.count - capacity + capacity / 10
        let oldest = state.bindings.sorted { $0.value.lastSeen < $1.value.lastSeen }.prefix(excess)
        for (key, _) in oldest { state.bindings[key] = nil }
        state.counts.evicted += oldest.count
    }

    private static func decay(_ state: inout State, now: Double) {
        let elapsed = now - state.freshAt
        guard elapsed > 0 else { return }
        let factor = pow(0.5, elapsed / halfLife)
        for key in state.fresh.keys { state.fresh[key]! *= factor }
        state.freshAt = now
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
