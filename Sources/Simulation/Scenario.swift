import Scoring

/// One simulated world and what happens in it. Built by `resolverd simulate` from a YAML file;
/// every field has the default an operator would start from.
public struct Scenario: Sendable {
    public var name: String
    public var summary: String = ""
    public var seed: UInt64 = 1
    /// Simulated seconds, and the first seconds left out of every metric (caches and reports
    /// settle).
    public var duration: Double = 1800
    public var warmup: Double = 120
    /// Seconds per utilisation window and per point of the plotted series.
    public var window: Double = 10

    /// Mean demand as a fraction of the total capacity of all sites.
    public var utilization: Double = 0.7
    /// Demand weight of each /24 is log-normal with this coefficient of variation (a few
    /// busy networks, many quiet ones).
    public var prefixSpread: Double = 1

    public var ttl: UInt32 = 20
    public var hold: Double = 300
    public var margin: Double = 0.2
    /// Seconds between a site's load reports, and until one arrives.
    public var reportInterval: Double = 5
    public var reportDelay: Double = 0.5
    /// Seconds until an active health check notices a site going down or coming back.
    public var detectDelay: Double = 10
    /// A request that is dropped counts as this many milliseconds (the client's retry timer).
    public var timeoutMs: Double = 3000
    /// Nearest-with-spill-over moves clients away from a site reporting at least this.
    public var spillUtilization: Double = 0.8

    public var resolvers = ResolverMix()
    public var sites: [SiteSpec] = []
    public var regions: [RegionSpec] = []
    public var diurnal: Diurnal?
    public var events: [Event] = []
    /// Variants run one after another, each changing a few of the fields above.
    public var sweep: [Variant] = []
    public var parameters = ScoringParameters()

    public init(name: String) {
        self.name = name
    }

    /// Requests per second all sites can serve.
    public var totalCapacity: Double { sites.reduce(0) { $0 + $1.capacity } }

    /// The scenario with a variant's changes applied.
    public func applying(_ variant: Variant) -> Scenario {
        var copy = self
        if let value = variant.utilization { copy.utilization = value }
        if let value = variant.reportInterval { copy.reportInterval = value }
        if let value = variant.ttl { copy.ttl = value }
        copy.sweep = []
        return copy
    }
}

/// An edge site: `servers` parallel servers, each taking `serviceMs` on average per request
/// (an M/G/c queue), and a finite queue: a request that would wait longer than `maxWaitMs` is
/// rejected.
public struct SiteSpec: Sendable {
    public var id: String
    public var location: GeoPoint
    public var servers: Int
    public var serviceMs: Double
    /// Coefficient of variation of the service time: 1 is exponential (M/M/c); other values
    /// use a log-normal distribution (M/G/c).
    public var serviceCV: Double = 1
    public var maxWaitMs: Double = 1000

    public init(id: String, location: GeoPoint, servers: Int, serviceMs: Double) {
        self.id = id
        self.location = location
        self.servers = servers
        self.serviceMs = serviceMs
    }

    public var capacity: Double { Double(servers) * 1000 / serviceMs }
}

/// Client /24s scattered around a centre, with their share of the demand and their ISP's
/// recursive resolvers (which sit at the centre).
public struct RegionSpec: Sendable {
    public var name: String
    public var location: GeoPoint
    public var radiusKm: Double = 100
    public var prefixes: Int
    public var weight: Double = 1
    public var resolvers: Int = 2

    public init(name: String, location: GeoPoint, prefixes: Int) {
        self.name = name
        self.location = location
        self.prefixes = prefixes
    }
}

/// How clients reach the authoritative server.
public struct ResolverMix: Sendable {
    /// Fraction of /24s that use a public resolver sending ECS (/24) instead of their ISP's.
    public var ecsShare: Double = 0.3
    /// Where the public resolver's egress is (its address is all the server sees of clients
    /// without ECS; with ECS it sees the /24).
    public var publicResolvers: Int = 4
    /// Fraction of resolvers that keep answers for at least `stretchTTL` seconds whatever the
    /// TTL says.
    public var stretchShare: Double = 0.1
    public var stretchTTL: Double = 300

    public init() {}
}

/// A daily cycle: each region's demand is multiplied by 1 + amplitude × sin(2π t / period +
/// longitude), so the peak moves west with the sun.
public struct Diurnal: Sendable {
    public var period: Double
    public var amplitude: Double

    public init(period: Double, amplitude: Double) {
        self.period = period
        self.amplitude = amplitude
    }
}

public struct Event: Sendable {
    public enum Kind: Sendable, Equatable {
        /// The site stops answering; its reports stop; health checks notice after the delay.
        case fail(site: String)
        case recover(site: String)
        /// The site silently loses (or regains) servers: it stays healthy, reports keep coming.
        case capacity(site: String, factor: Double)
        /// The region's demand is multiplied by `factor` until `until`.
        case demand(region: String, factor: Double, until: Double)
    }

    public var at: Double
    public var kind: Kind

    public init(at: Double, kind: Kind) {
        self.at = at
        self.kind = kind
    }

    /// When the world stops changing because of this event.
    public var end: Double {
        if case .demand(_, _, let until) = kind { return until }
        return at
    }
}

public struct Variant: Sendable {
    public var utilization: Double?
    public var reportInterval: Double?
    public var ttl: UInt32?

    public init(utilization: Double? = nil, reportInterval: Double? = nil, ttl: UInt32? = nil) {
        self.utilization = utilization
        self.reportInterval = reportInterval
        self.ttl = ttl
    }

    public var label: String {
        var parts: [String] = []
        if let utilization { parts.append("utilisation \(utilization)") }
        if let reportInterval { parts.append("reports every \(Int(reportInterval)) s") }
        if let ttl { parts.append("TTL \(ttl) s") }
        return parts.joined(separator: ", ")
    }
}
