import Foundation
@testable import Scoring
import Testing

/// The shares of recent new bindings (anti-herding's "where did the last placements go"):
/// each new binding counts 1, halved every `halfLife` seconds, and a share is a site's part
/// of the sum — checked against that definition computed by hand, over a long stretch of
/// time (the table rebases its units every 256 half-lives).
@Suite struct NewBindingShareTests {
    @Test func sharesFollowTheDecayedCounts() {
        let table = AffinityTable()
        let sites = Sticky.sites
        var made: [(site: Int, at: Double)] = []
        var now = 1_000_000.0
        #expect(table.newBindingShare(of: [0, 1, 2], in: sites, now: now).isEmpty, "no bindings yet")
        // Bindings at irregular times, far past a rebase (256 × 60 s ≈ 4.3 h).
        for step in 0..<400 {
            now += step % 7 == 0 ? 97 : 13.5
            let site = [0, 0, 1, 2, 0, 1][step % 6]
            let client = Client(address: .v4(UInt32(step) << 8), prefixLength: 24)
            let decision = Decision(sites: [site], ttl: 20, scope: 24, candidates: [], allDown: false)
            let binding = Binding(site: sites[site].id, boundAt: now, lastSeen: now)
            table.record(Affinity.Outcome(decision: decision, binding: binding, event: .created, key: Affinity.keyPrefix(for: client)),
                         service: "s.", now: now)
            made.append((site, now))
            if step % 50 == 49 {
                let shares = table.newBindingShare(of: [0, 1, 2], in: sites, now: now + 5)
                var weights = [0.0, 0.0, 0.0]
                for (site, at) in made { weights[site] += pow(0.5, (now + 5 - at) / AffinityTable.halfLife) }
                let total = weights.reduce(0, +)
                for site in 0..<3 {
                    #expect(abs(shares[site]! - weights[site] / total) < 1e-9, "site \(site) after \(step + 1) bindings")
                }
            }
        }
        #expect(table.counts.created == 400)
    }
}
