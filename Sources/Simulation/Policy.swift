import Scoring

/// The steering policies compared. Those the server has are its own code (`Selector`,
/// `Affinity`, `AffinityTable`); the others are built here on the candidates `Selector`
/// evaluates, so every policy sees the same reports, health checks and latency map.
public enum PolicyKind: String, CaseIterable, Sendable {
    /// The product: response-time scoring with sticky bindings and anti-herding.
    case resolverd
    /// Lowest RTT only (GeoDNS, anycast).
    case nearest
    case roundRobin = "round-robin"
    case weighted = "capacity-weighted"
    /// Lowest reported utilisation, the same answer for everyone.
    case leastLoaded = "least-loaded"
    /// Two sites at random, the less loaded of the two (power of two choices).
    case twoChoices = "two-choices"
    /// Nearest, unless that site reports more than the spill-over utilisation.
    case nearestSpill = "nearest-spill"
    /// Full knowledge of every queue, a fresh choice per request, no DNS caching: the bound.
    case oracle

    public var title: String {
        switch self {
        case .resolverd: "resolverd"
        case .nearest: "nearest"
        case .roundRobin: "round robin"
        case .weighted: "capacity-weighted random"
        case .leastLoaded: "least-loaded"
        case .twoChoices: "two random choices"
        case .nearestSpill: "nearest + spill-over"
        case .oracle: "oracle (bound)"
        }
    }
}

/// The authoritative server's side of one run: the steering state it knows, and the policy's
/// decision for one query.
struct Steerer {
    let kind: PolicyKind
    var snapshot: SteeringSnapshot
    let service: Service
    let spillUtilization: Double
    let bindings = AffinityTable(capacity: 10_000_000)
    private var sequence: UInt64 = 0
    private var random: SimulationRandom

    init(kind: PolicyKind, world: World, scenario: Scenario) {
        self.kind = kind
        snapshot = world.snapshot
        var service = snapshot.services[0]
        switch kind {
        case .resolverd, .oracle: service.policy = .responseTime
        case .nearest, .nearestSpill: service.policy = .nearest
        case .roundRobin: service.policy = .roundRobin
        case .weighted: service.policy = .weighted
        case .leastLoaded, .twoChoices: service.policy = .leastLoaded
        }
        if kind != .resolverd { service.affinityHold = 0 }
        snapshot.services = [service]
        self.service = service
        spillUtilization = scenario.spillUtilization
        random = SimulationRandom(seed: scenario.seed, stream: 3)
    }

    /// The site answered to `client` at `now`, with the answer's TTL and ECS scope.
    mutating func decide(client: Client, now: Double) -> (site: Int, ttl: Double, scope: Int) {
        sequence &+= 1
        switch kind {
        case .resolverd:
            let decision = bindings.decide(service: service, client: client, snapshot: snapshot, now: now).decision
            return (decision.sites[0], Double(decision.ttl), decision.scope)
        case .weighted:
            let decision = Selector.select(service: service, client: client, snapshot: snapshot, now: now,
                                           sequence: random.next())
            return (decision.sites[0], Double(decision.ttl), decision.scope)
        case .twoChoices:
            let decision = Selector.select(service: service, client: client, snapshot: snapshot, now: now)
            let eligible = decision.candidates.filter { $0.excluded == nil }
            guard eligible.count > 1 else { return (decision.sites[0], Double(decision.ttl), 0) }
            let first = Int(random.next() % UInt64(eligible.count))
            var second = Int(random.next() % UInt64(eligible.count - 1))
            if second >= first { second += 1 }
            let pick = eligible[first].utilization <= eligible[second].utilization ? eligible[first] : eligible[second]
            return (pick.site, Double(decision.ttl), 0)
        case .nearestSpill:
            let decision = Selector.select(service: service, client: client, snapshot: snapshot, now: now)
            let eligible = decision.candidates.filter { $0.excluded == nil }
            let byDistance = eligible.sorted { ($0.rtt, $0.site) < ($1.rtt, $1.site) }
            if let pick = byDistance.first(where: { $0.utilization < spillUtilization })
                ?? eligible.min(by: { ($0.utilization, $0.site) < ($1.utilization, $1.site) }) {
                return (pick.site, Double(decision.ttl), decision.scope)
            }
            return (decision.sites[0], Double(decision.ttl), decision.scope)
        case .nearest, .roundRobin, .leastLoaded, .oracle:
            let decision = Selector.select(service: service, client: client, snapshot: snapshot, now: now, sequence: sequence)
            return (decision.sites[0], Double(decision.ttl), decision.scope)
        }
    }

    /// Once a second, like the server: the load this server has directed since each site's
    /// last report (only the product counts it; the baselines are the policies as commonly
    /// deployed).
    mutating func publishDirectedLoad(now: Double) {
        guard kind == .resolverd else { return }
        snapshot.directed = bindings.directedLoad(snapshot: snapshot, now: now)
    }
}
