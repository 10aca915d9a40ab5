import Scoring

public enum DirectedLoad {
    /// The load this server has sent to each site that the site's last report cannot include:
    /// answers still cached (given within the last TTL) and given after that report, times
    /// the expected request rate per answer.
    public static func estimate(snapshot: SteeringSnapshot, ledger: AnswerLedger, now: Double) -> [Double] {
        var ttl = Array(repeating: 0.0, count: snapshot.sites.count)
        for service in snapshot.services {
            for site in service.sites { ttl[site] = max(ttl[site], Double(service.ttl)) }
        }
        return snapshot.sites.indices.map { site in
            let since = max(now - ttl[site], snapshot.loads[site].reportedAt ?? -Double.infinity)
            return Double(ledger.answers(site: site, since: since, now: now)) * snapshot.parameters.loadPerAnswer
        }
    }
}
