@testable import Scoring
import Testing

/// A small topology: three sites, nested prefixes in IPv4 and IPv6.
enum Topology {
    static let sites = [
        Site(id: "fra1", addresses: [IPAddress("192.0.2.10")!, IPAddress("2001:db8:1::10")!], capacity: 800,
             location: GeoPoint(latitude: 50.11, longitude: 8.68)),
        Site(id: "ams1", addresses: [IPAddress("192.0.2.20")!], capacity: 600,
             location: GeoPoint(latitude: 52.37, longitude: 4.90)),
        Site(id: "par1", addresses: [IPAddress("192.0.2.30")!], capacity: 400,
             location: GeoPoint(latitude: 48.86, longitude: 2.35)),
    ]

    static let latency: LatencyMap = {
        var map = LatencyMap()
        func set(_ prefix: String, _ rtts: [Double]) {
            for (site, rtt) in rtts.enumerated() { map.setRTT(rtt, prefix: IPPrefix(prefix)!, site: site) }
        }
        set("198.51.0.0/16", [5, 20, 30])      // broad: Frankfurt
        set("198.51.100.0/24", [30, 20, 4])    // a more specific /24 inside it: Paris
        set("2001:db8::/32", [9, 3, 12])       // broad v6: Amsterdam
        set("2001:db8:aa00::/40", [2, 15, 15]) // more specific v6: Frankfurt
        map.setLocation(GeoPoint(latitude: 48.0, longitude: 2.0)!, prefix: IPPrefix("100.0.0.0/8")!)
        return map
    }()

    static func snapshot(loads: [SiteLoad]? = nil, policy: Policy = .responseTime, answers: Int = 1,
                         parameters: ScoringParameters = ScoringParameters(), directed: [Double]? = nil) -> SteeringSnapshot {
        SteeringSnapshot(sites: sites, services: [Service(name: "api.svc.example.", sites: [0, 1, 2], answers: answers, policy: policy)],
                         loads: loads, directed: directed, latency: latency, parameters: parameters)
    }

    static func pick(_ client: String, prefix: Int? = nil, snapshot: SteeringSnapshot = snapshot(), now: Double = 1000,
                     sequence: UInt64 = 0, moved: [Double]? = nil) -> Decision {
        var storage = DecisionStorage()
        return Selector.select(service: snapshot.services[0], client: Client(address: IPAddress(client)!, prefixLength: prefix),
                               snapshot: snapshot, now: now, sequence: sequence, moved: moved, storage: &storage)
    }

    static func id(_ decision: Decision) -> String { sites[decision.sites[0]].id }
}

@Suite struct SelectionTests {
    /// (client, ECS source prefix or nil for a source address) → (site, scope).
    static let table: [(String, Int?, String, Int)] = [
        ("198.51.7.1", nil, "fra1", 18),          // /16 entry; 198.51.7 and 198.51.100 first differ in bit 17 (0-based)
        ("198.51.100.9", nil, "par1", 24),        // the more specific /24 wins
        ("198.51.100.0", 24, "par1", 24),         // ECS /24
        ("198.51.0.0", 16, "fra1", 16),           // ECS /16: only 16 bits known, scope cannot exceed them
        ("198.51.100.0", 20, "fra1", 20),         // ECS /20 cannot reach the /24
        ("0.0.0.0", 0, "fra1", 0),                // ECS /0: no client information, scope 0 (ties → first site)
        ("2001:db8:aa00::", 56, "fra1", 40),      // ECS /56 inside the /40 (leaf): scope /40
        ("2001:db8:bb00::", 56, "ams1", 36),      // inside the /32 only; bb00 and aa00 first differ in bit 35
        ("2001:db8:aa00::1", nil, "fra1", 40),    // a full IPv6 source address
        ("100.1.2.3", nil, "par1", 8),            // geo estimate from the /8's location: Paris is nearest
    ]

    @Test(arguments: table.indices)
    func choosesSiteAndScope(_ index: Int) {
        let (client, prefix, site, scope) = Self.table[index]
        let decision = Topology.pick(client, prefix: prefix)
        #expect(Topology.id(decision) == site, "\(client)/\(prefix ?? -1)")
        #expect(decision.scope == scope, "\(client)/\(prefix ?? -1)")
        #expect(!decision.allDown)
    }

    /// A decision made in lent storage (`DecisionStorage`, a UDP worker's) is the decision made
    /// without it, and once the storage is reclaimed from it the next one is made in the same
    /// arrays: no allocation per decision.
    @Test func decisionsInLentStorageReuseItsArrays() {
        var storage = DecisionStorage()
        var buffers: (candidates: UnsafeRawPointer?, sites: UnsafeRawPointer?)? = nil
        for (client, prefix, _, _) in Self.table {
            let who = Client(address: IPAddress(client)!, prefixLength: prefix)
            let snapshot = Topology.snapshot()
            var decision: Decision? = Selector.select(service: snapshot.services[0], client: who, snapshot: snapshot,
                                                      now: 1000, storage: &storage)
            let plain = Topology.pick(client, prefix: prefix)
            #expect(decision!.sites == plain.sites && decision!.scope == plain.scope && decision!.ttl == plain.ttl)
            #expect(decision!.candidates.map(\.score) == plain.candidates.map(\.score))
            let used = (decision!.candidates.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) },
                        decision!.sites.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) })
            if let buffers { #expect(used.0 == buffers.candidates && used.1 == buffers.sites, "\(client): new arrays") }
            buffers = used
            storage.reclaim(decision!)
            decision = nil
        }
    }

    @Test func rttSourcesAreReported() {
        let candidates = Topology.pick("100.1.2.3").candidates
        #expect(candidates.allSatisfy { $0.rttSource == .geo(IPPrefix("100.0.0.0/8")!) })
        let unknown = Topology.pick("8.8.8.8").candidates
        #expect(unknown.allSatisfy { $0.rttSource == .defaultRTT && $0.rtt == 80 })
        #expect(Topology.pick("198.51.100.1").candidates[0].rttSource == .measured(IPPrefix("198.51.100.0/24")!))
    }

    /// draft-ietf-cats-usecases-requirements: three sites with compute/network delays of
    /// 4/9, 10/4 and 5/5 ms. The response-time policy picks site 3 (total 10 ms); nearest
    /// (network only) picks site 2 and a compute-only choice picks site 1.
    @Test func catsThreeSiteExample() {
        var map = LatencyMap()
        let client = IPPrefix("203.0.113.0/24")!
        for (site, rtt) in [9.0, 4, 5].enumerated() { map.setRTT(rtt, prefix: client, site: site) }
        let sites = (1...3).map { Site(id: "site\($0)", addresses: [.v4(UInt32($0))], capacity: 1000) }
        let loads = [4.0, 10, 5].map { SiteLoad(utilization: 0, serviceMs: $0, reportedAt: 100) }
        func choose(_ policy: Policy) -> String {
            let snapshot = SteeringSnapshot(sites: sites, services: [Service(name: "s.", sites: [0, 1, 2], policy: policy)],
                                            loads: loads, latency: map)
            let decision = Selector.select(service: snapshot.services[0], client: Client(address: client.address, prefixLength: 24),
                                           snapshot: snapshot, now: 101)
            return sites[decision.sites[0]].id
        }
        #expect(choose(.responseTime) == "site3")
        #expect(choose(.nearest) == "site2")
        // Compute-only: lowest compute delay, all sites idle → site 1.
        let computeOnly = Selector.select(
            service: Service(name: "s.", sites: [0, 1, 2]), client: Client(address: client.address, prefixLength: 24),
            snapshot: SteeringSnapshot(sites: sites, services: [], loads: loads), now: 101)
        #expect(computeOnly.candidates.min { $0.computeDelay < $1.computeDelay }?.site == 0)
        #expect(choose(.leastLoaded) == "site1") // equal utilisation: first site
    }

    /// Raising one site's utilisation moves exactly the clients it served to their next best
    /// site, and no one else.
    @Test func loadMovesOnlyTheClientsOfTheLoadedSite() {
        let fresh = { (u: Double) in SiteLoad(utilization: u, serviceMs: 10, reportedAt: 990) }
        let calm = Topology.snapshot(loads: [fresh(0.3), fresh(0.3), fresh(0.3)])
        let busy = Topology.snapshot(loads: [fresh(0.3), fresh(0.3), fresh(0.95)]) // par1: 10 / 0.05 = 200 ms
        var clients: [IPAddress] = []
        for third in [7, 100, 101, 200] { clients.append(IPAddress("198.51.\(third).1")!) }
        clients += ["2001:db8:aa00::1", "2001:db8:bb00::1", "100.1.2.3"].map { IPAddress($0)! }
        var moved = 0
        for client in clients {
            let before = Topology.pick(client.description, snapshot: calm)
            let after = Topology.pick(client.description, snapshot: busy)
            if Topology.id(before) == "par1" {
                #expect(Topology.id(after) != "par1", "\(client) should leave par1")
                let next = before.candidates.filter { $0.site != 2 }.min { $0.score < $1.score }!.site
                #expect(after.sites[0] == next, "\(client) should go to its next best site")
                moved += 1
            } else {
                #expect(after.sites == before.sites, "\(client) should stay")
            }
        }
        #expect(moved == 2) // 198.51.100.1 and 100.1.2.3
    }

    @Test func reportsAgeFromFreshToStale() {
        var parameters = ScoringParameters()
        parameters.freshFor = 10
        parameters.staleAfter = 60
        parameters.unknownUtilization = 0.5
        let snapshot = Topology.snapshot(loads: [SiteLoad(utilization: 0.9, reportedAt: 1000), .unknown, .unknown],
                                         parameters: parameters)
        func utilization(at now: Double) -> Double { Topology.pick("198.51.7.1", snapshot: snapshot, now: now).candidates[0].utilization }
        #expect(abs(utilization(at: 1005) - 0.9) < 1e-9)        // fresh: trusted
        #expect(abs(utilization(at: 1035) - 0.7) < 1e-9)        // halfway: halfway to unknown
        #expect(abs(utilization(at: 1060) - 0.5) < 1e-9)        // at the limit: unknown
        let stale = Topology.pick("198.51.7.1", snapshot: snapshot, now: 1061)
        #expect(stale.candidates[0].excluded == .stale && Topology.id(stale) != "fra1")
        #expect(stale.candidates[1].excluded == nil && stale.candidates[1].reportAge == nil) // never reported: unknown, usable
    }

    @Test func excludesUnhealthyAndOverloadedSites() {
        let loads = [SiteLoad(utilization: 0.2, healthy: false, reportedAt: 999), SiteLoad(utilization: 1.2, reportedAt: 999),
                     SiteLoad(utilization: 0.5, reportedAt: 999)]
        let decision = Topology.pick("198.51.7.1", snapshot: Topology.snapshot(loads: loads))
        #expect(decision.candidates.map(\.excluded) == [.unhealthy, .overloaded, nil])
        #expect(Topology.id(decision) == "par1")
        #expect(decision.scope == 0) // one eligible site: the same answer for everyone
    }

    @Test func allDownPolicies() {
        let down = [SiteLoad](repeating: SiteLoad(utilization: 0.1, healthy: false, reportedAt: 999), count: 3)
        var parameters = ScoringParameters()
        parameters.allDown = .all
        let all = Topology.pick("198.51.100.1", snapshot: Topology.snapshot(loads: down, parameters: parameters))
        #expect(all.allDown && all.sites == [0, 1, 2] && all.scope == 0)
        parameters.allDown = .leastBad
        let leastBad = Topology.pick("198.51.100.1", snapshot: Topology.snapshot(loads: down, parameters: parameters))
        #expect(leastBad.allDown && Topology.id(leastBad) == "par1")
    }

    @Test func directedLoadCountsAgainstASite() {
        let loads = [SiteLoad](repeating: SiteLoad(utilization: 0.3, serviceMs: 10, reportedAt: 999), count: 3)
        let quiet = Topology.pick("198.51.100.1", snapshot: Topology.snapshot(loads: loads))
        #expect(Topology.id(quiet) == "par1")
        // 260 req/s already sent to par1 (capacity 400) pushes it to 0.95 utilisation.
        let herded = Topology.pick("198.51.100.1", snapshot: Topology.snapshot(loads: loads, directed: [0, 0, 260]))
        #expect(abs(herded.candidates[2].utilization - 0.95) < 1e-9)
        #expect(Topology.id(herded) != "par1")
        // The same load moved by decisions since the last publish (`moved`, by position in
        // the service's sites) counts exactly as directed load does, on top of it; a list
        // that is not one per site of the service counts for nothing.
        let recent = Topology.snapshot(loads: loads, directed: [0, 0, 100])
        let overlaid = Topology.pick("198.51.100.1", snapshot: recent, moved: [40, 0, 160])
        let added = Topology.pick("198.51.100.1", snapshot: Topology.snapshot(loads: loads, directed: [40, 0, 260]))
        #expect(overlaid.candidates.map(\.utilization) == added.candidates.map(\.utilization))
        #expect(overlaid.candidates.map(\.score) == added.candidates.map(\.score))
        #expect(overlaid.sites == added.sites && Topology.id(overlaid) != "par1")
        let misfit = Topology.pick("198.51.100.1", snapshot: recent, moved: [40, 160])
        let base = Topology.pick("198.51.100.1", snapshot: recent)
        #expect(misfit.candidates.map(\.utilization) == base.candidates.map(\.utilization))
    }

    /// A report's swing: none for a first report, the change for a second, then a moving
    /// mean in which each report weighs a fifth; the window is the time since the last one.
    @Test func reportsCarryTheirSwing() {
        let first = SiteLoad(utilization: 0.5, reportedAt: 100).measured(after: .unknown)
        #expect(first.swing == nil && first.window == nil)
        let second = SiteLoad(utilization: 0.7, reportedAt: 105).measured(after: first)
        #expect(abs(second.swing! - 0.2) < 1e-12 && second.window == 5)
        let third = SiteLoad(utilization: 0.6, reportedAt: 110).measured(after: second)
        #expect(abs(third.swing! - (0.8 * 0.2 + 0.2 * 0.1)) < 1e-12)
        // The overload error: the sampling error, and the swing up to `swingErrors` of them.
        let sampling = third.utilizationError(capacity: 400, defaultWindow: 10)
        #expect(abs(third.overloadError(capacity: 400, defaultWindow: 10, swingErrors: 0) - sampling) < 1e-12)
        let capped = min(third.swing!, 4 * sampling)
        #expect(abs(third.overloadError(capacity: 400, defaultWindow: 10, swingErrors: 4)
                    - (sampling * sampling + capped * capped).squareRoot()) < 1e-12)
    }

    /// The nearest site near capacity, whose reports swing, is worth its chance of being
    /// overloaded by the time the answer is used: the client goes to the next best site,
    /// which it would not for the M/M/c delay at the reported figure alone.
    @Test func aSwingingSiteNearCapacityKeepsHeadroom() {
        let calm = SiteLoad(utilization: 0.3, serviceMs: 10, reportedAt: 994)
        let before = SiteLoad(utilization: 0.75, serviceMs: 10, reportedAt: 994)
        let swinging = SiteLoad(utilization: 0.85, serviceMs: 10, reportedAt: 999).measured(after: before)
        let loads = [calm, calm, swinging]
        #expect(abs(swinging.swing! - 0.1) < 1e-12)
        var without = ScoringParameters()
        without.swingErrors = 0
        let plain = Topology.pick("198.51.100.1", snapshot: Topology.snapshot(loads: loads, parameters: without), now: 1000)
        #expect(Topology.id(plain) == "par1")   // 4 ms away, and at 0.85 of 4 servers still the best
        let risky = Topology.pick("198.51.100.1", snapshot: Topology.snapshot(loads: loads), now: 1000)
        #expect(Topology.id(risky) == "ams1")
        let delay = Queueing.responseTime(serviceMs: 10, utilization: 0.85, servers: 4, cap: 1000)
        #expect(risky.candidates[2].computeDelay > delay + 50 && plain.candidates[2].computeDelay < delay + 1)
        // The baselines do not price it: nearest still goes to par1.
        let nearest = Topology.pick("198.51.100.1", snapshot: Topology.snapshot(loads: loads, policy: .nearest), now: 1000)
        #expect(Topology.id(nearest) == "par1")
    }

    @Test func baselinePolicies() {
        let loads = [SiteLoad(utilization: 0.8, reportedAt: 999), SiteLoad(utilization: 0.2, reportedAt: 999),
                     SiteLoad(utilization: 0.5, reportedAt: 999)]
        let leastLoaded = Topology.pick("198.51.100.1", snapshot: Topology.snapshot(loads: loads, policy: .leastLoaded))
        #expect(Topology.id(leastLoaded) == "ams1" && leastLoaded.scope == 0)
        let nearest = Topology.pick("198.51.100.1", snapshot: Topology.snapshot(loads: loads, policy: .nearest))
        #expect(Topology.id(nearest) == "par1" && nearest.scope == 24)
        let rr = (0..<6).map { Topology.id(Topology.pick("198.51.100.1", snapshot: Topology.snapshot(policy: .roundRobin), sequence: UInt64($0))) }
        #expect(rr == ["fra1", "ams1", "par1", "fra1", "ams1", "par1"])
        var counts = [String: Int]()
        for sequence in 0..<18_000 {
            counts[Topology.id(Topology.pick("198.51.100.1", snapshot: Topology.snapshot(policy: .weighted), sequence: UInt64(sequence))), default: 0] += 1
        }
        // Capacities 800:600:400 → 8000:6000:4000 expected; allow 5%.
        #expect(abs(counts["fra1", default: 0] - 8000) < 400 && abs(counts["par1", default: 0] - 4000) < 200)
        let two = Topology.pick("198.51.100.1", snapshot: Topology.snapshot(answers: 2))
        #expect(two.sites.count == 2 && Topology.id(two) == "par1")
    }
}

/// A service of more sites than are scanned (`Service.position(of:)` looks them up) gets the
/// measured RTT of each of its own sites, in its own order, a site listed twice included, and
/// nothing from the map's other sites.
@Test func aLargeServiceFindsTheMeasurementsOfItsOwnSites() {
    let sites = (0..<60).map { Site(id: "s\($0)", addresses: [IPAddress("192.0.2.1")!], capacity: 100) }
    var map = LatencyMap()
    for site in 0..<60 { map.setRTT(Double(100 + site), prefix: IPPrefix("10.0.0.0/8")!, site: site) }
    map.setRTT(7, prefix: IPPrefix("10.1.0.0/16")!, site: 42)
    let members = Array((10..<50).reversed()) + [42]
    let service = Service(name: "big.", sites: members)
    let snapshot = SteeringSnapshot(sites: sites, services: [service], latency: map)
    let decision = Selector.select(service: service, client: Client(address: IPAddress("10.1.2.3")!), snapshot: snapshot, now: 0)
    #expect(decision.candidates.map(\.site) == members)
    for candidate in decision.candidates {
        let expected = candidate.site == 42 ? 7 : Double(100 + candidate.site)
        #expect(candidate.rtt == expected, "site \(candidate.site)")
        #expect(candidate.rttSource == .measured(IPPrefix(candidate.site == 42 ? "10.1.0.0/16" : "10.0.0.0/8")!))
    }
    #expect(decision.sites == [42] && decision.scope == 16)
}

@Suite struct LatencyMapTests {
    @Test func smoothsMeasurementsAndRejectsInvalid() {
        var map = LatencyMap()
        let prefix = IPPrefix("203.0.113.0/24")!
        let accepted = [map.setRTT(10, prefix: prefix, site: 0), map.setRTT(20, prefix: prefix, site: 0, alpha: 0.3)]
        #expect(accepted == [true, true])
        #expect(abs(map.match(IPAddress("203.0.113.5")!, prefixLength: 32).rtts[0]!.rtt - 13) < 1e-9)
        let refused = [map.setRTT(.nan, prefix: prefix, site: 0), map.setRTT(-1, prefix: prefix, site: 0),
                       map.setRTT(.infinity, prefix: prefix, site: 1)]
        #expect(refused == [false, false, false])
        #expect(map.match(IPAddress("203.0.113.5")!, prefixLength: 32).rtts[1] == nil)
        #expect(map.prefixCount == 1)
    }

    /// RTTs are stored in whole microseconds (12 bytes a measurement): milliseconds with up
    /// to three decimals read back exactly, finer ones to the nearest microsecond, and an
    /// absurd value is held at the largest, not wrapped.
    @Test func measurementsKeepMicroseconds() {
        #expect(MemoryLayout<LatencyMap.Record>.stride == 12)
        var map = LatencyMap()
        let cases: [(given: Double, read: Double)] = [(12.5, 12.5), (0.3, 0.3), (7.123, 7.123), (99_999.999, 99_999.999),
                                                      (12.3456789, 12.346), (0.0004, 0), (0, 0), (1e12, Double(UInt32.max) / 1000)]
        for (site, item) in cases.enumerated() { map.setRTT(item.given, prefix: IPPrefix("198.51.100.0/24")!, site: site) }
        let rtts = map.match(IPAddress("198.51.100.1")!, prefixLength: 32).rtts
        for (site, item) in cases.enumerated() { #expect(rtts[site]?.rtt == item.read, "\(item.given)") }
    }

    /// A prefix's head holds its location and starts its chain of measurements, in the one
    /// array of records: a location set before, between or after its measurements, and set
    /// again, is read back with all of them; and a prefix loaded in one go (a file's lines)
    /// has its head and measurements side by side, which is what spares the walk a read.
    @Test func aPrefixHeadKeepsItsLocationAndItsMeasurements() {
        var map = LatencyMap()
        let paris = GeoPoint(latitude: 48.86, longitude: 2.35)!, berlin = GeoPoint(latitude: 52.52, longitude: 13.40)!
        let first = IPPrefix("198.51.100.0/24")!, second = IPPrefix("203.0.113.0/24")!, third = IPPrefix("192.0.2.0/24")!
        map.setRTT(10, prefix: first, site: 0)
        map.setLocation(paris, prefix: first)
        map.setRTT(20, prefix: first, site: 1)
        map.setLocation(berlin, prefix: second)
        map.setRTT(30, prefix: second, site: 2)
        map.setLocation(paris, prefix: second)
        map.setLocation(berlin, prefix: third)
        let one = map.match(IPAddress("198.51.100.7")!, prefixLength: 32)
        #expect(one.rtts.mapValues(\.rtt) == [0: 10, 1: 20] && one.location?.point == paris && one.location?.prefix == first)
        let two = map.match(IPAddress("203.0.113.7")!, prefixLength: 32)
        #expect(two.rtts.mapValues(\.rtt) == [2: 30] && two.location?.point == paris)
        let three = map.match(IPAddress("192.0.2.7")!, prefixLength: 32)
        #expect(three.rtts.isEmpty && three.location?.point == berlin && three.scope == 24)
        #expect(map.prefixCount == 3)
        var loaded = LatencyMap()
        for site in 0..<3 { loaded.setRTT(Double(5 + site), prefix: first, site: site) }
        loaded.records.withUnsafeBufferPointer { records in
            #expect(records.count == 4 && records[0].site == LatencyMap.Record.head)
            #expect(Set(records.dropFirst().map(\.site)) == [0, 1, 2] && records.dropFirst().allSatisfy { $0.next == -1 || $0.next >= 1 })
        }
    }

    @Test func longestPrefixPerSite() {
        var map = LatencyMap()
        map.setRTT(50, prefix: IPPrefix("10.0.0.0/8")!, site: 0)
        map.setRTT(40, prefix: IPPrefix("10.0.0.0/8")!, site: 1)
        map.setRTT(5, prefix: IPPrefix("10.1.0.0/16")!, site: 0)
        let match = map.match(IPAddress("10.1.2.3")!, prefixLength: 32)
        #expect(match.rtts[0]!.rtt == 5 && match.rtts[0]!.prefix == IPPrefix("10.1.0.0/16")!)
        #expect(match.rtts[1]!.rtt == 40 && match.rtts[1]!.prefix == IPPrefix("10.0.0.0/8")!)
        #expect(match.scope == 16)
        // Families never mix.
        #expect(map.match(IPAddress("::a01:203")!, prefixLength: 128).rtts.isEmpty)
    }

    @Test func csvErrorsCarryLineNumbers() {
        var map = LatencyMap()
        let text = """
            prefix,site,rtt_ms
            # comment
            203.0.113.0/24,fra1,12.5
            203.0.113.0/24,nowhere,3
            203.0.113.1/24,fra1,3
            198.51.100.0/24,fra1,NaN
            198.51.100.0/24,fra1,-4
            198.51.100.0/24,fra1
            2001:db8::/32,fra1,7 # trailing comment
            """
        let errors = LatencyFile.parseRTTs(text, into: &map) { $0 == "fra1" ? 0 : nil }
        #expect(errors.map(\.line) == [4, 5, 6, 7, 8])
        #expect(errors[0].message == "unknown site \"nowhere\"")
        #expect(map.prefixCount == 2) // nothing invalid entered
        #expect(map.match(IPAddress("2001:db8::1")!, prefixLength: 128).rtts[0]?.rtt == 7)
        // Room was made for a head and a measurement per line before the rows were read.
        #expect(map.records.capacity >= 2 * 9)
    }

    /// The lines a file is read in room for (`LatencyMap.reserveCapacity(rows:)`): the last
    /// one counts with or without its newline.
    @Test func linesAreCounted() {
        #expect(["", "a", "a\n", "a\nb", "a\nb\n", "\n\n", "prefix\r\nx,y,1\r\n"].map(LatencyFile.lineCount)
                == [0, 1, 1, 2, 2, 2, 2])
    }
}

/// A large service's decisions in one storage (and a small one's in a storage that keeps every
/// service's, as a UDP worker's does) take each site's compute delay from the one
/// worked out before when the snapshot revision and the site's utilisation are the same, and
/// work it out again when either changed: the same candidates as deciding afresh, again and
/// again, after a report that changes a site's service time but not its utilisation, after
/// new parameters, and after load moved to a site (its utilisation, same revision).
@Test(arguments: [(100, DecisionStorage.largeService), (3, 1)])
func keptComputeDelaysFollowTheSnapshot(count: Int, keptFrom: Int) {
    let sites = (0..<count).map { Site(id: "s\($0)", addresses: [.v4(UInt32($0 + 1))], capacity: 100 + Double($0)) }
    var map = LatencyMap()
    for site in 0..<count { map.setRTT(Double(10 + site % 7), prefix: IPPrefix("0.0.0.0/0")!, site: site) }
    let service = Service(name: "big.", sites: Array(0..<count))
    let loads = (0..<count).map { SiteLoad(utilization: 0.5 + Double($0 % 10) / 25, serviceMs: 10, reportedAt: 0) }
    var snapshot = SteeringSnapshot(sites: sites, services: [service], loads: loads, latency: map)
    // A UDP worker's storage keeps a small service's delays too (`keepingDelaysFrom: 1`).
    var storage = DecisionStorage(keepingDelaysFrom: keptFrom)
    let client = Client(address: IPAddress("203.0.113.7")!, prefixLength: 24)
    func check(_ label: String) {
        let kept = Selector.select(service: service, client: client, snapshot: snapshot, now: 1, storage: &storage)
        let fresh = Selector.select(service: service, client: client, snapshot: snapshot, now: 1)
        #expect(storage.delays.count == count, "\(label): the delays are kept")
        #expect(kept.candidates.map(\.computeDelay) == fresh.candidates.map(\.computeDelay), "\(label)")
        #expect(kept.candidates.map(\.score) == fresh.candidates.map(\.score), "\(label)")
        #expect(kept.sites == fresh.sites, "\(label)")
        storage.reclaim(kept)
    }
    check("first")
    check("again")
    let before = snapshot.revision
    snapshot.loads[min(3, count - 1)].serviceMs = 40
    #expect(snapshot.revision != before)
    check("a report")
    snapshot.parameters.maxComputeMs = 50
    check("parameters")
    snapshot.directed[min(5, count - 1)] = 30
    check("directed load")
}

/// A snapshot's loads change in place, one site at a time, and each change is a new
/// revision: a writer applies a batch of reports to a snapshot of thousands of sites by
/// changing their elements, which must not copy the whole array each time (the same buffer
/// before and after, once the snapshot holds it alone).
@Test func loadsChangeInPlaceAndEachChangeIsANewRevision() {
    let sites = (0..<1_000).map { Site(id: "s\($0)", addresses: [.v4(UInt32($0 + 1))], capacity: 100) }
    var snapshot = SteeringSnapshot(sites: sites, services: [])
    let shared = snapshot   // another holder: the first change copies once
    snapshot.loads[0] = SiteLoad(utilization: 0.1, reportedAt: 0)
    let buffer = snapshot.loads.withUnsafeBufferPointer { $0.baseAddress }
    var revision = snapshot.revision
    // Checked after every change: a copy each time frees the buffer before and may well get
    // it back from malloc at the next, so only the end would often look the same.
    var moved = 0
    for site in 1..<1_000 {
        snapshot.loads[site] = SiteLoad(utilization: 0.2, reportedAt: Double(site))
        if snapshot.loads.withUnsafeBufferPointer({ $0.baseAddress }) != buffer { moved += 1 }
        #expect(snapshot.revision != revision, "site \(site)")
        revision = snapshot.revision
        snapshot.loads[site].queue = site
    }
    #expect(moved == 0, "changed in place, not copied (\(moved) of 999 changes moved the array)")
    #expect(snapshot.loads[999].reportedAt == 999 && snapshot.loads[999].queue == 999)
    #expect(shared.loads[999].reportedAt == nil, "the other holder keeps its loads")
    snapshot.loads = shared.loads
    #expect(snapshot.revision != revision && snapshot.loads[999].reportedAt == nil)
}
