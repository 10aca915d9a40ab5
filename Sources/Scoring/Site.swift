/// An edge site that can serve a service.
public struct Site: Hashable, Sendable {
    public var id: String
    public var ipv4: [IPAddress]
    public var ipv6: [IPAddress]
    /// Requests per second at full utilisation.
    public var capacity: Double
    public var location: GeoPoint?

    public init(id: String, addresses: [IPAddress], capacity: Double, location: GeoPoint? = nil) {
        self.id = id
        self.ipv4 = addresses.filter { $0.family == .ipv4 }
        self.ipv6 = addresses.filter { $0.family == .ipv6 }
        self.capacity = capacity
        self.location = location
    }

    public func addresses(_ family: IPAddress.Family) -> [IPAddress] { family == .ipv4 ? ipv4 : ipv6 }
}

/// How a service chooses among its sites.
public enum Policy: String, Sendable, CaseIterable {
    /// Lowest expected response time: network RTT + compute delay under load (the product).
    case responseTime = "response-time"
    /// Lowest RTT only: what GeoDNS and anycast approximate.
    case nearest
    /// Lowest predicted utilisation only.
    case leastLoaded = "least-loaded"
    /// Random, in proportion to capacity.
    case weighted
    /// Each eligible site in turn.
    case roundRobin = "round-robin"
}

/// What to answer when every site is excluded.
public enum AllDownPolicy: String, Sendable {
    /// Every site's addresses: let clients try them all.
    case all
    /// The site with the best score ignoring exclusions.
    case leastBad = "least-bad"
}

/// A service name and how it is steered.
public struct Service: Hashable, Sendable {
    public var name: String
    /// Indices into the snapshot's `sites`.
    public var sites: [Int] {
        didSet { (positions, listsASiteTwice) = Self.positions(of: sites) }
    }
    /// Site index → its first place in `sites`, for a service of more sites than a scan of
    /// them is quick for (empty otherwise).
    private var positions: [Int: Int]
    /// Some site is in `sites` more than once (its measurement then goes to its first place).
    public private(set) var listsASiteTwice: Bool
    public var ttl: UInt32
    /// Sites per answer.
    public var answers: Int
    public var policy: Policy
    /// Seconds a binding lives, and the relative gain needed to move (used by affinity).
    public var affinityHold: Double
    public var affinityMargin: Double
    /// Seconds a client that was moved stays on its new site before it may move again merely
    /// for a better score, so a site flapping between down and up moves its clients away once,
    /// not back and forth (forced moves, away from a failed or overloaded site, still happen).
    public var affinityHoldDown: Double
    public static let defaultHoldDown: Double = 30

    /// Seconds a binding lives after its last query: `affinityHold`, but at least two TTLs. A
    /// resolver asks at most once per TTL (later if it stretches TTLs), so a hold of one TTL
    /// forgets its binding between two of its queries: it is placed anew each time, and its
    /// load, which has been at its old site all along, is counted again at the new one.
    public var bindingLifetime: Double { max(affinityHold, 2 * Double(ttl)) }

    /// Whether answers use sticky bindings (Affinity) rather than a fresh choice per query.
    public var isSticky: Bool { affinityHold > 0 && policy == .responseTime }

    public init(name: String, sites: [Int], ttl: UInt32 = 20, answers: Int = 1, policy: Policy = .responseTime,
                affinityHold: Double = 300, affinityMargin: Double = 0.2, affinityHoldDown: Double = Service.defaultHoldDown) {
        self.name = name
        self.sites = sites
        (self.positions, self.listsASiteTwice) = Self.positions(of: sites)
        self.ttl = ttl
        self.answers = answers
        self.policy = policy
        self.affinityHold = affinityHold
        self.affinityMargin = affinityMargin
        self.affinityHoldDown = affinityHoldDown
    }

    /// Where site index `site` is in `sites` (its first place), nil when not there: a scan
    /// for a few sites, a lookup for many, so a decision stays O(its own sites).
    @inline(__always)
    public func position(of site: Int) -> Int? {
        withPositions { $0(site) }
    }

    /// Calls `body` with `position(of:)` as a function that captures no part of the service
    /// (a scan of its sites' buffer, or for a large service its table), for a closure that
    /// looks positions up while something else walks: one that captured the service held a
    /// copy of it, a retain and a release of each of its name, sites and positions.
    @inline(__always)
    public func withPositions<R>(_ body: ((Int) -> Int?) -> R) -> R {
        if positions.isEmpty {
            return sites.withUnsafeBufferPointer { sites in body { sites.firstIndex(of: $0) } }
        }
        let positions = positions
        return body { positions[$0] }
    }

    private static let scanned = 16

    private static func positions(of sites: [Int]) -> ([Int: Int], twice: Bool) {
        guard sites.count > scanned else { return ([:], Set(sites).count < sites.count) }
        var positions: [Int: Int] = [:]
        positions.reserveCapacity(sites.count)
        for (position, site) in sites.enumerated() where positions[site] == nil { positions[site] = position }
        return (positions, positions.count < sites.count)
    }
}

/// The last load report of a site.
public struct SiteLoad: Hashable, Sendable {
    /// Fraction of capacity in use; may exceed 1 when overloaded.
    public var utilization: Double
    /// Overrides the configured capacity when reported.
    public var capacity: Double?
    /// Mean service time per request at low load, in milliseconds.
    public var serviceMs: Double?
    public var queue: Int?
    public var healthy: Bool
    /// When the report arrived (seconds on the steering clock); nil if the site never reported.
    public var reportedAt: Double?
    /// Seconds the report's figures were measured over, taken as the time since the site's
    /// previous report; nil for a first report. A change made during that span is only partly
    /// in the report.
    public var window: Double?
    /// How far the site's utilisation moves from one report to the next: a moving mean of
    /// the change (each report weighs a fifth); nil before the second report. Demand that
    /// drifts, and clients that are large parts of the site, move it more than the sampling
    /// error of one report (`utilizationError`) says.
    public var swing: Double?

    public init(utilization: Double, capacity: Double? = nil, serviceMs: Double? = nil, queue: Int? = nil,
                healthy: Bool = true, reportedAt: Double?) {
        self.utilization = utilization
        self.capacity = capacity
        self.serviceMs = serviceMs
        self.queue = queue
        self.healthy = healthy
        self.reportedAt = reportedAt
    }

    /// This report with its measurement window and swing set from the one before it.
    public func measured(after previous: SiteLoad) -> SiteLoad {
        var load = self
        if load.window == nil, let now = reportedAt, let before = previous.reportedAt, now > before {
            load.window = now - before
        }
        if load.swing == nil, previous.reportedAt != nil {
            let change = abs(utilization - previous.utilization)
            load.swing = previous.swing.map { 0.8 * $0 + 0.2 * change } ?? change
        }
        return load
    }

    /// The error of the reported utilisation as an estimate of where the site is, or will be
    /// before the answers given now can be revised: the sampling error of the report
    /// (`utilizationError`) and its swing, as independent errors, the swing counted up to
    /// `swingErrors` sampling errors. A site's swing is also the clients this server moved
    /// there or away, which on a small site are large steps; counted in full, that swing
    /// priced small sites out of use in calm times (the flash-crowd scenario's edges were
    /// empty before the crowd came, which then fell on all of them at once).
    public func overloadError(capacity: Double, defaultWindow: Double, swingErrors: Double) -> Double {
        let sampling = utilizationError(capacity: capacity, defaultWindow: defaultWindow)
        let swing = min(swing ?? 0, swingErrors * sampling)
        return (sampling * sampling + swing * swing).squareRoot()
    }

    /// The fraction of a change made at `time` that this report already reflects: none if made
    /// after it, all if made before its measurement window began, in proportion in between.
    public func reflects(changeAt time: Double) -> Double {
        guard let reportedAt else { return 0 }
        guard time < reportedAt else { return 0 }
        guard let window, window > 0 else { return 1 }
        return min(1, (reportedAt - time) / window)
    }

    /// The standard error of the reported utilisation as a sample of the site's load: over a
    /// window of T seconds a site of capacity C at utilisation u serves about N = u·C·T
    /// requests, and with Poisson arrivals and exponential service times (the M/M/c model
    /// of `Queueing`) the work they bring is compound Poisson, whose coefficient of variation
    /// is √(2/N); so σ = u·√(2/N) = √(2u / (C·T)). A small site reporting every few seconds
    /// is a few points of utilisation off either way: near capacity, where the M/M/c delay is
    /// steep, that is more than the affinity margin. `defaultWindow` stands in for a first
    /// report, and a window is taken to be a second at least: a report sooner after the last
    /// is more likely a repeat (a retry, a batch) than a measurement of so short a span. 0 for a
    /// site that has not reported.
    public func utilizationError(capacity: Double, defaultWindow: Double) -> Double {
        guard reportedAt != nil, capacity > 0 else { return 0 }
        let span = max(window ?? defaultWindow, 1)
        return min((2 * max(utilization, 0) / (capacity * span)).squareRoot(), 1)
    }

    /// A site that has not reported yet.
    public static let unknown = SiteLoad(utilization: 0, reportedAt: nil)
}

/// Tunables of the scoring model.
public struct ScoringParameters: Hashable, Sendable {
    /// RTT assumed when neither a measurement nor two locations exist.
    public var defaultRTT: Double = 80
    /// Service time assumed when a site reports none.
    public var defaultServiceMs: Double = 10
    /// Utilisation assumed for a site whose load is unknown (never reported, or stale).
    public var unknownUtilization: Double = 0.5
    /// Reports younger than this are trusted fully.
    public var freshFor: Double = 10
    /// Reports older than this exclude the site; in between, the reported utilisation decays
    /// linearly toward `unknownUtilization`.
    public var staleAfter: Double = 60
    /// Upper bound of the queueing delay, so one near-saturated site cannot dominate a sum.
    public var maxComputeMs: Double = 1000
    /// Sites at or above this predicted utilisation are excluded.
    public var overloadUtilization: Double = 1.0
    public var allDown: AllDownPolicy = .leastBad
    /// Requests per second one outstanding answer is expected to bring to its site until
    /// the site's next report shows the real load (anti-herding). 0 turns it off.
    public var loadPerAnswer: Double = 0.05
    /// A kept client moves to a better-scoring site only if that site still wins with each
    /// site's reported utilisation taken this many standard errors against the move
    /// (`SiteLoad.utilizationError`). 0 turns it off.
    public var moveStandardErrors: Double = 1
    /// How much of a site's swing between reports counts in its chance of being overloaded,
    /// at most, in sampling errors of its report (`SiteLoad.overloadError`); 0 counts the
    /// sampling error alone.
    public var swingErrors: Double = 4

    public init() {}
}

