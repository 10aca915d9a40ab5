import Scoring
import Synchronization

/// A service name as the DNS side sees it: where it lives and the records each site
/// answers with, built once per state so answering only picks them.
public struct ServiceEntry: Sendable {
    public let name: DNSName
    /// Index into the steering snapshot's `services`.
    public let index: Int
    public let zone: Zone
    /// Per site index: the A and AAAA sets (nil when the site has no address of the family).
    let rrsets: [Int: (a: RRSet?, aaaa: RRSet?)]

    public init(name: DNSName, index: Int, zone: Zone, snapshot: SteeringSnapshot) {
        self.name = name
        self.index = index
        self.zone = zone
        let service = snapshot.services[index]
        var sets: [Int: (RRSet?, RRSet?)] = [:]
        for site in service.sites {
            func set(_ type: RRType, _ family: IPAddress.Family) -> RRSet? {
                let addresses = snapshot.sites[site].addresses(family)
                return addresses.isEmpty ? nil
                    : RRSet(name: name, type: type, ttl: service.ttl, rdatas: addresses.map(\.bytes))
            }
            sets[site] = (set(.a, .ipv4), set(.aaaa, .ipv6))
        }
        rrsets = sets
    }
}

/// Everything the query path reads, as one immutable value. A reload or a report builds a
/// new one and publishes it; a query reads one and uses it throughout, so it never sees half
/// of an update.
public final class ServingState: Sendable {
    public let catalog: Catalog
    /// NSID payload (RFC 5001), when configured.
    public let nsid: [UInt8]?
    /// CH TXT identity records (`id.server.`, `version.bind.`, …), when configured.
    public let chaos: [DNSName: RRSet]
    public let steering: SteeringSnapshot
    public let services: [DNSName: ServiceEntry]
    /// Counts answers per site for the anti-herding estimate; shared across states.
    public let ledger: AnswerLedger
    public let metrics: DNSMetrics
    /// Client bindings (flow affinity); keyed by site ID, so shared across reloads.
    public let affinity: AffinityTable
    /// The secrets server cookies are made and checked with (RFC 7873, RFC 9018).
    public let cookies: CookieSecrets
    /// Response rate limiting of UDP answers; nil when off.
    public let rateLimiter: ResponseRateLimiter?
    /// The answers of `catalog` and the templates of `services`, compiled (the fast path).
    public let answers: AnswerTable
    /// Names the catalog and the services this state answers from: new at every load, kept
    /// by `with(steering:)`, which changes neither. A static answer kept for one
    /// (`AnswerCache`) is exact for every state of the same data.
    public let dataGeneration: UInt64
    /// Names what a remembered steering decision may be reused in (`DecisionMemo`): kept by
    /// `with(steering:)` while no site's health changed (its own report's `healthy`, its
    /// active check), new otherwise and at every load. Load figures and directed load, which
    /// change with every report and every second, therefore reach a remembered client within
    /// the memo's lifetime (one second), as gdnsd coalesces its updates; a site going down
    /// reaches it at once.
    public let decisionEpoch: UInt64
    private static let generations = Atomic<UInt64>(0)

    public convenience init(catalog: Catalog, nsid: [UInt8]? = nil, chaos: [DNSName: RRSet] = [:], steering: SteeringSnapshot = SteeringSnapshot(sites: [], services: []),
                            services: [DNSName: ServiceEntry] = [:], ledger: AnswerLedger? = nil, metrics: DNSMetrics? = nil,
                            affinity: AffinityTable? = nil, cookies: CookieSecrets = .random(), rateLimiter: ResponseRateLimiter? = nil,
                            answers: AnswerTable? = nil) {
        let generation = Self.nextGeneration()
        self.init(catalog: catalog, nsid: nsid, chaos: chaos, steering: steering, services: services, ledger: ledger,
                  metrics: metrics, affinity: affinity, cookies: cookies, rateLimiter: rateLimiter, answers: answers,
                  dataGeneration: generation, decisionEpoch: generation)
    }

    private init(catalog: Catalog, nsid: [UInt8]?, chaos: [DNSName: RRSet], steering: SteeringSnapshot,
                 services: [DNSName: ServiceEntry], ledger: AnswerLedger?, metrics: DNSMetrics?,
                 affinity: AffinityTable?, cookies: CookieSecrets, rateLimiter: ResponseRateLimiter?,
                 answers: AnswerTable?, dataGeneration: UInt64, decisionEpoch: UInt64) {
        self.catalog = catalog
        self.nsid = nsid
        self.chaos = chaos
        self.steering = steering
        self.services = services
        self.ledger = ledger ?? AnswerLedger(siteCount: steering.sites.count, window: AnswerLedger.neededWindow(for: steering))
        self.metrics = metrics ?? DNSMetrics(steering: steering)
        self.affinity = affinity ?? AffinityTable()
        self.cookies = cookies
        self.rateLimiter = rateLimiter
        self.answers = answers ?? AnswerTable.compile(catalog: catalog, services: services, steering: steering)
        self.dataGeneration = dataGeneration
        self.decisionEpoch = decisionEpoch
    }

    private static func nextGeneration() -> UInt64 { generations.wrappingAdd(1, ordering: .relaxed).newValue }

    /// The same state with another steering snapshot (new reports, new directed load): the
    /// sites and services are unchanged, so the ledger, metrics and bindings carry over.
    public func with(steering: SteeringSnapshot) -> ServingState {
        let epoch = steering.sameHealth(as: self.steering) ? decisionEpoch : Self.nextGeneration()
        return ServingState(catalog: catalog, nsid: nsid, chaos: chaos, steering: steering, services: services, ledger: ledger,
                            metrics: metrics, affinity: affinity, cookies: cookies, rateLimiter: rateLimiter, answers: answers,
                            dataGeneration: dataGeneration, decisionEpoch: epoch)
    }

    /// Site `id`'s index in the snapshot and its configured capacity. For a caller in another
    /// module, which would otherwise copy the whole snapshot out of `steering` (a retain and a
    /// release of each of its fields) to read two values; a load report reads them each time.
    public func site(_ id: String) -> (index: Int, capacity: Double)? {
        guard let index = steering.siteIndex(id) else { return nil }
        return (index, steering.sites[index].capacity)
    }

    public static let empty = ServingState(catalog: .empty)
}

/// Holds the current `ServingState`. Readers take a reference under a lock held only for
/// the pointer copy, so a writer building the next state never blocks them.
public final class StateStore: Sendable {
    private let current: Mutex<ServingState>

    public init(_ initial: ServingState) {
        current = Mutex(initial)
    }

    public var state: ServingState { current.withLock { $0 } }

    public func publish(_ state: ServingState) {
        current.withLock { $0 = state }
    }

    /// Replaces the state with `transform(current)`, atomically with respect to other updates.
    ///
    /// The new state is built outside the lock; the lock is held only to check that nobody
    /// published in between and to swap the pointer (otherwise the transform runs again on
    /// the newer state). So however long a writer takes to build, a query never waits for it.
    public func update(_ transform: (ServingState) -> ServingState) {
        while true {
            let base = state
            let next = transform(base)
            let swapped = current.withLock { current -> Bool in
                guard current === base else { return false }
                current = next
                return true
            }
            if swapped { return }
        }
    }
}
