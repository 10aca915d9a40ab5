import Scoring

/// The fixed part of a scenario, drawn once from its seed: where every client /24 is, which
/// resolver it uses, and the true RTT from each /24 to each site. Every policy runs in the
/// same world.
struct World: Sendable {
    struct Group: Sendable {
        var prefix: IPPrefix
        var region: Int
        var resolver: Int
    }

    struct Resolver: Sendable {
        var address: IPAddress
        /// Sends the client's /24 (RFC 7871) rather than nothing.
        var ecs: Bool
        /// Keeps answers for at least the scenario's stretch TTL.
        var stretches: Bool
    }

    var groups: [Group] = []
    var resolvers: [Resolver] = []
    /// Per region: its /24s, and an alias table over their demand weights.
    var regionGroups: [[Int]] = []
    var regionPicker: [AliasTable] = []
    /// True RTT in ms, `groups.count × sites.count`, row per group.
    var rtt: [Double] = []
    var siteCount: Int
    /// What the server knows: the sites, the one service, and a latency map with the location
    /// of every /24 and every resolver (its RTT estimates come from those, not from `rtt`).
    var snapshot: SteeringSnapshot

    init(_ scenario: Scenario) {
        var random = SimulationRandom(seed: scenario.seed, stream: 1)
        siteCount = scenario.sites.count
        let sites = scenario.sites.map { Site(id: $0.id, addresses: [], capacity: $0.capacity, location: $0.location) }
        var latency = LatencyMap()
        var resolvers: [Resolver] = []
        var groups: [Group] = []
        var regionGroups: [[Int]] = []
        var regionPicker: [AliasTable] = []
        var rtt: [Double] = []

        // Public resolvers sit where the demand is: at the centres of the heaviest regions.
        let byWeight = scenario.regions.indices.sorted { scenario.regions[$0].weight > scenario.regions[$1].weight }
        let publicSites = byWeight.prefix(max(1, scenario.resolvers.publicResolvers)).map { scenario.regions[$0].location }
        func addResolver(at location: GeoPoint, ecs: Bool) -> Int {
            let index = resolvers.count
            let address = IPAddress(family: .ipv4, bytes: [40, UInt8(index >> 8 & 255), UInt8(index & 255), 53])!
            latency.setLocation(location, prefix: IPPrefix(address: address, length: 24)!)
            resolvers.append(Resolver(address: address, ecs: ecs,
                                      stretches: random.unit() < scenario.resolvers.stretchShare))
            return index
        }
        let publicIndex = publicSites.map { addResolver(at: $0, ecs: true) }

        for (regionIndex, region) in scenario.regions.enumerated() {
            let isp = (0..<max(1, region.resolvers)).map { _ in addResolver(at: region.location, ecs: false) }
            var members: [Int] = []
            var weights: [Double] = []
            for _ in 0..<region.prefixes {
                let index = groups.count
                let address = IPAddress(family: .ipv4, bytes: [20 + UInt8(index >> 16), UInt8(index >> 8 & 255),
                                                               UInt8(index & 255), 0])!
                let prefix = IPPrefix(address: address, length: 24)!
                let location = Self.scatter(region.location, radiusKm: region.radiusKm, &random)
                latency.setLocation(location, prefix: prefix)
                let resolver: Int
                if random.unit() < scenario.resolvers.ecsShare {
                    resolver = publicIndex.min { publicSites[$0 - publicIndex[0]].distance(to: location)
                        < publicSites[$1 - publicIndex[0]].distance(to: location) }!
                } else {
                    resolver = isp[Int(random.next() % UInt64(isp.count))]
                }
                groups.append(Group(prefix: prefix, region: regionIndex, resolver: resolver))
                // Paths are not great circles: each /24 × site pair is off the estimate by a
                // log-normal factor, so the server's geographic estimate is close, not exact.
                for site in scenario.sites {
                    rtt.append(location.estimatedRTT(to: site.location) * random.logNormal(mean: 1, cv: 0.15))
                }
                members.append(index)
                weights.append(random.logNormal(mean: 1, cv: scenario.prefixSpread))
            }
            regionGroups.append(members)
            regionPicker.append(AliasTable(weights: weights))
        }

        self.resolvers = resolvers
        self.groups = groups
        self.regionGroups = regionGroups
        self.regionPicker = regionPicker
        self.rtt = rtt
        let service = Service(name: "svc", sites: Array(sites.indices), ttl: scenario.ttl, answers: 1,
                              policy: .responseTime, affinityHold: scenario.hold, affinityMargin: scenario.margin)
        snapshot = SteeringSnapshot(sites: sites, services: [service], latency: latency, parameters: scenario.parameters)
    }

    func rtt(group: Int, site: Int) -> Double { rtt[group * siteCount + site] }

    /// A point within `radiusKm` of `centre`, uniform over the disc.
    static func scatter(_ centre: GeoPoint, radiusKm: Double, _ random: inout SimulationRandom) -> GeoPoint {
        let distance = radiusKm * random.unit().squareRoot()
        let bearing = 2 * Double.pi * random.unit()
        let latitude = centre.latitude + distance * cos(bearing) / 111.0
        let longitude = centre.longitude + distance * sin(bearing) / (111.0 * max(cos(centre.latitude * Double.pi / 180), 0.1))
        return GeoPoint(latitude: min(max(latitude, -89.9), 89.9),
                        longitude: min(max(longitude, -179.9), 179.9))!
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
