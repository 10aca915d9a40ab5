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

/// The rendezvous hash of (prefix, site), computed from the prefix's part once per decision,
/// is what it has been (FNV-1a over the address bytes, the length and the site's name,
/// finalised): golden values from the definition, so the same clients go to the same sites
/// across versions.
@Test(arguments: [
    ("203.0.113.0/24", "fra1", 4_597_800_784_620_087_638 as UInt64),
    ("203.0.113.0/24", "e00042", 4_601_338_323_822_491_399),
    ("2001:db8:1::/48", "fra1", 4_600_334_776_348_417_471),
    ("2001:db8:1::/48", "e00042", 4_604_692_345_441_469_522),
])
func theRendezvousHashIsWhatItWas(_ prefix: String, _ site: String, _ bits: UInt64) {
    let key = IPPrefix(prefix)!
    #expect(Affinity.unitHash(key: key, site: site).bitPattern == bits)
    #expect(Affinity.unitHash(prefixHash: Affinity.prefixHash(key), site: site).bitPattern == bits)
}
