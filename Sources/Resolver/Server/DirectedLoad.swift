import Scoring

public enum DirectedLoad {
    /// The load this server has sent to each site that the site's last report cannot include:
    /// answers still cached (given within the last TTL) and given after that report, times
    /// the expected request rate per answer.
    /// - Parameter excludingSticky: leave out answers of services with affinity (their load is
    ///   counted from their bindings instead; see `AffinityTable.directedLoad`).
    public static func estimate(snapshot: SteeringSnapshot, ledger: AnswerLedger, now: Double,
                                excludingSticky: Bool = false) -> [Double] {
        var ttl = Array(repeating: 0.0, count: snapshot.sites.count)
        for service in snapshot.services where !(excludingSticky && service.isSticky) {
            for site in service.sites { ttl[site] = max(ttl[site], Double(service.ttl)) }
        }
        return snapshot.sites.indices.map { site in
            guard ttl[site] > 0 else { return 0 }
            let since = max(now - ttl[site], snapshot.loads[site].reportedAt ?? -Double.infinity)
            return Double(ledger.answers(site: site, since: since, now: now)) * snapshot.parameters.loadPerAnswer
        }
    }
}
