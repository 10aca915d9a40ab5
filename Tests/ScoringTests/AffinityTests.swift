@testable import Scoring
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

    /// With a 300 s TTL a resolver asks every 300 s or more: a hold of 300 s keeps its binding
    /// for two TTLs, not one.
    @Test func aBindingOutlivesTwoTTLs() {
        let long = Service(name: "s.", sites: [0, 1, 2], ttl: 300, affinityHold: 300, affinityMargin: 0.2)
        #expect(long.bindingLifetime == 600 && Sticky.service.bindingLifetime == 300)
        let bound = Binding(site: "c", boundAt: 0, lastSeen: 100)
        let loads = [Sticky.load(0.3, at: 700), Sticky.load(0.3, at: 700), Sticky.load(0.3, at: 700)]
        func event(at now: Double) -> BindingEvent {
            Affinity.decide(service: long, client: Sticky.client, snapshot: Sticky.snapshot(loads: loads, services: [long]),
                            now: now, existing: bound).event
        }
        #expect(event(at: 405) == .kept)
        #expect(event(at: 701) == .expired)
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

    /// Bindings are stored compactly (names as numbers, the prefix as bits: 24 + 40 bytes an
    /// entry, not 48 + 64) and read back whole: every field, IPv4 and IPv6, the same prefix
    /// Reuses handed to a decision renew the binding before the decision reads it: a binding
    /// last seen by a decision 400 s ago (past the 300 s hold) but reused since is kept, with
    /// the reuses counted; without them it has expired.
    @Test func aDecisionReadsTheRenewalsItIsGiven() {
        func snapshot(at time: Double) -> SteeringSnapshot {
            Sticky.snapshot(loads: [Sticky.load(0.3, at: time), Sticky.load(0.3, at: time), Sticky.load(0.3, at: time)])
        }
        for renewed in [false, true] {
            let table = AffinityTable(capacity: 100)
            let first = table.decide(service: Sticky.service, client: Sticky.client, snapshot: snapshot(at: 0), now: 0)
            #expect(first.event == .created)
            var storage = DecisionStorage()
            let next = table.decide(service: Sticky.service, client: Sticky.client, snapshot: snapshot(at: 400), now: 400,
                                    renewal: renewed ? (queries: 5, lastSeen: 399.5) : nil, storage: &storage)
            let binding = table.binding(for: .init(service: Sticky.service.name, prefix: first.key))
            if renewed {
                #expect(next.event == .kept && binding?.site == first.binding?.site)
                #expect(binding?.queries == 7 && binding?.lastSeen == 400 && table.counts.kept == 6)
            } else {
                #expect(next.event == .expired && binding?.queries == 1 && table.counts.kept == 0)
            }
        }
    }

    /// Decisions for two services in turn keep each one's bindings apart: the table remembers
    /// the last service's number (`State.slot(remembering:)`), which must not carry over to
    /// the other.
    @Test func decisionsForServicesInTurnKeepTheirOwnBindings() {
        let other = Service(name: "t.", sites: [2], ttl: 20, affinityHold: 300, affinityMargin: 0.2)
        let snapshot = Sticky.snapshot(loads: [Sticky.load(0.3), Sticky.load(0.3), Sticky.load(0.3)],
                                       services: [Sticky.service, other])
        let table = AffinityTable(capacity: 100)
        for round in 0..<3 {
            for service in [Sticky.service, other] {
                let outcome = table.decide(service: service, client: Sticky.client, snapshot: snapshot, now: Double(round))
                #expect(outcome.event == (round == 0 ? .created : .kept), "\(service.name) round \(round)")
                let binding = table.binding(for: .init(service: service.name, prefix: outcome.key))
                #expect(binding?.queries == round + 1, "\(service.name) round \(round)")
            }
        }
        #expect(table.binding(for: .init(service: "t.", prefix: IPPrefix("203.0.113.0/24")!))?.site == "c")
        #expect(table.count == 2 && table.counts.created == 2 && table.counts.kept == 4)
    }

    /// Decisions on several threads while bindings come and go (a table of 16, evicting):
    /// where a decision found its binding is used again to store it only if no binding was
    /// added or removed in between (`Shards.layout`); a stale place would trap or store the
    /// binding in another's stead.
    @Test func concurrentDecisionsWithEvictionStayConsistent() async {
        let snapshot = Sticky.snapshot(loads: [Sticky.load(0.3), Sticky.load(0.3), Sticky.load(0.3)])
        let table = AffinityTable(capacity: 16)
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    var storage = DecisionStorage()
                    for index in 0..<3_000 {
                        // A few clients each worker comes back to, and many it does not.
                        let host = index % 4 == 0 ? worker : 16 + (index * 7 + worker * 1_000) % 4_000
                        let client = Client(address: .v4(0x0A00_0000 | UInt32(host) << 8), prefixLength: 24)
                        let outcome = table.decide(service: Sticky.service, client: client, snapshot: snapshot,
                                                   now: Double(index) / 100, storage: &storage)
                        if outcome.binding == nil { Issue.record("no binding for \(client)") }
                    }
                }
            }
        }
        #expect(table.count <= 16)
        for (key, binding) in table.entries() {
            #expect(key.service == "s." && ["a", "b", "c"].contains(binding.site) && binding.queries >= 1)
        }
        let counts = table.counts
        #expect(counts.created + counts.kept + counts.expired + counts.movedTotal == 12_000)
    }

    /// under two services, with and without a site moved from; renewals and expiry find them.
    @Test func storedBindingsReadBackWhole() {
        #expect(MemoryLayout<AffinityTable.Slot>.stride == 24 && MemoryLayout<AffinityTable.Stored>.stride == 40)
        let entries: [(AffinityTable.Key, Binding)] = [
            (.init(service: "a.", prefix: IPPrefix("203.0.113.0/24")!),
             Binding(site: "fra1", boundAt: 10.5, lastSeen: 12.25, queries: 7, previous: "par1", viaResolver: false)),
            (.init(service: "b.", prefix: IPPrefix("203.0.113.0/24")!),
             Binding(site: "par1", boundAt: 11, lastSeen: 11, queries: 1, previous: nil, viaResolver: true)),
            (.init(service: "a.", prefix: IPPrefix("2001:db8:ffff:ff00::/56")!),
             Binding(site: "ams1", boundAt: 3, lastSeen: 90, queries: 1 << 40, previous: "fra1", viaResolver: true)),
            (.init(service: "a.", prefix: IPPrefix("255.255.255.255/32")!),
             Binding(site: "ams1", boundAt: 0, lastSeen: 0)),
        ]
        let table = AffinityTable(capacity: 100)
        table.restore(entries)
        let read = table.entries()
        #expect(read.count == entries.count)
        for (key, binding) in entries {
            #expect(table.binding(for: key) == binding, "\(key)")
            #expect(read.contains { $0.0 == key && $0.1 == binding }, "\(key)")
        }
        #expect(table.binding(for: .init(service: "c.", prefix: IPPrefix("203.0.113.0/24")!)) == nil)
        // Moved, and kept after that: the sites stored are the new ones, not those before.
        let decision = Selector.select(service: Sticky.service, client: Sticky.client, snapshot: Sticky.snapshot(), now: 0)
        for (site, previous) in [("ams1", "par1"), ("ams1", "par1"), ("par1", "ams1")] {
            let moved = Binding(site: site, boundAt: 13, lastSeen: 14, queries: 1, previous: previous)
            table.record(Affinity.Outcome(decision: decision, binding: moved, event: .moved(.worse), key: entries[0].0.prefix),
                         service: "a.", now: 14)
            #expect(table.binding(for: entries[0].0) == moved)
        }
        #expect(table.binding(for: .init(service: "a.", prefix: IPPrefix("203.0.113.0/25")!)) == nil)
        table.renew([.init(service: "b.", client: Client(address: IPAddress("203.0.113.9")!, prefixLength: 24), lastSeen: 50, queries: 2),
                     .init(service: "c.", client: Client(address: IPAddress("203.0.113.9")!, prefixLength: 24), lastSeen: 50)])
        let renewed = table.binding(for: entries[1].0)
        #expect(renewed?.lastSeen == 50 && renewed?.queries == 3 && table.counts.kept == 2)
        // Each service's hold, asked by name.
        #expect(table.expire(now: 100) { $0 == "a." ? 20 : 1000 } == 2)
        #expect(table.entries().map(\.0).sorted { $0.service < $1.service } == [entries[2].0, entries[1].0])
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

    /// Sticky decisions in lent storage (`DecisionStorage`) are those made without it, in the
    /// same arrays from one decision to the next once it is reclaimed: created, then kept.
    @Test func stickyDecisionsInLentStorageReuseItsArrays() {
        let snapshot = Sticky.snapshot(loads: [Sticky.load(0.4), Sticky.load(0.5), Sticky.load(0.45)])
        let lent = AffinityTable(), plain = AffinityTable()
        var storage = DecisionStorage()
        var buffers: (UnsafeRawPointer?, UnsafeRawPointer?)? = nil
        for round in 0..<3 {
            for host in 0..<50 {
                let client = Client(address: .v4(0x0A00_0000 | UInt32(host) << 8), prefixLength: 24)
                let now = 10 + Double(round)
                var outcome: Affinity.Decided? = lent.decide(service: Sticky.service, client: client, snapshot: snapshot,
                                                             now: now, storage: &storage)
                let expected = plain.decide(service: Sticky.service, client: client, snapshot: snapshot, now: now)
                #expect(outcome!.decision.sites == expected.decision.sites && outcome!.event == expected.event)
                #expect(outcome!.binding.map { snapshot.sites[$0.site].id } == expected.binding?.site)
                #expect(outcome!.binding?.lastSeen == expected.binding?.lastSeen && outcome!.binding?.queries == expected.binding?.queries)
                #expect(outcome!.decision.ttl == expected.decision.ttl && outcome!.decision.scope == expected.decision.scope)
                let used = (outcome!.decision.candidates.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) },
                            outcome!.decision.sites.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) })
                if let buffers { #expect(used.0 == buffers.0 && used.1 == buffers.1, "round \(round), host \(host): new arrays") }
                buffers = used
                storage.reclaim(outcome!.decision)
                outcome = nil
            }
        }
        #expect(lent.counts.created == 50 && lent.counts.kept == 100)
    }

    /// The table reads a binding's site by the snapshot's index, kept per site list
    /// (`SteeringSnapshot.siteRevision`): a reload that reorders the sites, adds one in front
    /// or removes the bound one gives each client the site its binding names, by ID, or moves
    /// it with that site recorded as its previous one.
    @Test func keptBindingsFollowTheirSiteThroughReorderedConfigurations() {
        let loads = [Sticky.load(0.3), Sticky.load(0.3), Sticky.load(0.3)]
        let table = AffinityTable()
        var storage = DecisionStorage()
        let clients = (0..<60).map { Client(address: .v4(0x0A00_0000 | UInt32($0) << 8), prefixLength: 24) }
        let first = Sticky.snapshot(rtts: [10, 10, 10], loads: loads)
        var bound: [String] = []
        for client in clients {
            let decided = table.decide(service: Sticky.service, client: client, snapshot: first, now: 10, storage: &storage)
            bound.append(first.sites[decided.binding!.site].id)
        }
        #expect(Set(bound).count == 3, "the clients are spread over the three sites")
        for (client, site) in zip(clients, bound) {
            let decided = table.decide(service: Sticky.service, client: client, snapshot: first, now: 15, storage: &storage)
            #expect(decided.event == .kept && first.sites[decided.binding!.site].id == site)
        }
        // Reordered, with a new site in front that no client is bound to.
        let reordered = [Site(id: "z", addresses: [.v4(9)], capacity: 1000), Sticky.sites[2], Sticky.sites[0], Sticky.sites[1]]
        let service = Service(name: "s.", sites: [1, 2, 3, 0], ttl: 20, affinityHold: 300, affinityMargin: 0.2)
        var map = LatencyMap()
        for site in 0..<4 { map.setRTT(site == 0 ? 50 : 10, prefix: IPPrefix("0.0.0.0/0")!, site: site) }
        let second = SteeringSnapshot(sites: reordered, services: [service], loads: [Sticky.load(0.3)] + loads, latency: map)
        #expect(second.siteRevision != first.siteRevision)
        for (client, site) in zip(clients, bound) {
            let decided = table.decide(service: service, client: client, snapshot: second, now: 20, storage: &storage)
            #expect(decided.event == .kept && reordered[decided.binding!.site].id == site && reordered[decided.decision.sites[0]].id == site)
        }
        // Site "c" gone: its clients move, their bindings naming it as the site they left.
        let third = SteeringSnapshot(sites: Array(Sticky.sites.prefix(2)), services: [Service(name: "s.", sites: [0, 1], ttl: 20,
                                     affinityHold: 300, affinityMargin: 0.2)], loads: Array(loads.prefix(2)),
                                     latency: Sticky.snapshot(rtts: [10, 10]).latency)
        for (client, site) in zip(clients, bound) {
            let outcome = table.decide(service: third.services[0], client: client, snapshot: third, now: 30)
            if site == "c" {
                #expect(outcome.event == .moved(.removed) && outcome.binding?.previous == "c" && outcome.binding?.site != "c")
            } else {
                #expect(outcome.event == .kept && outcome.binding?.site == site && outcome.binding?.previous == nil)
            }
        }
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

    /// With the other sites overloaded, the answer is scope 0: every client of the resolver
    /// that caches it gets it, so it is kept for the shortest TTL. A service of one site
    /// answers scope 0 for its full TTL.
    @Test func aScopeZeroAnswerForWantOfOtherSitesIsShortLived() {
        let alone = Affinity.decide(service: Sticky.service, client: Sticky.client,
                                    snapshot: Sticky.snapshot(loads: [Sticky.load(0.3, at: 9), Sticky.load(1.2, at: 9), Sticky.load(1.1, at: 9)]),
                                    now: 10, existing: nil)
        #expect(alone.decision.sites == [0] && alone.decision.scope == 0 && alone.decision.ttl == 5)
        let single = Service(name: "s.", sites: [0], ttl: 20, affinityHold: 300, affinityMargin: 0.2)
        let only = Affinity.decide(service: single, client: Sticky.client,
                                   snapshot: Sticky.snapshot(loads: [Sticky.load(0.3, at: 9), Sticky.load(0.3, at: 9), Sticky.load(0.3, at: 9)],
                                                             services: [single]),
                                   now: 10, existing: nil)
        #expect(only.decision.sites == [0] && only.decision.scope == 0 && only.decision.ttl == 20)
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

    /// A site whose reported load is more than its bindings stand for at the measured
    /// requests per query has heavier clients, by that ratio; one with less is not lighter.
    @Test func heavierClientsAreMeasuredPerSite() {
        let snapshot = SteeringSnapshot(sites: Sticky.sites, services: [Sticky.service],
                                        loads: [Sticky.load(0.5, at: 100), Sticky.load(0.1, at: 100), .unknown])
        let table = AffinityTable()
        for third in 0..<20 {   // ten subnets on each of a and b, 0.1 q/s each
            let key = IPPrefix(address: .v4(UInt32(third) << 8), length: 24)!
            table.restore([(AffinityTable.Key(service: "s.", prefix: key),
                            Binding(site: third < 10 ? "a" : "b", boundAt: 0, lastSeen: 200, queries: 20))])
        }
        _ = table.directedLoad(snapshot: snapshot, now: 200)
        // 600 requests/s over 2 q/s: 300 per query, so a's 1 q/s stands for 300 of its 500.
        #expect(abs(table.clientWeight(site: "a") - 500.0 / 300) < 1e-9)
        #expect(table.clientWeight(site: "b") == 1)
        #expect(table.clientWeight(site: "c") == 1)
    }

    /// A table that has just started answers with the shortest TTL until reports have
    /// measured the load per query, for one TTL at most.
    @Test func aNewTableAnswersShortUntilTheLoadIsMeasured() {
        // One site clearly best, reports a second old: 20 s once the load is known.
        func reports(_ utilization: Double, at now: Double) -> SteeringSnapshot {
            Sticky.snapshot(rtts: [10, 30, 30], loads: (0..<3).map { _ in Sticky.load(utilization, at: now - 1) })
        }
        func ttl(_ table: AffinityTable, _ third: UInt32, at now: Double, _ utilization: Double = 0) -> UInt32 {
            table.decide(service: Sticky.service, client: Client(address: .v4(0x1400_0000 | third << 8), prefixLength: 24),
                         snapshot: reports(utilization, at: now), now: now).decision.ttl
        }
        let unmeasured = AffinityTable()
        #expect(ttl(unmeasured, 1, at: 100) == 5)
        _ = unmeasured.directedLoad(snapshot: reports(0, at: 101), now: 101)   // no load reported: still a guess
        #expect(ttl(unmeasured, 2, at: 110) == 5)
        #expect(ttl(unmeasured, 3, at: 121) == 20, "one TTL after the first decision")

        let measured = AffinityTable()
        #expect(ttl(measured, 1, at: 100, 0.3) == 5)
        _ = measured.directedLoad(snapshot: reports(0.3, at: 103), now: 103)
        #expect(ttl(measured, 2, at: 104, 0.3) == 20)
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

@Suite struct MoveTests {
    /// Two sites of one server each (100 requests/s of 10 ms, M/M/1) at the same RTT; the
    /// client is bound to a, at 85 % (76.7 ms), and b at 70 % scores 43.3 ms: more than the
    /// 20 % margin better.
    static let sites = [Site(id: "a", addresses: [.v4(1)], capacity: 100), Site(id: "b", addresses: [.v4(2)], capacity: 100)]
    static let service = Service(name: "s.", sites: [0, 1], ttl: 20, affinityHold: 300, affinityMargin: 0.2)
    static let bound = Binding(site: "a", boundAt: 0, lastSeen: 5)

    static func snapshot(window: Double, errors: Double = 1, b: Double = 0.7) -> SteeringSnapshot {
        // The report before at the same figure: a window of `window` seconds, and no swing.
        var snapshot = Sticky.snapshot(rtts: [10, 10], loads: [0.85, b].map { Sticky.load($0, at: 100).measured(after: Sticky.load($0, at: 100 - window)) },
                                       sites: sites, services: [service])
        snapshot.parameters.moveStandardErrors = errors
        return snapshot
    }

    /// σ = √(2u / (C·T)): at 50 % of 240 requests/s over 5 s, √(1/1200).
    @Test func utilisationErrorOfAReport() {
        let report = SiteLoad(utilization: 0.5, reportedAt: 10).measured(after: SiteLoad(utilization: 0.4, reportedAt: 5))
        #expect(abs(report.utilizationError(capacity: 240, defaultWindow: 10) - (1.0 / 1200).squareRoot()) < 1e-12)
        #expect(abs(SiteLoad(utilization: 0.5, reportedAt: 10).utilizationError(capacity: 240, defaultWindow: 10)
                    - (1.0 / 2400).squareRoot()) < 1e-12, "a first report: the default window")
        #expect(SiteLoad.unknown.utilizationError(capacity: 240, defaultWindow: 10) == 0)
        let repeated = SiteLoad(utilization: 0.5, reportedAt: 10.05).measured(after: SiteLoad(utilization: 0.5, reportedAt: 10))
        #expect(abs(repeated.utilizationError(capacity: 240, defaultWindow: 10) - (1.0 / 240).squareRoot()) < 1e-12,
                "50 ms after the last: a second's measurement")
        #expect(SiteLoad(utilization: 0.5, reportedAt: 10).utilizationError(capacity: 0, defaultWindow: 10) == 0)
    }

    /// Measured over 5 s, each site's utilisation is ±5–6 points (σ = √(2u/500)); a at
    /// 79 % against b at 75 % is within the margin, so the client stays. Over 500 s the
    /// figures are good to half a point and it moves; so it does with the guard off, or when
    /// b is clearly better (40 %).
    @Test func aKeptClientDoesNotMoveOnTheNoiseOfSmallReports() {
        func event(_ snapshot: SteeringSnapshot) -> BindingEvent {
            Affinity.decide(service: Self.service, client: Sticky.client, snapshot: snapshot, now: 101, existing: Self.bound).event
        }
        #expect(event(Self.snapshot(window: 5)) == .kept)
        #expect(event(Self.snapshot(window: 500)) == .moved(.worse))
        #expect(event(Self.snapshot(window: 5, errors: 0)) == .moved(.worse))
        #expect(event(Self.snapshot(window: 5, b: 0.4)) == .moved(.worse))
    }

    /// A client bringing 40 requests/s would take b to 110 %: it stays on a. A light one moves.
    @Test func aHeavyClientDoesNotMoveWhereItsOwnLoadMakesItWorse() {
        let snapshot = Self.snapshot(window: 500, errors: 0, b: 0.5)
        func event(_ demand: Double) -> BindingEvent {
            Affinity.decide(service: Self.service, client: Sticky.client, snapshot: snapshot, now: 101,
                            existing: Self.bound, demand: demand).event
        }
        #expect(event(0) == .moved(.worse))
        #expect(event(5) == .moved(.worse))    // b at 55 %: 32.2 ms × 1.2 < 76.7
        #expect(event(40) == .kept)
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

/// The load a table has moved since its last publish counts in its next decisions at every
/// place of the site it went to, and nowhere else: walked from the moved sites for a service
/// of more sites than were moved to, from the service's own sites for one of fewer, or that
/// lists a site twice.
@Test(arguments: [Array(0..<40), [0], [0, 1, 2, 0]])
func loadMovedSinceThePublishCountsWhereItWent(_ members: [Int]) {
    let sites = (0..<40).map { Site(id: "e\($0)", addresses: [.v4(UInt32($0 + 1))], capacity: 100) }
    let service = Service(name: "s.", sites: members, ttl: 20, affinityHold: 300, affinityMargin: 0.2)
    var map = LatencyMap()
    for site in 0..<40 { map.setRTT(10, prefix: IPPrefix("0.0.0.0/0")!, site: site) }
    let snapshot = SteeringSnapshot(sites: sites, services: [service], latency: map)
    let second = Client(address: IPAddress("198.51.100.0")!, prefixLength: 24)
    let baseline = AffinityTable().decide(service: service, client: second, snapshot: snapshot, now: 1).decision.candidates

    let table = AffinityTable()
    let first = table.decide(service: service, client: Sticky.client, snapshot: snapshot, now: 1)
    let moved = snapshot.siteIndex(first.binding!.site)!
    let after = table.decide(service: service, client: second, snapshot: snapshot, now: 1).decision.candidates
    #expect(after.map(\.site) == baseline.map(\.site))
    for (now, before) in zip(after, baseline) {
        if now.site == moved {
            #expect(now.utilization > before.utilization, "site \(now.site)")
        } else {
            #expect(now.utilization == before.utilization, "site \(now.site)")
        }
    }
    #expect(service.listsASiteTwice == (Set(members).count < members.count))
}
