import Metrics
import Scoring
import Synchronization

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
    /// Answers per service index, per index of one of its sites (only a service's own sites:
    /// with 10 000 sites and 1 000 services, every pair would be ten million series). Kept
    /// here and rendered by the exporter (`answerSeries`), not registered with swift-metrics,
    /// whose Prometheus registry copies a metric family per series added: tens of thousands
    /// of series took it minutes.
    private let answers: [[Int: AnswerCount]]
    /// The same counts as (service, site ID, count), in configuration order.
    private let series: [(service: String, site: String, count: AnswerCount)]

    final class AnswerCount: Sendable {
        let value = Atomic<Int>(0)
    }
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

    /// `previous`: the metrics of the state this one replaces; answer counts of the same
    /// (service, site) carry over, as a counter must.
    public init(steering: SteeringSnapshot = SteeringSnapshot(sites: [], services: []), previous: DNSMetrics? = nil) {
        queries = [Transport.udp, .tcp].map { transport in
            (Self.labelled.map(\.description) + ["other"]).map { rcode in
                Counter(label: "resolverd_dns_queries_total", dimensions: [("transport", transport.rawValue), ("rcode", rcode)])
            }
        }
        ecsQueries = Counter(label: "resolverd_dns_ecs_queries_total")
        compiledAnswers = Counter(label: "resolverd_dns_compiled_answers_total")
        dropped = Counter(label: "resolverd_dns_dropped_total")
        struct Pair: Hashable { var service: String; var site: String }
        var old: [Pair: AnswerCount] = [:]
        for item in previous?.series ?? [] { old[Pair(service: item.service, site: item.site)] = item.count }
        var series: [(service: String, site: String, count: AnswerCount)] = []
        answers = steering.services.map { service in
            var counters: [Int: AnswerCount] = [:]
            for site in service.sites where counters[site] == nil {
                let id = steering.sites[site].id
                let count = old[Pair(service: service.name, site: id)] ?? AnswerCount()
                counters[site] = count
                series.append((service.name, id, count))
            }
            return counters
        }
        self.series = series
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

    /// `count` bindings kept without a decision (the decision memo's reuses, in a batch).
    func bindingsKept(_ count: Int) { bindingsKept.increment(by: Int64(count)) }

    func binding(_ event: BindingEvent) {
        switch event {
        case .kept: bindingsKept.increment()
        case .created: bindingsCreated.increment()
        case .expired: bindingsExpired.increment()
        case .moved(let reason): bindingsMoved[reason]?.increment()
        }
    }

    /// Metrics for a new configuration: same DNS counters, answer counters for its services.
    public func with(steering: SteeringSnapshot) -> DNSMetrics { DNSMetrics(steering: steering, previous: self) }

    /// `resolverd_answers_total{service,site}`: every (service, site) and its answers so far.
    public func answerSeries() -> [(service: String, site: String, count: Int)] {
        series.map { ($0.service, $0.site, $0.count.value.load(ordering: .relaxed)) }
    }

    /// The counter slot of `rcode` (`labelled`, then "other"): what `PendingCounts` counts by.
    static func slot(of rcode: ResponseCode) -> Int { labelled.firstIndex(of: rcode) ?? labelled.count }
    /// Counter slots per transport.
    static let slotCount = labelled.count + 1

    /// `count` queries of `transport` whose RCODE has counter slot `slot`.
    func queries(transport: Transport, slot: Int, count: Int) {
        queries[transport == .udp ? 0 : 1][slot].increment(by: Int64(count))
    }

    /// `ecs` queries with ECS and `compiled` answers from compiled answers.
    func queries(ecs: Int, compiled: Int) {
        if ecs > 0 { ecsQueries.increment(by: Int64(ecs)) }
        if compiled > 0 { compiledAnswers.increment(by: Int64(compiled)) }
    }

    func drop() { dropped.increment() }

    func answered(service: Int, site: Int, count: Int = 1) {
        guard service < answers.count else { return }
        answers[service][site]?.value.wrappingAdd(count, ordering: .relaxed)
    }

    func decision(nanoseconds: Int64) { decisionTime.recordNanoseconds(nanoseconds) }
}
