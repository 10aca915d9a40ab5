import Metrics
import Scoring

/// Query-path metrics through swift-metrics (exported as Prometheus by the daemon). Every
/// counter is created once, so counting a query is an atomic add, not a registry lookup.
public final class DNSMetrics: Sendable {
    /// Indexed by [transport][slot of the rcode in `labelled`].
    private let queries: [[Counter]]
    /// RCODEs with a label of their own; the rest count as "other".
    private static let labelled: [ResponseCode] = [.noError, .formErr, .servFail, .nxDomain, .notImp, .refused, .badVers, .badCookie]
    private let ecsQueries: Counter
    private let dropped: Counter
    /// Indexed by [service][site].
    private let answers: [[Counter]]
    private let decisionTime: Metrics.Timer

    public init(steering: SteeringSnapshot = SteeringSnapshot(sites: [], services: [])) {
        queries = [Transport.udp, .tcp].map { transport in
            (Self.labelled.map(\.description) + ["other"]).map { rcode in
                Counter(label: "resolverd_dns_queries_total", dimensions: [("transport", transport.rawValue), ("rcode", rcode)])
            }
        }
        ecsQueries = Counter(label: "resolverd_dns_ecs_queries_total")
        dropped = Counter(label: "resolverd_dns_dropped_total")
        answers = steering.services.map { service in
            steering.sites.indices.map { site in
                Counter(label: "resolverd_answers_total",
                        dimensions: [("service", service.name), ("site", steering.sites[site].id)])
            }
        }
        decisionTime = Metrics.Timer(label: "resolverd_decision_seconds")
    }

    /// Metrics for a new configuration: same DNS counters, answer counters for its services.
    public func with(steering: SteeringSnapshot) -> DNSMetrics { DNSMetrics(steering: steering) }

    func query(transport: Transport, rcode: ResponseCode, ecs: Bool) {
        let slot = Self.labelled.firstIndex(of: rcode) ?? Self.labelled.count
        queries[transport == .udp ? 0 : 1][slot].increment()
        if ecs { ecsQueries.increment() }
    }

    func drop() { dropped.increment() }

    func answered(service: Int, site: Int) {
        guard service < answers.count, site < answers[service].count else { return }
        answers[service][site].increment()
    }

    func decision(nanoseconds: Int64) { decisionTime.recordNanoseconds(nanoseconds) }
}
