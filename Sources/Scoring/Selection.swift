import Synchronization

/// Everything selection reads, as one immutable value: writers (configuration, load reports,
/// the answer ledger) build a new snapshot; a query reads one.
public struct SteeringSnapshot: Sendable {
    public var sites: [Site] {
        didSet { indexByID = Self.index(sites); revision = Self.nextRevision(); siteRevision = revision }
    }
    /// New whenever `sites` changes, unique across snapshots: an index found for a site's ID
    /// (`siteIndex`) holds while it stays the same (`AffinityTable` keeps them, so that a
    /// decision for a bound client does not hash its site's ID).
    public private(set) var siteRevision: UInt64
    /// New whenever what a site's model reads changes (`sites`, `loads`, `parameters`), unique
    /// across snapshots: a compute delay worked out at one revision holds for that revision
    /// (`SiteDelay`). Copies share it until one of them changes.
    public private(set) var revision: UInt64
    /// Site ID → index, so that finding a site by name does not grow with the number of sites
    /// (a latency file names one per line; a binding names its site).
    private var indexByID: [String: Int]
    public var services: [Service]
    /// Latest report per site, same indices as `sites`.
    public var loads: [SiteLoad] {
        get { storedLoads }
        set {
            storedLoads = newValue
            revision = Self.nextRevision()
        }
        // In place: with a `didSet` instead, `loads[i] = x` went through a copy of the array
        // (get, change, set), so applying a batch of 1 000 reports to 10 000 sites copied the
        // whole array a thousand times: 40 % of a core at ten batches a second (bench/reports,
        // scale case, perf).
        _modify {
            yield &storedLoads
            revision = Self.nextRevision()
        }
    }
    private var storedLoads: [SiteLoad]
    /// Requests per second this server has directed to each site since its last report and
    /// that the report cannot yet include (anti-herding), same indices as `sites`.
    public var directed: [Double]
    /// Result of the active health check per site (true where no check is configured).
    public var checksPassing: [Bool]
    public var latency: LatencyMap
    public var parameters: ScoringParameters {
        didSet { revision = Self.nextRevision() }
    }

    public init(sites: [Site], services: [Service], loads: [SiteLoad]? = nil, directed: [Double]? = nil,
                checksPassing: [Bool]? = nil, latency: LatencyMap = LatencyMap(),
                parameters: ScoringParameters = ScoringParameters()) {
        self.sites = sites
        self.indexByID = Self.index(sites)
        self.services = services
        self.storedLoads = loads ?? Array(repeating: .unknown, count: sites.count)
        self.directed = directed ?? Array(repeating: 0, count: sites.count)
        self.checksPassing = checksPassing ?? Array(repeating: true, count: sites.count)
        self.latency = latency
        self.parameters = parameters
        self.revision = Self.nextRevision()
        self.siteRevision = revision
    }

    private static let revisions = Atomic<UInt64>(0)

    private static func nextRevision() -> UInt64 { revisions.wrappingAdd(1, ordering: .relaxed).newValue }

    public func siteIndex(_ id: String) -> Int? { indexByID[id] }

    /// True when every site is as healthy here as in `other`: the same sites, each with the
    /// same reported `healthy` flag and the same active-check result. What differs then is
    /// only figures (load, directed load, latency), which move a decision by degrees.
    public func sameHealth(as other: SteeringSnapshot) -> Bool {
        guard sites.count == other.sites.count, loads.count == other.loads.count,
              checksPassing == other.checksPassing else { return false }
        for index in loads.indices where loads[index].healthy != other.loads[index].healthy { return false }
        return true
    }

    /// The first index of each ID, as a search from the front would find it.
    private static func index(_ sites: [Site]) -> [String: Int] {
        var index: [String: Int] = [:]
        index.reserveCapacity(sites.count)
        for (position, site) in sites.enumerated() where index[site.id] == nil { index[site.id] = position }
        return index
    }
}

/// The client a decision is for: an address and how many leading bits of it are known.
public struct Client: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var prefixLength: Int

    public init(address: IPAddress, prefixLength: Int? = nil) {
        let length = min(prefixLength ?? address.family.bitLength, address.family.bitLength)
        self.address = address.masked(to: length)
        self.prefixLength = length
    }

    /// The whole address is known: the query's source address (a resolver's own, as no ECS
    /// came with it) rather than a client subnet, which RFC 7871 §11.1 has resolvers cut to
    /// /24 or /56.
    public var isSourceAddress: Bool { prefixLength == address.family.bitLength }

    public var description: String { "\(address)/\(prefixLength)" }
}

/// Why a site was not eligible.
public enum Exclusion: String, Sendable {
    /// The site reported itself unhealthy.
    case unhealthy
    /// The active health check fails.
    case checkFailing = "check-failing"
    case stale
    case overloaded
}

/// One site as selection saw it: the inputs and the result of the model.
public struct Candidate: Sendable {
    public var site: Int
    public var rtt: Double
    public var rttSource: LatencyMap.Source
    /// Utilisation used: reported, decayed toward unknown with age, plus directed load.
    public var utilization: Double
    public var computeDelay: Double
    /// Expected response time in ms (policy-specific for the baselines).
    public var score: Double
    public var reportAge: Double?
    public var excluded: Exclusion?
}

extension Candidate {
    /// This candidate with `requests` per second more at its site: what the site would be
    /// with one more client's load, which on a small site is no small part of its capacity.
    public func adding(_ requests: Double, snapshot: SteeringSnapshot, policy: Policy) -> Candidate {
        guard requests != 0 else { return self }
        var candidate = self
        candidate.utilization = max(0, utilization + requests / Selector.capacity(of: site, snapshot))
        candidate.model(snapshot: snapshot, policy: policy)
        return candidate
    }

    /// The model's figures from the candidate's RTT and utilisation: overloaded at the
    /// threshold, the compute delay of the site as an M/M/c queue (its c from its capacity and
    /// service time, `Queueing`), and the policy's score.
    mutating func model(snapshot: SteeringSnapshot, policy: Policy) {
        var none: [SiteDelay] = []
        model(snapshot: snapshot, policy: policy, delays: &none)
    }

    /// As above, the compute delay taken from `delays` (by site index) when it was worked out
    /// there for this snapshot revision, utilisation and policy, and kept there otherwise.
    mutating func model(snapshot: SteeringSnapshot, policy: Policy, delays: inout [SiteDelay]) {
        let parameters = snapshot.parameters
        if (excluded == nil || excluded == .overloaded) && policy != .nearest {
            excluded = utilization >= parameters.overloadUtilization ? .overloaded : nil
        }
        let riskCounted = policy == .responseTime
        if site < delays.count {
            let kept = delays[site]
            if kept.revision == snapshot.revision && kept.utilization.bitPattern == utilization.bitPattern
                && kept.riskCounted == riskCounted {
                computeDelay = kept.delay
            } else {
                computeDelay = Self.computeDelay(site: site, utilization: utilization, snapshot: snapshot, riskCounted: riskCounted)
                delays[site] = SiteDelay(revision: snapshot.revision, utilization: utilization, delay: computeDelay,
                                         riskCounted: riskCounted)
            }
        } else {
            computeDelay = Self.computeDelay(site: site, utilization: utilization, snapshot: snapshot, riskCounted: riskCounted)
        }
        switch policy {
        case .responseTime: score = rtt + computeDelay
        case .nearest: score = rtt
        case .leastLoaded: score = utilization
        case .weighted, .roundRobin: score = rtt + computeDelay
        }
    }

    /// The compute delay of `site` at `utilization`: the M/M/c response time, and with
    /// `riskCounted` the cap at the chance that the site is overloaded.
    static func computeDelay(site: Int, utilization: Double, snapshot: SteeringSnapshot, riskCounted: Bool) -> Double {
        let parameters = snapshot.parameters
        let load = snapshot.loads[site]
        let serviceMs = load.serviceMs ?? parameters.defaultServiceMs
        let capacity = Selector.capacity(of: site, snapshot)
        var computeDelay = Queueing.responseTime(serviceMs: serviceMs, utilization: utilization,
                                                 servers: Queueing.servers(capacity: capacity, serviceMs: serviceMs),
                                                 cap: parameters.maxComputeMs)
        // At the cap already (at or past capacity) there is nothing to add: no `erfc` for it.
        if riskCounted && computeDelay < parameters.maxComputeMs {
            // The reported utilisation is a sample, and the demand behind it moves
            // (`SiteLoad.overloadError`): a site reported at 0.95 may be at 1.0 already, or
            // be there before the clients given it now come back, and then requests meet the
            // cap rather than the model's delay. Counted at that chance, a site near capacity
            // keeps headroom in proportion to how little its reports say, rather than being
            // filled to the brim by the steepness of the M/M/c curve alone.
            let error = load.overloadError(capacity: capacity, defaultWindow: parameters.freshFor,
                                           swingErrors: parameters.swingErrors)
            let overload = Queueing.overloadProbability(utilization: utilization, standardError: error)
            computeDelay += overload * (parameters.maxComputeMs - computeDelay)
        }
        return computeDelay
    }
}

/// A site's compute delay as worked out for one snapshot revision, utilisation and policy
/// (`Candidate.model`). A decision for a large service models every one of its sites; most of
/// them are at the utilisation they were at in the decision before, at the same revision, and
/// their delay (a `pow`, a square root, at times an `erfc`) is then looked up instead.
struct SiteDelay: Sendable {
    var revision: UInt64 = 0
    var utilization: Double = 0
    var delay: Double = 0
    var riskCounted = false
}

/// The answer for one client: which sites, for how long, and for which clients it holds.
public struct Decision: Sendable {
    /// Chosen site indices, best first.
    public var sites: [Int]
    public var ttl: UInt32
    /// ECS SCOPE PREFIX-LENGTH: the answer is the same for every client sharing this many
    /// leading bits (RFC 7871 §7.2.1); 0 when it is the same for everyone.
    public var scope: Int
    public var candidates: [Candidate]
    /// True when every site was excluded and the all-down policy answered.
    public var allDown: Bool
    /// How many candidates are eligible and the best one's score, when the decision chose by
    /// score among them (one address, a ranked policy; 0 otherwise): what `Affinity` goes on
    /// from, which it need not work out again.
    var eligibleCount = 0
    var bestScore = 0.0
}

/// The arrays of a `Decision`, lent to the decision by a caller that decides again and again
/// (a UDP worker's responder) and taken back from it once it is answered (`reclaim`): once
/// they have grown to the service's size, deciding allocates nothing.
public struct DecisionStorage: Sendable {
    var candidates: [Candidate] = []
    var sites: [Int] = []
    /// By site index, once a service of `keptFrom` sites or more was decided.
    var delays: [SiteDelay] = []
    /// A sticky placement's pools (`Affinity.decide`) and the load moved since the last
    /// publish (`AffinityTable.decide`): when loads swing, many decisions place their client
    /// anew, and these were allocated for each of them.
    var pool: [Candidate] = []
    var loaded: [Candidate] = []
    var shares: [Int: Double] = [:]
    var moved: [Double] = []
    /// The fewest sites of a service whose compute delays are kept (`SiteDelay`).
    let keptFrom: Int
    /// By default, services of fewer sites are modelled afresh: a storage that decides now
    /// and then (a TCP connection's) keeps no table of every site for them. One that decides
    /// thousands of times a second (a UDP worker's, `keepingDelaysFrom: 1`) keeps them for
    /// every service: with reports, each of a small service's sites cost a `pow` and an `erfc`
    /// per decision, a few per cent of a worker's time in the reports benchmark.
    public static let largeService = 64

    public init(keepingDelaysFrom keptFrom: Int = largeService) {
        self.keptFrom = max(1, keptFrom)
    }

    /// Takes the arrays of `decision`, the caller's last use of it.
    public mutating func reclaim(_ decision: Decision) {
        (candidates, sites) = (decision.candidates, decision.sites)
    }

    /// The candidates' array as the decision before left it, for a decision to fill: not
    /// emptied, as `Selector.evaluate` writes over it in place when it has the service's size.
    mutating func takeCandidates() -> [Candidate] {
        var taken: [Candidate] = []
        swap(&taken, &candidates)
        return taken
    }

    /// The placement pools, emptied; given back with `reclaim(pool:loaded:shares:)`.
    mutating func takePools() -> (pool: [Candidate], loaded: [Candidate]) { (Self.take(&pool), Self.take(&loaded)) }

    /// The new bindings' shares, emptied with their capacity kept.
    mutating func takeShares() -> [Int: Double] {
        var taken: [Int: Double] = [:]
        swap(&taken, &shares)
        taken.removeAll(keepingCapacity: true)
        return taken
    }

    mutating func reclaim(pool: consuming [Candidate], loaded: consuming [Candidate], shares: consuming [Int: Double]) {
        (self.pool, self.loaded, self.shares) = (pool, loaded, shares)
    }

    /// The moved load's array, emptied; given back with `reclaim(moved:)`.
    mutating func takeMoved() -> [Double] { Self.take(&moved) }

    mutating func reclaim(moved: consuming [Double]) { self.moved = moved }

    /// The sites' array holding `site` alone: the one site of the decision before written
    /// over, the usual case.
    mutating func takeSites(holding site: Int) -> [Int] {
        var taken: [Int] = []
        swap(&taken, &sites)
        if taken.count == 1 {
            taken[0] = site
        } else {
            taken.removeAll(keepingCapacity: true)
            taken.append(site)
        }
        return taken
    }

    /// `array`, emptied with its capacity kept, and left empty behind: the decision holds the
    /// only reference and fills it in place. Emptying costs a uniqueness check and a generic
    /// `replaceSubrange` (about a hundred instructions): an empty array is left as it is, and
    /// the arrays every decision fills are written over instead (`takeCandidates`, `takeSites`).
    private static func take<Element>(_ array: inout [Element]) -> [Element] {
        var taken: [Element] = []
        swap(&taken, &array)
        if !taken.isEmpty { taken.removeAll(keepingCapacity: true) }
        return taken
    }
}

public enum Selector {
    /// Chooses the sites for `client` (the pure core of the product).
    ///
    /// - Parameters:
    ///   - now: seconds on the steering clock, injected so tests need not sleep.
    ///   - sequence: a per-query counter for the round-robin and weighted baselines.
    public static func select(service: Service, client: Client, snapshot: SteeringSnapshot, now: Double,
                              sequence: UInt64 = 0) -> Decision {
        var storage = DecisionStorage()
        return select(service: service, client: client, snapshot: snapshot, now: now, sequence: sequence, storage: &storage)
    }

    /// As above, in the arrays of `storage` (`DecisionStorage`). `moved`: the request rate
    /// this server's own decisions sent to each of the service's sites (in its order) since
    /// `snapshot.directed` was published (`AffinityTable`), counted as directed load; given
    /// beside the snapshot, not in it, so that neither it nor `directed` (an entry for every
    /// site) is copied per decision.
    public static func select(service: Service, client: Client, snapshot: SteeringSnapshot, now: Double,
                              sequence: UInt64 = 0, moved: [Double]? = nil, storage: inout DecisionStorage) -> Decision {
        if service.sites.count >= storage.keptFrom && storage.delays.count != snapshot.sites.count {
            storage.delays = Array(repeating: SiteDelay(), count: snapshot.sites.count)
        }
        let taken = storage.takeCandidates()
        let (candidates, match) = evaluate(service: service, client: client, snapshot: snapshot, now: now, moved: moved,
                                           into: consume taken, delays: &storage.delays)
        let count = max(1, service.answers)
        let rankedPolicy = service.policy == .responseTime || service.policy == .nearest || service.policy == .leastLoaded
        if rankedPolicy && count == 1 {
            // The usual case, one address by score: the best and how many are eligible, with
            // no filtered copy.
            let (best, eligibleCount) = Self.bestEligible(candidates)
            if let best {
                let scope = service.policy != .leastLoaded && eligibleCount > 1 ? match.scope : 0
                return Decision(sites: storage.takeSites(holding: best.site), ttl: service.ttl, scope: scope,
                                candidates: candidates, allDown: false, eligibleCount: eligibleCount, bestScore: best.score)
            }
        }
        let eligible = candidates.filter { $0.excluded == nil }

        guard !eligible.isEmpty else {
            switch snapshot.parameters.allDown {
            case .all:
                return Decision(sites: service.sites, ttl: service.ttl, scope: 0, candidates: candidates, allDown: true)
            case .leastBad:
                let ranked = candidates.sorted { ($0.score, $0.site) < ($1.score, $1.site) }
                return Decision(sites: ranked.prefix(count).map(\.site), ttl: service.ttl,
                                scope: candidates.count > 1 ? match.scope : 0, candidates: candidates, allDown: true)
            }
        }

        let chosen: [Int]
        var dependsOnClient = false
        switch service.policy {
        case .responseTime, .nearest, .leastLoaded:
            chosen = eligible.sorted { ($0.score, $0.site) < ($1.score, $1.site) }.prefix(count).map(\.site)
            dependsOnClient = service.policy != .leastLoaded
        case .roundRobin:
            let start = Int(sequence % UInt64(eligible.count))
            chosen = (0..<min(count, eligible.count)).map { eligible[(start + $0) % eligible.count].site }
        case .weighted:
            chosen = weightedPick(eligible, snapshot: snapshot, count: count, seed: sequence)
        }
        // The answer depends on the client only if it could differ between clients: more
        // than one eligible site, and a policy that looks at the client.
        let scope = dependsOnClient && eligible.count > 1 ? match.scope : 0
        return Decision(sites: chosen, ttl: service.ttl, scope: scope, candidates: candidates, allDown: false)
    }

    /// Every site of `service` as the model sees it for `client`, in the service's order, and
    /// what the latency lookup found. The measured RTTs are kept, in one walk down the client's
    /// path, for the service's own sites only, in scratch space on the stack (for any but a
    /// very large service): no table per query, and no cost for the other sites of the map.
    ///
    /// `into`: an array for the candidates, whose contents are replaced and whose capacity is used.
    static func evaluate(service: Service, client: Client, snapshot: SteeringSnapshot,
                         now: Double, moved: [Double]? = nil, into candidates: consuming [Candidate] = [],
                         delays: inout [SiteDelay]) -> ([Candidate], LatencyMap.Path) {
        let count = service.sites.count
        let recent = moved.flatMap { $0.count == count ? $0 : nil }
        var candidates = consume candidates   // the only reference, so it grows in place
        // The decision before's candidates, written over when there are as many (each
        // decision of a worker that answers one service); emptied and filled otherwise.
        let overwrite = candidates.count == count
        if !overwrite {
            candidates.removeAll(keepingCapacity: true)
            candidates.reserveCapacity(count)
        }
        let path = withUnsafeTemporaryAllocation(of: (rtt: Double, depth: Int).self, capacity: max(count, 1)) { measured in
            measured.initialize(repeating: (0, -1))
            let path = service.withPositions { position in
                snapshot.latency.walk(client.address, prefixLength: client.prefixLength) { site, rtt, depth in
                    if let position = position(site) { measured[position] = (rtt, depth) }
                }
            }
            for position in 0..<count {
                var found = measured[position]
                if found.depth < 0, service.listsASiteTwice, let first = service.position(of: service.sites[position]),
                   first != position {
                    found = measured[first]   // a site listed twice: its measurement went to its first place
                }
                let rtt = found.depth >= 0
                    ? (found.rtt, IPPrefix(address: client.address, length: found.depth)!) : nil   // masks
                let candidate = evaluate(site: service.sites[position], measured: rtt, path: path, snapshot: snapshot,
                                         recentlyDirected: recent?[position] ?? 0, now: now, policy: service.policy,
                                         delays: &delays)
                if overwrite { candidates[position] = candidate } else { candidates.append(candidate) }
            }
            return path
        }
        return (candidates, path)
    }

    static func evaluate(site index: Int, measured: (rtt: Double, prefix: IPPrefix)?, path: LatencyMap.Path,
                         snapshot: SteeringSnapshot, recentlyDirected: Double, now: Double, policy: Policy,
                         delays: inout [SiteDelay]) -> Candidate {
        // The site's fields are read where they are used, not through a copy of the whole
        // `Site`: that copy was a retain and a release of its ID and address arrays for
        // every candidate of every decision.
        let load = snapshot.loads[index]
        let parameters = snapshot.parameters

        let rtt: Double
        let source: LatencyMap.Source
        if let measured {
            (rtt, source) = (measured.rtt, .measured(measured.prefix))
        } else if let client = path.location, let location = snapshot.sites[index].location {
            (rtt, source) = (client.point.estimatedRTT(to: location), .geo(client.prefix))
        } else {
            (rtt, source) = (parameters.defaultRTT, .defaultRTT)
        }

        // Trust in the report fades with its age: fully fresh, then linearly toward unknown.
        var utilization = parameters.unknownUtilization
        var age: Double? = nil
        var excluded: Exclusion? = nil
        if let reportedAt = load.reportedAt {
            let reportAge = max(0, now - reportedAt)
            age = reportAge
            if reportAge > parameters.staleAfter {
                excluded = .stale
            } else {
                let fade = min(1, max(0, (reportAge - parameters.freshFor)
                                          / max(parameters.staleAfter - parameters.freshFor, 1e-9)))
                utilization = (1 - fade) * load.utilization + fade * parameters.unknownUtilization
            }
        }
        let capacity = Self.capacity(of: index, snapshot)
        // Directed load is negative where clients have left since the report.
        utilization = max(0, utilization + (snapshot.directed[index] + recentlyDirected) / capacity)
        if !load.healthy { excluded = .unhealthy }
        if !snapshot.checksPassing[index] { excluded = .checkFailing }
        var candidate = Candidate(site: index, rtt: rtt, rttSource: source, utilization: utilization,
                                  computeDelay: 0, score: 0, reportAge: age, excluded: excluded)
        candidate.model(snapshot: snapshot, policy: policy, delays: &delays)
        return candidate
    }

    /// The eligible candidate with the lowest score (then the lowest site index, as a sort
    /// would put first), as its site and score, and how many are eligible: in one pass over
    /// the buffer that compares in place, where `bestAndCount` over a lazy filter copied each
    /// better candidate out (a hundred bytes) and went through the filter's iterator.
    static func bestEligible(_ candidates: [Candidate]) -> (best: (site: Int, score: Double)?, count: Int) {
        candidates.withUnsafeBufferPointer { candidates in
            var best: (site: Int, score: Double)? = nil
            var count = 0
            for index in candidates.indices where candidates[index].excluded == nil {
                count += 1
                let (site, score) = (candidates[index].site, candidates[index].score)
                if let current = best, (current.score, current.site) <= (score, site) { continue }
                best = (site, score)
            }
            return (best, count)
        }
    }

    /// Requests per second at full utilisation: the report's figure, else the configured one.
    static func capacity(of site: Int, _ snapshot: SteeringSnapshot) -> Double {
        max(snapshot.loads[site].capacity ?? snapshot.sites[site].capacity, 1e-9)
    }

    /// Capacity-proportional choice without replacement, driven by a hash of `seed`.
    static func weightedPick(_ eligible: [Candidate], snapshot: SteeringSnapshot, count: Int, seed: UInt64) -> [Int] {
        var pool = eligible.map { ($0.site, max(snapshot.loads[$0.site].capacity ?? snapshot.sites[$0.site].capacity, 0)) }
        var state = seed &* 0x9E37_79B9_7F4A_7C15 &+ 0xD1B5_4A32_D192_ED03
        var chosen: [Int] = []
        while chosen.count < count && !pool.isEmpty {
            state ^= state >> 33
            state &*= 0xFF51_AFD7_ED55_8CCD
            state ^= state >> 33
            let total = pool.reduce(0) { $0 + $1.1 }
            var point = Double(state >> 11) / Double(1 << 53) * total
            var pick = pool.count - 1
            for (offset, item) in pool.enumerated() {
                if point < item.1 { pick = offset; break }
                point -= item.1
            }
            chosen.append(pool[pick].0)
            pool.remove(at: pick)
        }
        return chosen
    }
}

extension Sequence<Candidate> {
    /// The best candidate (the lowest score, then the lowest site index, as a sort would put
    /// first) and how many there are, in one pass and without a copy.
    func bestAndCount() -> (best: Candidate?, count: Int) {
        var best: Candidate? = nil
        var count = 0
        for candidate in self {
            count += 1
            if let current = best, (current.score, current.site) <= (candidate.score, candidate.site) { continue }
            best = candidate
        }
        return (best, count)
    }
}
