/// A client prefix bound to a site for a service (flow affinity).
public struct Binding: Hashable, Sendable, Codable {
    /// The site's ID (not its index, so a binding survives a reordered configuration).
    public var site: String
    public var boundAt: Double
    public var lastSeen: Double
    /// Queries answered from this binding: with its age, the prefix's demand.
    public var queries: Int
    /// The site the prefix was moved away from when this binding was made, if it was.
    public var previous: String?
    /// The key is a resolver's own address, not a client subnet (no ECS): the binding carries
    /// every user of that resolver, and its queries stand for far more requests than a
    /// subnet's do (`AffinityTable.RequestsPerQuery`).
    public var viaResolver: Bool

    public init(site: String, boundAt: Double, lastSeen: Double, queries: Int = 1, previous: String? = nil,
                viaResolver: Bool = false) {
        self.site = site
        self.boundAt = boundAt
        self.lastSeen = lastSeen
        self.queries = queries
        self.previous = previous
        self.viaResolver = viaResolver
    }

    /// DNS queries per second from a prefix bound at `boundAt` that has asked `queries` times;
    /// at least one TTL is assumed to have passed, as a resolver asks at most once per TTL.
    /// From the two fields it reads, as bindings are stored by numbers (`AffinityTable`).
    static func queryRate(queries: Int, boundAt: Double, now: Double, ttl: Double) -> Double {
        Double(queries) / max(now - boundAt, ttl, 1)
    }
}

/// What happened to a client's binding in one decision.
public enum BindingEvent: Hashable, Sendable {
    case kept
    case created
    /// The binding had lapsed (no query for `hold` seconds) and was made anew.
    case expired
    case moved(MoveReason)
}

public enum MoveReason: String, Hashable, Sendable, CaseIterable {
    case unhealthy, stale, overloaded
    case checkFailing = "check-failing"
    /// Still eligible, but more than `margin` worse than the best site.
    case worse
    /// The site is no longer one of the service's sites.
    case removed
}

/// Sticky, deterministic site choice on top of `Selector` (a pure function like it).
///
/// - A bound client stays on its site while the site is eligible and its score is within
///   `margin` (relative) of the best site's score.
/// - A new (or moved) client is placed by a weighted rendezvous hash (highest random weight)
///   of (client prefix, site) among the sites within the margin of the best, weighted by their
///   headroom. Two instances with the same configuration and reports therefore give the same
///   answer without sharing state, and a change at one site moves only clients that must move.
/// - Bounded load: a site that has already received more than (1 + ε) times its fair share of
///   recent new bindings is skipped while another candidate is within the margin.
public enum Affinity {
    /// The binding key's prefix length: the ECS source prefix, at most /24 (IPv4) or /56 (IPv6),
    /// so that one binding covers a typical customer network, not a single host.
    public static func keyPrefix(for client: Client) -> IPPrefix {
        let cap = client.address.family == .ipv4 ? 24 : 56
        return IPPrefix(address: client.address, length: min(client.prefixLength, cap))!
    }

    public struct Outcome: Sendable {
        public var decision: Decision
        public var binding: Binding?
        public var event: BindingEvent
        /// The prefix the binding is kept for.
        public var key: IPPrefix

        public init(decision: Decision, binding: Binding?, event: BindingEvent, key: IPPrefix) {
            self.decision = decision
            self.binding = binding
            self.event = event
            self.key = key
        }
    }

    /// A binding as a decision reads it: its site as the snapshot's index (nil: the site is no
    /// longer configured) rather than its ID, and whether it was moved there rather than its
    /// previous site. `AffinityTable` keeps bindings by numbers; read as `Binding`s, a kept
    /// decision hashed the site's ID to find its index and copied and released the strings of
    /// each copy of the binding and of the outcome: more than a quarter of its instructions.
    struct Held {
        var site: Int?
        var boundAt: Double
        var lastSeen: Double
        var queries: Int
        var moved: Bool
        var viaResolver: Bool
    }

    /// The binding a decision leaves, its site as the snapshot's index. Its previous site
    /// follows from the event: kept, the held binding's previous; moved, the held binding's
    /// site; otherwise none.
    public struct Bound: Sendable, Equatable {
        public var site: Int
        public var boundAt: Double
        public var lastSeen: Double
        public var queries: Int
        public var viaResolver: Bool
    }

    /// A decision as `AffinityTable` makes it for the server: the outcome with its binding by
    /// site index (`Bound`), no strings.
    public struct Decided: Sendable {
        public var decision: Decision
        public var binding: Bound?
        public var event: BindingEvent
        public var key: IPPrefix
    }

    /// - Parameters:
    ///   - existing: the client's current binding for this service, if any.
    ///   - newBindingShare: per site index, its fraction of the new bindings made recently
    ///     (empty: no bound-load limit).
    ///   - epsilon: the bounded-load slack.
    ///   - demand: requests per second the client brings to the site it is placed on (its
    ///     binding's expected load, `AffinityTable`); 0 places it as if it weighed nothing.
    public static func decide(service: Service, client: Client, snapshot: SteeringSnapshot, now: Double,
                              existing: Binding?, newBindingShare: [Int: Double] = [:], epsilon: Double = 0.25,
                              demand: Double = 0) -> Outcome {
        var storage = DecisionStorage()
        let decided = decide(service: service, client: client, snapshot: snapshot, now: now,
                             held: existing.map { Held($0, snapshot: snapshot) },
                             shares: { _, _, shares in shares = newBindingShare }, epsilon: epsilon, demand: demand,
                             storage: &storage)
        return Outcome(decision: decided.decision, binding: decided.binding.map { bound in
            let previous: String?
            switch decided.event {
            case .kept: previous = existing?.previous
            case .moved: previous = existing?.site
            case .created, .expired: previous = nil
            }
            return Binding(site: snapshot.sites[bound.site].id, boundAt: bound.boundAt, lastSeen: bound.lastSeen,
                           queries: bound.queries, previous: previous, viaResolver: bound.viaResolver)
        }, event: decided.event, key: decided.key)
    }

    /// As above, with the shares read only when the client is placed anew (`AffinityTable`
    /// reads them under its lock), and the decision made in `storage` (`DecisionStorage`).
    /// `shares` fills a dictionary (site index → share) that `storage` lends, emptied, and is
    /// given the service and the snapshot back, so that it need not capture them:
    /// a closure that does holds a copy of each, a retain and a release of every one of their
    /// fields for every decision, though it is called only for a placement.
    /// `moved`: the load directed to each of the service's sites since the snapshot was
    /// published (`Selector.select`).
    static func decide(service: Service, client: Client, snapshot: SteeringSnapshot, now: Double,
                       held existing: Held?, shares: (Service, SteeringSnapshot, inout [Int: Double]) -> Void,
                       epsilon: Double = 0.25, demand: Double = 0, moved: [Double]? = nil,
                       storage: inout DecisionStorage) -> Decided {
        var decision = Selector.select(service: service, client: client, snapshot: snapshot, now: now, moved: moved,
                                       storage: &storage)
        let key = keyPrefix(for: client)
        let candidates = decision.candidates
        // When every site that is up is overloaded, clients stay where they are and new ones
        // are spread over those sites, rather than all sent to the least bad one. The best
        // eligible site and their number, as `Selector` found them when it chose among them.
        let saturated: Bool, bestScore: Double?, eligibleCount: Int
        if decision.eligibleCount > 0 {
            (saturated, bestScore, eligibleCount) = (false, decision.bestScore, decision.eligibleCount)
        } else {
            saturated = !candidates.contains { $0.excluded == nil }
            let (best, count) = Eligible(candidates: candidates, saturated: saturated).bestAndCount()
            (bestScore, eligibleCount) = (best?.score, count)
        }
        // The eligible sites, as a filter over the candidates rather than a copy of them: a
        // kept binding (the usual decision) needs only the best of them and their number.
        let eligible = Eligible(candidates: candidates, saturated: saturated)
        // Nothing to be sticky about when every site is down: the all-down answer stands.
        guard let bestScore else {
            return Decided(decision: decision, binding: nil, event: existing == nil ? .created : .moved(.unhealthy), key: key)
        }
        let limit = bestScore * (1 + service.affinityMargin)

        var event: BindingEvent = .created
        if let existing {
            if now - existing.lastSeen > service.bindingLifetime {
                event = .expired
            } else if let index = existing.site, let bound = candidates.first(where: { $0.site == index }) {
                // An overloaded site sheds only its excess: the clients whose hash of (prefix,
                // site, report) falls below the excess fraction. The report's second is in the
                // hash so that, if the clients shed were light ones and the next report still
                // shows overload, a fresh share goes; instances that got the report in the same
                // second shed the same clients.
                let round = snapshot.loads[index].reportedAt.map { Int($0.rounded(.down)) } ?? 0
                let shed = !saturated && bound.excluded == .overloaded
                    && unitHash(key: key, site: "\(snapshot.sites[index].id)#\(round)") < shedFraction(bound.utilization, snapshot.parameters)
                // A moved client keeps its new site for the hold-down unless it must leave it:
                // a site flapping between down and up moves its clients away once, not back
                // and forth, and an overloaded site does not refill as soon as it has shed.
                let heldDown = existing.moved && now - existing.boundAt < service.affinityHoldDown
                switch bound.excluded {
                case nil where bound.score <= limit || heldDown
                    || !betterElsewhere(than: bound, demand: demand, eligible: eligible, margin: service.affinityMargin,
                                        snapshot: snapshot, policy: service.policy),
                     .overloaded? where !shed:
                    decision.allDown = false
                    answer(&decision.sites, first: index, eligible: eligible, count: service.answers)
                    decision.ttl = adaptiveTTL(service: service, chosen: bound, candidates: eligible, snapshot: snapshot)
                    scope(&decision, eligibleCount: eligibleCount, key: key)
                    let renewed = Bound(site: index, boundAt: existing.boundAt, lastSeen: now, queries: existing.queries + 1,
                                        viaResolver: client.isSourceAddress)
                    return Decided(decision: decision, binding: renewed, event: .kept, key: key)
                case nil: event = .moved(.worse)
                case .unhealthy?: event = .moved(.unhealthy)
                case .stale?: event = .moved(.stale)
                case .overloaded?: event = .moved(.overloaded)
                case .checkFailing?: event = .moved(.checkFailing)
                }
            } else {
                event = .moved(.removed)
            }
        }

        // Place the client: rendezvous among the sites within the margin of the best, each
        // with the client's own load added, which no report holds yet (but the site it leaves
        // has in its figures already): a resolver with many users behind it may not fit on a
        // small site that looks free, and the best site for it is then another. When it fits
        // nowhere, it is placed as if it weighed nothing.
        // In arrays lent by `storage` and given back below, filtered in place: a placement
        // allocates nothing once they have grown to the service's size.
        var (pool, loaded) = storage.takePools()
        for candidate in eligible where candidate.score <= limit { pool.append(candidate) }
        if demand > 0 && !saturated {
            let current = existing?.site
            for candidate in eligible {
                let added = candidate.site == current ? candidate : candidate.adding(demand, snapshot: snapshot, policy: service.policy)
                if added.excluded == nil { loaded.append(added) }
            }
            if let bestLoaded = loaded.bestAndCount().best {
                let limit = bestLoaded.score * (1 + service.affinityMargin)
                pool.removeAll(keepingCapacity: true)
                for candidate in loaded where candidate.score <= limit { pool.append(candidate) }
            }
        }
        var newBindingShare = storage.takeShares()
        if pool.count > 1 { shares(service, snapshot, &newBindingShare) }
        if !newBindingShare.isEmpty && pool.count > 1 {
            let fair = 1.0 / Double(pool.count)
            func unloaded(_ candidate: Candidate) -> Bool { (newBindingShare[candidate.site] ?? 0) <= (1 + epsilon) * fair }
            if pool.contains(where: unloaded) { pool.removeAll { !unloaded($0) } }
        }
        // The highest weight wins, the lowest site index among equals; each weight is
        // computed once, and the prefix's part of the hash once for all of them.
        let seed = prefixHash(key)
        var chosen = pool[0]
        var highest = rendezvousWeight(prefixHash: seed, site: snapshot.sites[chosen.site].id, weight: headroom(chosen))
        for candidate in pool.dropFirst() {
            let weight = rendezvousWeight(prefixHash: seed, site: snapshot.sites[candidate.site].id, weight: headroom(candidate))
            if weight > highest || (weight == highest && candidate.site < chosen.site) { (chosen, highest) = (candidate, weight) }
        }
        storage.reclaim(pool: pool, loaded: loaded, shares: newBindingShare)
        decision.allDown = false
        answer(&decision.sites, first: chosen.site, eligible: eligible, count: service.answers)
        decision.ttl = adaptiveTTL(service: service, chosen: chosen, candidates: eligible, snapshot: snapshot)
        scope(&decision, eligibleCount: eligibleCount, key: key)
        let binding = Bound(site: chosen.site, boundAt: now, lastSeen: now, queries: 1, viaResolver: client.isSourceAddress)
        return Decided(decision: decision, binding: binding, event: event, key: key)
    }

    /// The candidates a sticky decision chooses among: the eligible ones or, when every site
    /// that is up is overloaded (`saturated`), the overloaded ones. A sequence of its own, not a
    /// lazy filter, whose closure would capture `saturated` and be allocated per decision.
    struct Eligible: Sequence {
        let candidates: [Candidate]
        let saturated: Bool

        struct Iterator: IteratorProtocol {
            var base: IndexingIterator<[Candidate]>
            let saturated: Bool

            mutating func next() -> Candidate? {
                while let candidate = base.next() {
                    if saturated ? candidate.excluded == .overloaded : candidate.excluded == nil { return candidate }
                }
                return nil
            }
        }

        func makeIterator() -> Iterator { Iterator(base: candidates.makeIterator(), saturated: saturated) }

        /// The lowest score among them but `site`'s, read in place (a filter over the iterator
        /// copied each candidate, a hundred bytes, to read one field).
        func lowestScore(excludingSite site: Int) -> Double? {
            candidates.withUnsafeBufferPointer { all in
                var lowest: Double? = nil
                for index in all.indices where all[index].site != site
                    && (saturated ? all[index].excluded == .overloaded : all[index].excluded == nil) {
                    lowest = Swift.min(lowest ?? all[index].score, all[index].score)
                }
                return lowest
            }
        }
    }

    /// Whether a client bound to `bound` is better off elsewhere: some other eligible site
    /// beats it by the margin with the client's own load (`demand`) added there, and with
    /// both sites' reported utilisation taken `moveStandardErrors` standard errors against
    /// the move (the other site's up, the bound one's down).
    ///
    /// Without the first, a heavy client (a resolver with many users behind it) leaves a site
    /// that scores a little worse for one that its own arrival makes worse still, and the
    /// clients of that one move back. Without the second, the sampling noise of a small
    /// site's report (`SiteLoad.utilizationError`), which near capacity moves the M/M/c delay
    /// by more than the margin, moves clients back and forth between sites that are equally
    /// loaded.
    static func betterElsewhere<Eligible: Sequence<Candidate>>(than bound: Candidate, demand: Double, eligible: Eligible,
                                                               margin: Double, snapshot: SteeringSnapshot,
                                                               policy: Policy) -> Bool {
        let errors = snapshot.parameters.moveStandardErrors
        func error(_ candidate: Candidate) -> Double {
            let capacity = Selector.capacity(of: candidate.site, snapshot)
            return errors * capacity * snapshot.loads[candidate.site].utilizationError(
                capacity: capacity, defaultWindow: snapshot.parameters.freshFor)
        }
        let stay = bound.adding(-error(bound), snapshot: snapshot, policy: policy)
        return eligible.contains { other in
            guard other.site != bound.site else { return false }
            let moved = other.adding(demand + error(other), snapshot: snapshot, policy: policy)
            return moved.excluded == nil && moved.score * (1 + margin) < stay.score
        }
    }

    /// The ECS scope of a sticky answer: the whole binding prefix, which the hash reads, so the
    /// answer holds for that prefix and no wider; 0 when only one site is eligible.
    ///
    /// A scope-0 answer serves every client of the resolver that caches it (RFC 7871 §7.3.1),
    /// and none of them asks again until it expires. When it is scope 0 only because the
    /// service's other sites are excluded for now, it gets the shortest TTL: otherwise all of
    /// them stay on this site for a whole TTL after the others are back, while their bindings
    /// say they are elsewhere, and then return to those sites at once.
    static func scope(_ decision: inout Decision, eligibleCount: Int, key: IPPrefix) {
        if eligibleCount > 1 {
            decision.scope = max(decision.scope, key.length)
        } else {
            decision.scope = 0
            if decision.candidates.count > 1 { decision.ttl = min(decision.ttl, shortestTTL) }
        }
    }

    /// Makes `sites` the sites of an answer of `count` addresses: `first`, then the best of the
    /// others.
    static func answer<Eligible: Sequence<Candidate>>(_ sites: inout [Int], first: Int, eligible: Eligible, count: Int) {
        // The usual case: one address, written over the one `Selector` chose, in its buffer,
        // with no filtered, sorted copy and no new array.
        if count <= 1 {
            if sites.count == 1 { sites[0] = first } else { sites = [first] }
            return
        }
        sites = [first] + eligible.filter { $0.site != first }
            .sorted { ($0.score, $0.site) < ($1.score, $1.site) }.prefix(count - 1).map(\.site)
    }

    /// The fraction of an overloaded site's clients to move so that it is left at 90% of the
    /// overload threshold.
    static func shedFraction(_ utilization: Double, _ parameters: ScoringParameters) -> Double {
        guard utilization > 0 else { return 0 }
        return max(0, 1 - 0.9 * parameters.overloadUtilization / utilization)
    }

    static func headroom(_ candidate: Candidate) -> Double { max(1 - candidate.utilization, 0.01) }

    /// Weighted highest-random-weight score: −w / ln(u), u uniform in (0, 1) from a hash of
    /// (prefix, site). The site with the highest value wins; its chance is proportional to w.
    static func rendezvousWeight(key: IPPrefix, site: String, weight: Double) -> Double {
        rendezvousWeight(prefixHash: prefixHash(key), site: site, weight: weight)
    }

    static func rendezvousWeight(prefixHash: UInt64, site: String, weight: Double) -> Double {
        -weight / log(unitHash(prefixHash: prefixHash, site: site))
    }

    /// A hash of (prefix, site) as a number uniform in (0, 1).
    static func unitHash(key: IPPrefix, site: String) -> Double {
        unitHash(prefixHash: prefixHash(key), site: site)
    }

    /// `unitHash`'s FNV-1a state after the prefix (its address bytes in network order, then
    /// its length): the part that is the same for every site.
    static func prefixHash(_ key: IPPrefix) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix(_ word: UInt64, bytes: Int) {
            for shift in stride(from: 8 * (bytes - 1), through: 0, by: -8) {
                hash = (hash ^ (word >> UInt64(shift) & 0xFF)) &* 0x0000_0100_0000_01B3
            }
        }
        switch key.address {
        case .v4(let value): mix(UInt64(value), bytes: 4)
        case .v6(let high, let low): mix(high, bytes: 8); mix(low, bytes: 8)
        }
        mix(UInt64(key.length), bytes: 1)
        return hash
    }

    /// FNV-1a over the site's name from `prefixHash`, then a 64-bit finaliser.
    static func unitHash(prefixHash: UInt64, site: String) -> Double {
        var hash = prefixHash
        for byte in site.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        hash ^= hash >> 33
        hash &*= 0xFF51_AFD7_ED55_8CCD
        hash ^= hash >> 33
        hash &*= 0xC4CE_B9FE_1A85_EC53
        hash ^= hash >> 33
        return (Double(hash >> 11) + 0.5) / Double(1 << 53)
    }

    /// The shortest TTL of a sticky answer (or the service's TTL, if that is shorter): clients
    /// come back within seconds, and a resolver's cache still absorbs its users' queries. The
    /// adaptive TTL stops here, and answers that must be looked at again soon get it outright
    /// (`scope`, and a new `AffinityTable`).
    public static let shortestTTL: UInt32 = 5

    /// The service TTL, shortened when clients may soon need to move: the site is near
    /// capacity, its report is ageing, or another site is almost as good. Never below
    /// `shortestTTL`.
    static func adaptiveTTL(service: Service, chosen: Candidate, candidates: Eligible, snapshot: SteeringSnapshot) -> UInt32 {
        var ttl = Double(service.ttl)
        if chosen.utilization > 0.8 { ttl *= max(0.25, (1 - chosen.utilization) / 0.2) }
        if let age = chosen.reportAge, age > snapshot.parameters.freshFor { ttl *= 0.5 }
        let runnerUp = candidates.lowestScore(excludingSite: chosen.site)
        if let runnerUp, runnerUp <= chosen.score * 1.05 { ttl *= 0.5 }
        return UInt32(max(Double(min(shortestTTL, service.ttl)), ttl.rounded()))
    }
}

extension Affinity.Held {
    /// `binding` as a decision on `snapshot` reads it (its memberwise initialiser stays, for
    /// `AffinityTable`, which reads bindings by numbers).
    init(_ binding: Binding, snapshot: SteeringSnapshot) {
        self.init(site: snapshot.siteIndex(binding.site), boundAt: binding.boundAt, lastSeen: binding.lastSeen,
                  queries: binding.queries, moved: binding.previous != nil, viaResolver: binding.viaResolver)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
