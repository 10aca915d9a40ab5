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
    /// Answers given from compiled answers (the fast path) rather than built per query.
    private let compiledAnswers: Counter
    private let dropped: Counter
    /// Indexed by [service][site].
    private let answers: [[Counter]]
    private let decisionTime: Metrics.Timer
    private let bindingsCreated: Counter
    private let bindingsKept: Counter
    private let bindingsExpired: Counter
    /// Answer changes for a bound prefix (churn), by reason.
    private let bindingsMoved: [MoveReason: Counter]
    /// Responses held back by rate limiting, [slipped, dropped][response class].
    private let rateLimited: [[Counter]]
    /// Queries with a COOKIE option, [client cookie only, valid server cookie].
    private let cookies: [Counter]

    public init(steering: SteeringSnapshot = SteeringSnapshot(sites: [], services: [])) {
        queries = [Transport.udp, .tcp].map { transport in
            (Self.labelled.map(\.description) + ["other"]).map { rcode in
                Counter(label: "resolverd_dns_queries_total", dimensions: [("transport", transport.rawValue), ("rcode", rcode)])
            }
        }
        ecsQueries = Counter(label: "resolverd_dns_ecs_queries_total")
        compiledAnswers = Counter(label: "resolverd_dns_compiled_answers_total")
        dropped = Counter(label: "resolverd_dns_dropped_total")
        answers = steering.services.map { service in
            steering.sites.indices.map { site in
                Counter(label: "resolverd_answers_total",
                        dimensions: [("service", service.name), ("site", steering.sites[site].id)])
            }
        }
        decisionTime = Metrics.Timer(label: "resolverd_decision_seconds")
        bindingsCreated = Counter(label: "resolverd_bindings_created_total")
        bindingsKept = Counter(label: "resolverd_bindings_kept_total")
        bindingsExpired = Counter(label: "resolverd_bindings_expired_total")
        var moved: [MoveReason: Counter] = [:]
        for reason in MoveReason.allCases {
            moved[reason] = Counter(label: "resolverd_bindings_moved_total", dimensions: [("reason", reason.rawValue)])
        }
        bindingsMoved = moved
        rateLimited = ["slipped", "dropped"].map { action in
            ResponseClass.allCases.map { kind in
                Counter(label: "resolverd_rrl_responses_total", dimensions: [("action", action), ("class", kind.label)])
            }
        }
        cookies = ["client-only", "valid"].map { Counter(label: "resolverd_dns_cookies_total", dimensions: [("verdict", $0)]) }
    }

    func rateLimited(_ action: RateLimitAction, kind: ResponseClass) {
        switch action {
        case .send: return
        case .slip: rateLimited[0][Int(kind.rawValue)].increment()
        case .drop: rateLimited[1][Int(kind.rawValue)].increment()
        }
    }

    func cookie(_ verdict: CookieVerdict) {
        switch verdict {
        case .absent: return
        case .clientOnly: cookies[0].increment()
        case .valid: cookies[1].increment()
        }
    }

    func binding(_ event: BindingEvent) {
        switch event {
        case .kept: bindingsKept.increment()
        case .created: bindingsCreated.increment()
        case .expired: bindingsExpired.increment()
        case .moved(let reason): bindingsMoved[reason]?.increment()
        }
    }

    /// Metrics for a new configuration: same DNS counters, answer counters for its services.
    public func with(steering: SteeringSnapshot) -> DNSMetrics { DNSMetrics(steering: steering) }

    func query(transport: Transport, rcode: ResponseCode, ecs: Bool) {
        let slot = Self.labelled.firstIndex(of: rcode) ?? Self.labelled.count
        queries[transport == .udp ? 0 : 1][slot].increment()
        if ecs { ecsQueries.increment() }
    }

    func drop() { dropped.increment() }

    func compiled() { compiledAnswers.increment() }

    func answered(service: Int, site: Int) {
        guard service < answers.count, site < answers[service].count else { return }
        answers[service][site].increment()
    }

    func decision(nanoseconds: Int64) { decisionTime.recordNanoseconds(nanoseconds) }
}
