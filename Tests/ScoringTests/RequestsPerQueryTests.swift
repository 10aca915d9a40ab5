import Scoring
import Testing

@Suite struct RequestsPerQueryTests {
    /// Sites of different mixes, each reporting 1 500 requests per subnet query and 16 000
    /// per resolver query: the fit finds the ratio, and the figures are scaled to the load
    /// reported in all.
    @Test func theFitTellsResolversFromSubnets() {
        var fit = RequestsPerQuery.Fit()
        let mixes: [RequestsPerQuery.Rates] = [.init(subnet: 0.2, resolver: 0.01), .init(subnet: 0.05, resolver: 0.03),
                                               .init(subnet: 0.1, resolver: 0.1)]
        var total = RequestsPerQuery.Rates()
        var reported = 0.0
        for (second, mix) in mixes.enumerated() {
            let load = 1500 * mix.subnet + 16000 * mix.resolver
            fit.add(reported: load, seen: mix, at: Double(second))
            total.add(mix.subnet, viaResolver: false)
            total.add(mix.resolver, viaResolver: true)
            reported += load
        }
        let ratio = try! #require(fit.ratio)
        #expect(abs(ratio - 16000.0 / 1500) < 1e-6)
        let estimate = fit.estimate(reported: reported, total: total, fallback: 0.05)
        #expect(abs(estimate.subnet - 1500) < 1e-6 && abs(estimate.resolver - 16000) < 1e-6)
        #expect(abs(estimate.subnet * total.subnet + estimate.resolver * total.resolver - reported) < 1e-6)
    }

    /// Every site with the same mix says nothing of the split: one figure for both, the
    /// reported load over all query rates. The same with only one kind of binding.
    @Test func anUndeterminedFitGivesOneFigure() {
        var fit = RequestsPerQuery.Fit()
        for second in 0..<10 {
            let scale = Double(second + 1)
            fit.add(reported: 1000 * scale, seen: .init(subnet: 0.3 * scale, resolver: 0.1 * scale), at: Double(second))
        }
        #expect(fit.ratio == nil)
        let single = fit.estimate(reported: 600, total: .init(subnet: 0.4, resolver: 0.2), fallback: 0.05)
        #expect(abs(single.subnet - 1000) < 1e-9 && single.subnet == single.resolver)

        var known = RequestsPerQuery.Fit()
        known.add(reported: 100, seen: .init(subnet: 1, resolver: 0), at: 0)
        known.add(reported: 100, seen: .init(subnet: 0, resolver: 0.1), at: 0)
        #expect(known.ratio != nil)
        let subnetsOnly = known.estimate(reported: 300, total: .init(subnet: 3, resolver: 0), fallback: 0.05)
        #expect(subnetsOnly.subnet == 100 && subnetsOnly.resolver == 100)
        #expect(known.estimate(reported: 0, total: .init(subnet: 3), fallback: 0.05) == RequestsPerQuery(subnet: 0.05, resolver: 0.05))
    }

    /// Old reports fade: after the mix of the world changes, the fit follows the new one.
    @Test func theFitFollowsAChange() {
        var fit = RequestsPerQuery.Fit(halfLife: 60)
        let mixes: [RequestsPerQuery.Rates] = [.init(subnet: 0.2, resolver: 0.01), .init(subnet: 0.05, resolver: 0.03)]
        for second in 0..<600 {
            let perResolver = second < 300 ? 5000.0 : 20000.0
            for mix in mixes { fit.add(reported: 1000 * mix.subnet + perResolver * mix.resolver, seen: mix, at: Double(second)) }
        }
        #expect(abs(fit.ratio! - 20) < 1, "\(fit.ratio!)")   // five half-lives on, the old mix weighs 3 %
    }

    /// A decision records whether its binding stands for a resolver's users (no ECS: the
    /// query's own source address) or for a client subnet.
    @Test func bindingsKnowWhomTheyStandFor() {
        let snapshot = Sticky.snapshot()
        let resolver = Client(address: IPAddress("198.51.100.53")!)
        let subnet = Client(address: IPAddress("198.51.100.0")!, prefixLength: 24)
        #expect(resolver.isSourceAddress && !subnet.isSourceAddress)
        let table = AffinityTable()
        #expect(table.decide(service: Sticky.service, client: resolver, snapshot: snapshot, now: 10).binding?.viaResolver == true)
        #expect(table.decide(service: Sticky.service, client: subnet, snapshot: snapshot, now: 20).binding?.viaResolver == false)
        let v6 = Client(address: IPAddress("2001:db8::53")!)
        #expect(table.decide(service: Sticky.service, client: v6, snapshot: snapshot, now: 10).binding?.viaResolver == true)
    }

    /// The directed load of a moved resolver is counted at the resolvers' figure, not the
    /// subnets': two sites whose reports tell the two apart, then one resolver and one subnet
    /// placed after the reports.
    @Test func aMovedResolverCountsForItsUsers() {
        let snapshot = SteeringSnapshot(sites: Sticky.sites, services: [Sticky.service],
                                        loads: [Sticky.load(0.2, at: 100), Sticky.load(0.4, at: 100), .unknown])
        let table = AffinityTable()
        func bind(_ third: UInt32, to site: String, at time: Double, viaResolver: Bool) {
            let key = IPPrefix(address: .v4(third << 8), length: 24)!
            table.restore([(AffinityTable.Key(service: "s.", prefix: key),
                            Binding(site: site, boundAt: time, lastSeen: time, queries: 15, viaResolver: viaResolver))])
        }
        // Site a: 4 subnets and no resolver for 200 requests/s; b: 2 subnets and 1 resolver
        // for 400. Each binding asks 15 times in 300 s (0.05/s): 1 000 requests per subnet
        // query, 6 000 per resolver query.
        for third: UInt32 in 1...4 { bind(third, to: "a", at: 50, viaResolver: false) }
        for third: UInt32 in 5...6 { bind(third, to: "b", at: 50, viaResolver: false) }
        bind(7, to: "b", at: 50, viaResolver: true)
        _ = table.directedLoad(snapshot: snapshot, now: 350)
        let perQuery = try! #require(table.requestsPerQuery)
        #expect(abs(perQuery.subnet - 1000) < 1e-6 && abs(perQuery.resolver - 6000) < 1e-6)
        // Now a resolver and a subnet arrive at c after every report: c is to expect 6 000 and
        // 1 000 requests per query of theirs.
        bind(8, to: "c", at: 340, viaResolver: true)
        bind(9, to: "c", at: 340, viaResolver: false)
        let load = table.directedLoad(snapshot: snapshot, now: 350)
        let rate = 15.0 / 20   // 15 queries in max(10 s, the TTL of 20 s)
        let expected = rate * (table.requestsPerQuery!.resolver + table.requestsPerQuery!.subnet)
        #expect(abs(load[2] - expected) < 1e-6, "\(load[2]) vs \(expected)")
        #expect(table.requestsPerQuery!.resolver > 4 * table.requestsPerQuery!.subnet)
    }
}
