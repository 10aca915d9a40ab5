import Metrics
import Prometheus
import Resolver
import Scoring

/// `GET /metrics`: the query-path counters recorded through swift-metrics, plus gauges of
/// the steering state read from the current snapshot at scrape time.
final class MetricsExporter: Sendable {
    let registry: PrometheusCollectorRegistry

    init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
    }

    /// Routes swift-metrics into this registry. Call once per process.
    func bootstrap() {
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    }

    func rejected(status: Int) {
        registry.makeCounter(name: "resolverd_http_rejected_total", labels: [("status", "\(status)")]).increment()
    }

    /// The registry's families (swift-metrics), then the gauges of the serving state, written
    /// straight from the snapshot: gauges kept in the registry would stay there for sites a
    /// reload has removed, and cost a few hundred bytes per site for as long as the process
    /// runs (10 000 sites: 8 MB).
    func render(state: ServingState, checks: HealthCheckStatus) -> String {
        var text = registry.emitToString()
        let steering = state.steering
        let now = SteeringClock.now()
        let labels = steering.sites.map { "{site=\"\(Self.escape($0.id))\"}" }
        /// One gauge family in the text format (Prometheus exposition format 0.0.4).
        func family(_ name: String, _ sites: some Sequence<Int>, _ value: (Int) -> Double) {
            text += "# TYPE \(name) gauge\n"
            for index in sites { text += "\(name)\(labels[index]) \(value(index))\n" }
        }
        let sites = steering.sites.indices
        family("resolverd_site_utilization", sites) { index in
            let load = steering.loads[index]
            return load.reportedAt == nil ? steering.parameters.unknownUtilization : load.utilization
        }
        family("resolverd_site_directed_rps", sites) { steering.directed[$0] }
        family("resolverd_site_healthy", sites) { steering.loads[$0].healthy && steering.checksPassing[$0] ? 1 : 0 }
        family("resolverd_site_report_age_seconds", sites) { index in steering.loads[index].reportedAt.map { now - $0 } ?? -1 }
        let checked = sites.filter { checks.configured(steering.sites[$0].id) }
        if !checked.isEmpty { family("resolverd_site_check_passing", checked) { steering.checksPassing[$0] ? 1 : 0 } }
        for (name, value) in [("resolverd_zones", state.catalog.zones.count), ("resolverd_bindings", state.affinity.count),
                              // Cumulative, read from the table at scrape time.
                              ("resolverd_bindings_evicted", state.affinity.counts.evicted)] {
            text += "# TYPE \(name) gauge\n\(name) \(Double(value))\n"
        }
        // Answers per (service, site) are counted outside the registry too (DNSMetrics).
        let answers = state.metrics.answerSeries()
        if !answers.isEmpty {
            text += "# TYPE resolverd_answers_total counter\n"
            for item in answers {
                text += "resolverd_answers_total{service=\"\(Self.escape(item.service))\",site=\"\(Self.escape(item.site))\"} \(item.count)\n"
            }
        }
        return text
    }

    /// A label value in the text format: backslash, double quote and newline escaped.
    static func escape(_ value: String) -> String {
        var escaped = ""
        for character in value {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
