import Resolver
import Scoring
import Testing

/// The anti-herding ledger keeps as many seconds as its readers ask for, and counts them right.
@Suite struct AnswerLedgerTests {
    static func steering(ttls: [UInt32]) -> SteeringSnapshot {
        let sites = [Site(id: "a", addresses: [.v4(1)], capacity: 100), Site(id: "b", addresses: [.v4(2)], capacity: 100)]
        return SteeringSnapshot(sites: sites, services: ttls.enumerated().map { Service(name: "s\($0.offset).", sites: [0, 1], ttl: $0.element) })
    }

    @Test func keepsTheLongestTTLOrAMinute() {
        #expect(AnswerLedger.neededWindow(for: Self.steering(ttls: [20])) == 61)
        #expect(AnswerLedger.neededWindow(for: Self.steering(ttls: [20, 300])) == 301)
        #expect(AnswerLedger.neededWindow(for: Self.steering(ttls: [])) == 61)
        #expect(ServingState(catalog: .empty, steering: Self.steering(ttls: [120])).ledger.window == 121)
    }

    @Test func countsWithinTheWindowOnly() {
        let ledger = AnswerLedger(siteCount: 2, window: 61)
        for second in 0..<100 {
            for _ in 0..<3 { ledger.record(site: 1, now: 1_000 + Double(second) + 0.5) }
        }
        #expect(ledger.answers(site: 1, since: 1_089, now: 1_099.5) == 30, "the last ten seconds")
        #expect(ledger.answers(site: 1, since: 1_039, now: 1_099.5) == 180, "a minute")
        #expect(ledger.answers(site: 1, since: 0, now: 1_099.5) == 183, "no further back than the window")
        #expect(ledger.answers(site: 0, since: 0, now: 1_099.5) == 0)
    }
}
