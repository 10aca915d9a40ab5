import Scoring
import Testing

/// Affinity with an injected clock: three sites, one client prefix measured close to all.
enum Sticky {
    static let sites = [
        Site(id: "a", addresses: [.v4(1)], capacity: 1000),
        Site(id: "b", addresses: [.v4(2)], capacity: 1000),
        Site(id: "c", addresses: [.v4(3)], capacity: 1000),
    ]
    static let service = Service(name: "s.", sites: [0, 1, 2], ttl: 20, affinityHold: 300, affinityMargin: 0.2)

    static func snapshot(rtts: [Double] = [10, 11, 12], loads: [SiteLoad]? = nil, sites: [Site] = sites,
                         services: [Service] = [service]) -> SteeringSnapshot {
        var map = LatencyMap()
        for (site, rtt) in rtts.enumerated() { map.setRTT(rtt, prefix: IPPrefix("0.0.0.0/0")!, site: site) }
        map.setRTT(10, prefix: IPPrefix("::/0")!, site: 0)
        return SteeringSnapshot(sites: sites, services: services, loads: loads, latency: map)
    }

    static func load(_ utilization: Double, healthy: Bool = true, at time: Double = 0) -> SiteLoad {
        SiteLoad(utilization: utilization, serviceMs: 10, healthy: healthy, reportedAt: time)
    }

    static let client = Client(address: IPAddress("203.0.113.0")!, prefixLength: 24)
}

@Suite struct AffinityTests {
    func decide(_ snapshot: SteeringSnapshot, existing: Binding?, now: Double = 10, client: Client = Sticky.client) -> Affinity.Outcome {
        Affinity.decide(service: Sticky.service, client: client, snapshot: snapshot, now: now, existing: existing)
    }

    @Test func bindsThenKeepsWithinMargin() {
        let loads = [Sticky.load(0.3), Sticky.load(0.3), Sticky.load(0.3)]
        let first = decide(Sticky.snapshot(loads: loads), existing: nil)
        #expect(first.event == .created && first.key == IPPrefix("203.0.113.0/24")!)
        let site = first.binding!.site
        // Fresh reports at t=45; the bound site's service time grows from 10 to 11 ms, so its
        // score rises by about 1.4 ms: worse, but within the 20 % margin → kept, lastSeen renewed.
        var worse = [Sticky.load(0.3, at: 45), Sticky.load(0.3, at: 45), Sticky.load(0.3, at: 45)]
        let index = Sticky.sites.firstIndex { $0.id == site }!
        worse[index] = SiteLoad(utilization: 0.3, serviceMs: 11, reportedAt: 45)
        let kept = decide(Sticky.snapshot(loads: worse), existing: first.binding, now: 50)
        #expect(kept.event == .kept && kept.binding?.site == site && kept.binding?.lastSeen == 50)
        #expect(Sticky.sites[kept.decision.sites[0]].id == site)
    }

    @Test(arguments: [
        (SiteLoad(utilization: 0.3, healthy: false, reportedAt: 0), MoveReason.unhealthy),
        (SiteLoad(utilization: 1.3, reportedAt: 0), MoveReason.overloaded),
        (SiteLoad(utilization: 0.3, serviceMs: 60, reportedAt: 0), MoveReason.worse),
        (SiteLoad(utilization: 0.3, reportedAt: -100), MoveReason.stale),
    ])
    func movesWhenItMust(_ bad: SiteLoad, _ reason: MoveReason) {
        let loads = [Sticky.load(0.3), Sticky.load(0.3), Sticky.load(0.3)]
        let bound = Binding(site: "a", boundAt: 0, lastSeen: 5)
        var changed = loads
        changed[0] = bad
        let outcome = decide(Sticky.snapshot(loads: changed), existing: bound)
        #expect(outcome.event == .moved(reason))
        #expect(outcome.binding?.site != "a" && outcome.decision.sites[0] != 0)
    }

    @Test func expiresAfterHoldWithoutQueries() {
        let bound = Binding(site: "c", boundAt: 0, lastSeen: 100)
        let loads = [Sticky.load(0.3, at: 400), Sticky.load(0.3, at: 400), Sticky.load(0.3, at: 400)]
        #expect(decide(Sticky.snapshot(loads: loads), existing: bound, now: 399).event == .kept)
        #expect(decide(Sticky.snapshot(loads: loads), existing: bound, now: 401).event == .expired)

        let table = AffinityTable(capacity: 100)
        let key = AffinityTable.Key(service: "s.", prefix: IPPrefix("203.0.113.0/24")!)
        table.record(Affinity.Outcome(decision: Selector.select(service: Sticky.service, client: Sticky.client,
                                                                 snapshot: Sticky.snapshot(), now: 0),
                                      binding: bound, event: .created, key: key.prefix), service: "s.", now: 100)
        #expect(table.expire(now: 399) { _ in 300 } == 0 && table.count == 1)
        #expect(table.expire(now: 401) { _ in 300 } == 1 && table.count == 0)
    }

    @Test func lruCapIsRespected() {
        let table = AffinityTable(capacity: 100)
        let snapshot = Sticky.snapshot()
        for index in 0..<250 {
            let client = Client(address: .v4(UInt32(index) << 8), prefixLength: 24)
            let outcome = Affinity.decide(service: Sticky.service, client: client, snapshot: snapshot, now: Double(index), existing: nil)
            table.record(outcome, service: "s.", now: Double(index))
            #expect(table.count <= 100)
        }
        // The most recent survive, the oldest went first.
        #expect(table.binding(for: .init(service: "s.", prefix: IPPrefix("0.0.249.0/24")!)) != nil)
        #expect(table.binding(for: .init(service: "s.", prefix: IPPrefix("0.0.0.0/24")!)) == nil)
        #expect(table.counts.evicted >= 150)
    }

    /// Two engines with the same configuration and reports give the same answer to every
    /// client without sharing state; removing one site moves exactly the clients it had.
    @Test func twoEnginesAgreeAndASiteRemovalMovesOnlyItsClients() {
        let loads = [Sticky.load(0.4), Sticky.load(0.5), Sticky.load(0.45)]
        let snapshot = Sticky.snapshot(rtts: [10, 10, 10], loads: loads)
        let one = AffinityTable(), two = AffinityTable()
        var generator = SplitMix(seed: 42)
        var clients: [Client] = []
        for _ in 0..<10_000 { clients.append(Client(address: .v4(UInt32(truncatingIfNeeded: generator.next())), prefixLength: 24)) }
        var before: [String] = []
        for client in clients {
            let a = Affinity.decide(service: Sticky.service, client: client, snapshot: snapshot, now: 1, existing: nil)
            let b = Affinity.decide(service: Sticky.service, client: client, snapshot: snapshot, now: 1, existing: nil)
            one.record(a, service: "s.", now: 1)
            two.record(b, service: "s.", now: 1)
            #expect(a.binding?.site == b.binding?.site)
            before.append(a.binding!.site)
        }
        let counts = Dictionary(grouping: before, by: { $0 }).mapValues(\.count)
        #expect(counts.count == 3 && counts.values.allSatisfy { $0 > 2000 }) // spread by headroom

        // Site b leaves the service.
        var reduced = Sticky.service
        reduced.sites = [0, 2]
        var moved = 0
        for (index, client) in clients.enumerated() {
            let key = AffinityTable.Key(service: "s.", prefix: Affinity.keyPrefix(for: client))
            let after = Affinity.decide(service: reduced, client: client, snapshot: snapshot, now: 2,
                                        existing: one.binding(for: key))
            if after.binding?.site != before[index] {
                moved += 1
                #expect(before[index] == "b")
            }
        }
        #expect(moved == counts["b"]) // the minimum: exactly b's clients
    }

    /// Steady state with reports fluctuating ±5 % every 10 s: each prefix queries once per
    /// TTL for an hour of simulated time; answer changes stay below one per prefix per hour.
    @Test func churnStaysLowUnderNoisyReports() {
        let table = AffinityTable()
        var generator = SplitMix(seed: 7)
        let prefixes = (0..<500).map { Client(address: .v4(UInt32($0) << 8 | 0x0A00_0000), prefixLength: 24) }
        var last: [Int: String] = [:]
        var changes = 0
        var now = 0.0
        while now < 3600 {
            let loads = (0..<3).map { _ in
                Sticky.load(0.5 * (1 + (Double(generator.next() % 1000) / 1000 - 0.5) * 0.1), at: now)
            }
            let snapshot = Sticky.snapshot(rtts: [10, 11, 12], loads: loads)
            for (index, client) in prefixes.enumerated() where Int(now) % 20 == index % 20 / 10 * 10 {
                let key = AffinityTable.Key(service: "s.", prefix: Affinity.keyPrefix(for: client))
                let outcome = Affinity.decide(service: Sticky.service, client: client, snapshot: snapshot, now: now,
                                              existing: table.binding(for: key))
                table.record(outcome, service: "s.", now: now)
                let site = outcome.binding?.site ?? "-"
                if let previous = last[index], previous != site { changes += 1 }
                last[index] = site
            }
            now += 10
        }
        #expect(Double(changes) / Double(prefixes.count) < 1.0)
        #expect(table.counts.movedTotal == changes)
    }

    @Test func restoredBindingsWinOverAFreshChoice() {
        let snapshot = Sticky.snapshot(rtts: [10, 10, 10])
        let fresh = Affinity.decide(service: Sticky.service, client: Sticky.client, snapshot: snapshot, now: 1, existing: nil)
        let other = Sticky.sites.map(\.id).first { $0 != fresh.binding!.site }!
        let table = AffinityTable()
        let key = AffinityTable.Key(service: "s.", prefix: fresh.key)
        table.restore([(key, Binding(site: other, boundAt: 0, lastSeen: 0))])
        let decided = Affinity.decide(service: Sticky.service, client: Sticky.client, snapshot: snapshot, now: 1,
                                      existing: table.binding(for: key))
        #expect(decided.event == .kept && decided.binding?.site == other)
    }

    @Test func adaptiveTTLShortensNearCapacityAndOnCloseCalls() {
        let calm = Affinity.decide(service: Sticky.service, client: Sticky.client,
                                   snapshot: Sticky.snapshot(rtts: [10, 30, 30], loads: [Sticky.load(0.3), Sticky.load(0.3), Sticky.load(0.3)]),
                                   now: 1, existing: nil)
        #expect(calm.decision.ttl == 20)
        let busy = Affinity.decide(service: Sticky.service, client: Sticky.client,
                                   snapshot: Sticky.snapshot(rtts: [1, 200, 200], loads: [Sticky.load(0.9), Sticky.load(0.3), Sticky.load(0.3)]),
                                   now: 1, existing: nil)
        #expect(busy.decision.sites[0] == 0 && busy.decision.ttl == 10) // ρ = 0.9 → half the TTL
        let close = Affinity.decide(service: Sticky.service, client: Sticky.client,
                                    snapshot: Sticky.snapshot(rtts: [10, 10.5, 30], loads: [Sticky.load(0.3), Sticky.load(0.3), Sticky.load(0.3)]),
                                    now: 1, existing: nil)
        #expect(close.decision.ttl == 10)
        let ageing = Affinity.decide(service: Sticky.service, client: Sticky.client,
                                     snapshot: Sticky.snapshot(rtts: [10, 30, 30], loads: [Sticky.load(0.3, at: 0), Sticky.load(0.3), Sticky.load(0.3)]),
                                     now: 30, existing: nil)
        #expect(ageing.decision.ttl == 10) // report older than fresh-for (10 s)
    }
}

/// A small deterministic generator for tests.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct DirectedLoadTests {
    /// Bindings made after a site's report add their prefixes' request rate to it; those made
    /// before it are already in it. Requests per query are measured: the reported load over
    /// the bindings' query rate.
    @Test func bindingsSinceTheReportCount() {
        let snapshot = SteeringSnapshot(sites: Sticky.sites, services: [Sticky.service],
                                        loads: [Sticky.load(0.3, at: 100), Sticky.load(0.3, at: 100), .unknown])
        let table = AffinityTable()
        func bind(_ third: UInt32, to site: String, at time: Double, queries: Int, from previous: String? = nil) {
            let key = IPPrefix(address: .v4(third << 8), length: 24)!
            table.restore([(AffinityTable.Key(service: "s.", prefix: key),
                            Binding(site: site, boundAt: time, lastSeen: time, queries: queries, previous: previous))])
        }
        bind(1, to: "a", at: 50, queries: 100)   // before a's report: already counted by it; 100/300 s
        bind(2, to: "a", at: 150, queries: 40)   // 40 queries over 200 s → 0.2 q/s
        bind(3, to: "c", at: 340, queries: 10, from: "b")  // 10 queries over max(10 s, TTL 20 s) → 0.5 q/s
        let perQuery = 600.0 / (100.0 / 300 + 0.2 + 0.5) // 2 × 0.3 × 1000 req/s reported
        let load = table.directedLoad(snapshot: snapshot, now: 350)
        #expect(abs(load[0] - 0.2 * perQuery) < 1e-6)
        #expect(abs(load[1] + 0.5 * perQuery) < 1e-6, "b lost what moved to c")
        #expect(abs(load[2] - 0.5 * perQuery) < 1e-6)
    }

    /// A report measured over a window reflects a change made inside it in part.
    @Test func reportsReflectChangesByTheirWindow() {
        var report = Sticky.load(0.5, at: 100)
        #expect(report.reflects(changeAt: 90) == 1, "no window: everything before the report")
        report = report.measured(after: Sticky.load(0.4, at: 90))
        #expect(report.window == 10)
        #expect(report.reflects(changeAt: 95) == 0.5)
        #expect(report.reflects(changeAt: 85) == 1)
        #expect(report.reflects(changeAt: 101) == 0)
    }
}

@Suite struct SheddingTests {
    /// An overloaded site moves away only its excess: at utilisation 2 it keeps the clients
    /// whose hash is above 1 − 0.9/2 = 0.55, and always the same ones.
    @Test func overloadedSiteShedsItsExcess() {
        let snapshot = Sticky.snapshot(loads: [Sticky.load(2.0, at: 9), Sticky.load(0.2, at: 9), Sticky.load(0.2, at: 9)])
        var moved = 0
        for third in 0..<1000 {
            let client = Client(address: .v4(UInt32(0x1400_0000) | UInt32(third) << 8), prefixLength: 24)
            let existing = Binding(site: "a", boundAt: 0, lastSeen: 5)
            let first = Affinity.decide(service: Sticky.service, client: client, snapshot: snapshot, now: 10, existing: existing)
            let again = Affinity.decide(service: Sticky.service, client: client, snapshot: snapshot, now: 10, existing: existing)
            #expect(first.event == again.event)
            if first.event == .moved(.overloaded) { moved += 1 } else { #expect(first.event == .kept && first.decision.sites[0] == 0) }
        }
        #expect((500...600).contains(moved), "moved \(moved) of 1000")
    }

    /// When every site is overloaded, bound clients stay and new ones are spread.
    @Test func saturatedSitesKeepTheirClients() {
        let snapshot = Sticky.snapshot(loads: [Sticky.load(1.5, at: 9), Sticky.load(1.4, at: 9), Sticky.load(1.6, at: 9)])
        let kept = Affinity.decide(service: Sticky.service, client: Sticky.client, snapshot: snapshot, now: 10,
                                   existing: Binding(site: "c", boundAt: 0, lastSeen: 5))
        #expect(kept.event == .kept && kept.decision.sites == [2] && !kept.decision.allDown)
        var placed = Set<Int>()
        for third in 0..<100 {
            let client = Client(address: .v4(UInt32(0x1400_0000) | UInt32(third) << 8), prefixLength: 24)
            placed.insert(Affinity.decide(service: Sticky.service, client: client, snapshot: snapshot, now: 10, existing: nil).decision.sites[0])
        }
        #expect(placed.count == 3)
    }
}

@Suite struct PlacementDemandTests {
    /// A small site nearby (one server's worth: 100 requests/s of 10 ms) at half load, and a
    /// big one farther away. A light client goes to the small one; a client bringing 30
    /// requests/s would take it to 80 % (10 / 0.2 = 50 ms) and goes to the big one; one
    /// bringing 60 would overload it.
    @Test func aHeavyClientIsPlacedWhereItFits() {
        let sites = [Site(id: "edge", addresses: [.v4(1)], capacity: 100), Site(id: "dc", addresses: [.v4(2)], capacity: 10_000)]
        let service = Service(name: "s.", sites: [0, 1], ttl: 20, affinityHold: 300, affinityMargin: 0.2)
        let snapshot = Sticky.snapshot(rtts: [5, 25], loads: [Sticky.load(0.5, at: 9), Sticky.load(0.5, at: 9)],
                                       sites: sites, services: [service])
        func placed(_ demand: Double) -> String {
            let outcome = Affinity.decide(service: service, client: Sticky.client, snapshot: snapshot, now: 10,
                                          existing: nil, demand: demand)
            return sites[outcome.decision.sites[0]].id
        }
        #expect(placed(0) == "edge")
        #expect(placed(5) == "edge")     // 55 %: 5 + 22 ms against 25 + 10
        #expect(placed(30) == "dc")
        #expect(placed(60) == "dc")
        // The explanation still shows the sites as they are, without the client.
        let outcome = Affinity.decide(service: service, client: Sticky.client, snapshot: snapshot, now: 10, existing: nil, demand: 60)
        #expect(outcome.decision.candidates[0].utilization == 0.5)
        // A bound client's own load is in its site's figures already: it stays.
        let kept = Affinity.decide(service: service, client: Sticky.client, snapshot: snapshot, now: 10,
                                   existing: Binding(site: "edge", boundAt: 0, lastSeen: 5), demand: 60)
        #expect(kept.event == .kept && kept.decision.sites == [0])
    }

    /// When the client fits nowhere, it is placed as if it weighed nothing, not refused.
    @Test func aClientTooBigForEverySiteIsStillPlaced() {
        let snapshot = Sticky.snapshot(loads: [Sticky.load(0.5, at: 9), Sticky.load(0.5, at: 9), Sticky.load(0.5, at: 9)])
        let outcome = Affinity.decide(service: Sticky.service, client: Sticky.client, snapshot: snapshot, now: 10,
                                      existing: nil, demand: 5_000)
        let light = Affinity.decide(service: Sticky.service, client: Sticky.client, snapshot: snapshot, now: 10, existing: nil)
        #expect(!outcome.decision.allDown && outcome.decision.sites == light.decision.sites)
    }
}
