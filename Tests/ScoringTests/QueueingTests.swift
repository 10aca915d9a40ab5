import Foundation
import Scoring
import Testing

@Suite struct QueueingTests {
    /// The mean wait of M/M/c by Erlang C, computed the long way (the Erlang B recursion), as
    /// the reference for the approximation the selector uses.
    static func erlangCWait(servers c: Int, utilization rho: Double, serviceMs: Double) -> Double {
        let offered = Double(c) * rho
        var blocking = 1.0
        for k in 1...c { blocking = offered * blocking / (Double(k) + offered * blocking) }
        let waiting = Double(c) * blocking / (Double(c) - offered * (1 - blocking))
        return waiting * serviceMs / (Double(c) * (1 - rho))
    }

    static let servers = [1, 2, 3, 6, 8, 16, 48, 64, 200, 1000]
    static let utilizations = [0, 0.1, 0.3, 0.5, 0.7, 0.85, 0.9, 0.95, 0.99]

    /// Within 4 % of a service time of Erlang C, for small and large sites, idle to nearly
    /// full; and exactly the M/M/1 delay for one server.
    @Test(arguments: servers)
    func closeToErlangC(_ c: Int) {
        for rho in Self.utilizations {
            let model = Queueing.responseTime(serviceMs: 20, utilization: rho, servers: Double(c), cap: .infinity)
            let exact = 20 + Self.erlangCWait(servers: c, utilization: rho, serviceMs: 20)
            #expect(abs(model - exact) <= 0.04 * 20, "c=\(c) ρ=\(rho): \(model) vs \(exact)")
            if c == 1 { #expect(abs(model - 20 / (1 - rho)) < 1e-9 * model) }
        }
    }

    /// At one utilisation, more servers queue less: the reason the model has c at all.
    @Test func aBiggerSiteQueuesLessAtTheSameUtilization() {
        for rho in [0.5, 0.7, 0.85, 0.95] {
            let delays = Self.servers.map { Queueing.responseTime(serviceMs: 20, utilization: rho, servers: Double($0), cap: 1000) }
            #expect(zip(delays, delays.dropFirst()).allSatisfy { $0 >= $1 }, "ρ=\(rho): \(delays)")
            #expect(delays.first! > 1.9 * delays.last!)   // 1 server: S / (1 − ρ); 1 000: about S
        }
    }

    /// The chance that a site estimated at ρ with error σ is at capacity: Q((1 − ρ) / σ), a
    /// step where there is no error, and none at six errors and more.
    @Test func overloadProbabilityIsTheNormalTail() {
        let table: [(rho: Double, sigma: Double, chance: Double)] = [
            (0.9, 0.1, 0.158_655), (0.8, 0.1, 0.022_750), (1.0, 0.05, 0.5), (1.1, 0.1, 0.841_345),
            (0.7, 0.1, 0.001_350), (0.4, 0.1, 0), (0.95, 0, 0), (1.0, 0, 1),
        ]
        for (rho, sigma, chance) in table {
            let got = Queueing.overloadProbability(utilization: rho, standardError: sigma)
            #expect(abs(got - chance) < 1e-6, "ρ=\(rho) σ=\(sigma): \(got)")
        }
    }

    @Test func capsAndEdges() {
        #expect(Queueing.responseTime(serviceMs: 20, utilization: 1, servers: 8, cap: 1000) == 1000)
        #expect(Queueing.responseTime(serviceMs: 20, utilization: 3, servers: 8, cap: 1000) == 1000)
        #expect(Queueing.responseTime(serviceMs: 20, utilization: 0.999_999, servers: 1, cap: 1000) == 1000)
        #expect(Queueing.responseTime(serviceMs: 20, utilization: 0, servers: 8, cap: 1000) == 20)
        #expect(Queueing.responseTime(serviceMs: 20, utilization: -0.5, servers: 0, cap: 1000) == 20)
        // Little's law: 800 requests/s of 10 ms each keep 8 servers busy.
        #expect(Queueing.servers(capacity: 800, serviceMs: 10) == 8)
        #expect(Queueing.servers(capacity: 5, serviceMs: 10) == 1)
    }
}
