import Scoring
import Synchronization

/// Counts the answers given for each site, in one-second buckets, so that the load this
/// server is about to send to a site can be added to what the site last reported
/// (anti-herding: one report must not send every client to the same site).
public final class AnswerLedger: Sendable {
    /// Seconds of counts kept: as far back as anything asks (`neededWindow(for:)`).
    public let window: Int

    private struct Buckets {
        /// Per site, `window` one-second counts; empty until the site's first answer, so that
        /// ten thousand configured sites cost nothing until they are answered with.
        var counts: [[Int32]]
        var seconds: [Int]
    }

    private let buckets: Mutex<Buckets>
    public let siteCount: Int

    /// The seconds a ledger for `steering` must keep: the longest TTL of a service (the
    /// directed-load estimate counts answers still cached) and the minute the status page
    /// shows, and one more for the second in progress. Not more: at ten thousand sites each
    /// second kept costs 40 kB.
    public static func neededWindow(for steering: SteeringSnapshot) -> Int {
        max(60, Int(steering.services.map(\.ttl).max() ?? 0)) + 1
    }

    public init(siteCount: Int, window: Int = 601) {
        self.siteCount = siteCount
        self.window = max(window, 2)
        buckets = Mutex(Buckets(counts: Array(repeating: [], count: siteCount),
                                seconds: Array(repeating: -1, count: window)))
    }

    public func record(site: Int, now: Double) {
        record(second: Int(now), CollectionOfOne((site: site, answers: 1)))
    }

    /// Answers counted elsewhere (`PendingCounts`) in second `second`, under one lock.
    func record(second: Int, _ answers: some Sequence<(site: Int, answers: Int)>) {
        let slot = second % window
        buckets.withLock { state in
            if state.seconds[slot] != second {
                state.seconds[slot] = second
                for index in 0..<siteCount where !state.counts[index].isEmpty { state.counts[index][slot] = 0 }
            }
            for (site, count) in answers where site >= 0 && site < siteCount {
                if state.counts[site].isEmpty { state.counts[site] = Array(repeating: 0, count: window) }
                state.counts[site][slot] &+= Int32(truncatingIfNeeded: count)
            }
        }
    }

    /// Answers for `site` in seconds (since, now], at most `window` seconds back.
    public func answers(site: Int, since: Double, now: Double) -> Int {
        guard site >= 0 && site < siteCount else { return 0 }
        let from = max(Int(since) + 1, Int(now) - window + 1)
        let to = Int(now)
        guard from <= to else { return 0 }
        return buckets.withLock { state in
            var total = 0
            for second in from...to {
                let slot = second % window
                if state.seconds[slot] == second, !state.counts[site].isEmpty { total += Int(state.counts[site][slot]) }
            }
            return total
        }
    }
}
