import Scoring
import Testing
@testable import Simulation

/// A small world: three sites, two regions, the largest site failing and recovering.
enum Small {
    static func scenario(seed: UInt64 = 42) -> Scenario {
        var scenario = Scenario(name: "small")
        scenario.seed = seed
        scenario.duration = 300
        scenario.warmup = 60
        scenario.utilization = 0.6
        scenario.sites = [
            SiteSpec(id: "near", location: GeoPoint(latitude: 48.1, longitude: 11.6)!, servers: 4, serviceMs: 50),
            SiteSpec(id: "mid", location: GeoPoint(latitude: 48.8, longitude: 9.2)!, servers: 4, serviceMs: 50),
            SiteSpec(id: "big", location: GeoPoint(latitude: 50.1, longitude: 8.7)!, servers: 8, serviceMs: 50),
        ]
        var east = RegionSpec(name: "east", location: GeoPoint(latitude: 48.1, longitude: 11.6)!, prefixes: 40)
        east.weight = 0.7
        east.resolvers = 10
        var west = RegionSpec(name: "west", location: GeoPoint(latitude: 50.1, longitude: 8.7)!, prefixes: 20)
        west.weight = 0.3
        west.resolvers = 5
        scenario.regions = [east, west]
        scenario.events = [Event(at: 150, kind: .fail(site: "big")), Event(at: 250, kind: .recover(site: "big"))]
        return scenario
    }
}

@Suite struct SimulatorTests {
    static let results = Simulator.runAll(Small.scenario())

    @Test func everyRequestIsServedOrDropped() {
        for result in Self.results {
            #expect(result.sent > 10_000, "\(result.policy)")
            #expect(result.sent == result.served + result.dropped, "\(result.policy)")
            #expect(result.measured <= result.sent && result.measuredDropped <= result.dropped)
        }
    }

    @Test func everyPolicySeesTheSameArrivals() {
        #expect(Set(Self.results.map(\.sent)).count == 1)
    }

    @Test func theOracleIsNeverWorse() throws {
        let oracle = try #require(Self.results.first { $0.policy == .oracle })
        for result in Self.results where result.policy != .oracle {
            #expect(oracle.mean <= result.mean, "\(result.policy): \(result.mean) < oracle \(oracle.mean)")
            #expect(oracle.p95 <= result.p95 * 1.02, "\(result.policy): p95 \(result.p95) < oracle \(oracle.p95)")
        }
    }

    @Test func sameSeedSameRunOtherSeedOtherRun() {
        let again = Simulator.run(Small.scenario(), policy: .resolverd)
        let first = Self.results.first { $0.policy == .resolverd }!
        #expect(again.sent == first.sent && again.mean == first.mean && again.p99 == first.p99)
        #expect(again.series.map(\.mean) == first.series.map(\.mean))
        let other = Simulator.run(Small.scenario(seed: 43), policy: .resolverd)
        #expect(other.sent != first.sent)
    }

    /// The failed site is left within the detection delay plus one TTL (plus report and
    /// stretching resolvers' slack), and nearest steering never leaves it before the check.
    @Test func clientsLeaveAFailedSite() throws {
        let product = try #require(Self.results.first { $0.policy == .resolverd })
        let evacuation = try #require(product.evacuation.first ?? nil)
        #expect(evacuation <= 10 + 20 + 5)
        #expect(product.overloadedOutsideShare < product.overloadedShare || product.overloadedShare == 0)
    }
}

@Suite struct SiteQueueTests {
    /// Kiefer–Wolfowitz by hand: one server, service 1 s.
    @Test func firstComeFirstServedWithBoundedWait() {
        var queue = SiteQueue(servers: 1, maxWait: 1.5)
        #expect(queue.arrive(at: 0, service: 1) == 0)
        #expect(queue.arrive(at: 0.5, service: 1) == 0.5)   // waits for the first
        #expect(abs(queue.arrive(at: 0.6, service: 1)! - 1.4) < 1e-9)  // free at 2
        #expect(queue.arrive(at: 0.7, service: 1) == nil)   // free at 3: 2.3 s > 1.5 s, rejected
        #expect(abs(queue.wait(at: 0.7) - 2.3) < 1e-9)      // and the rejection took no server
    }

    @Test func serversWorkInParallel() {
        var queue = SiteQueue(servers: 2, maxWait: 10)
        #expect(queue.arrive(at: 0, service: 4) == 0)
        #expect(queue.arrive(at: 0, service: 2) == 0)
        #expect(queue.arrive(at: 1, service: 1) == 1)       // the 2 s one frees first
        #expect(queue.wait(at: 1) == 2)                      // next free at 3 (both busy till 3 and 4)
        queue.setUp(false, at: 1)
        #expect(queue.arrive(at: 1, service: 1) == nil && queue.servers == 0)
    }
}

@Suite struct HistogramTests {
    @Test func quantilesWithinTwoPercent() {
        var histogram = Histogram()
        for value in 1...10_000 { histogram.add(Double(value)) }
        #expect(abs(histogram.quantile(0.5) - 5000) / 5000 < 0.02)
        #expect(abs(histogram.quantile(0.99) - 9900) / 9900 < 0.02)
        #expect(abs(histogram.mean - 5000.5) < 1e-9)
    }
}
