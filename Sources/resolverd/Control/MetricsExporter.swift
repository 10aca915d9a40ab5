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

    func render(state: ServingState, checks: HealthCheckStatus) -> String {
        let steering = state.steering
        let now = SteeringClock.now()
        for (index, site) in steering.sites.enumerated() {
            let labels = [("site", site.id)]
            let load = steering.loads[index]
            registry.makeGauge(name: "resolverd_site_utilization", labels: labels)
                .set(load.reportedAt == nil ? steering.parameters.unknownUtilization : load.utilization)
            registry.makeGauge(name: "resolverd_site_directed_rps", labels: labels).set(steering.directed[index])
            registry.makeGauge(name: "resolverd_site_healthy", labels: labels)
                .set(load.healthy && steering.checksPassing[index] ? 1.0 : 0.0)
            registry.makeGauge(name: "resolverd_site_report_age_seconds", labels: labels)
                .set(load.reportedAt.map { now - $0 } ?? -1)
            if checks.configured(site.id) {
                registry.makeGauge(name: "resolverd_site_check_passing", labels: labels)
                    .set(steering.checksPassing[index] ? 1.0 : 0.0)
            }
        }
        registry.makeGauge(name: "resolverd_zones", labels: []).set(Double(state.catalog.zones.count))
        registry.makeGauge(name: "resolverd_bindings", labels: []).set(Double(state.affinity.count))
        // Cumulative, read from the table at scrape time.
        registry.makeGauge(name: "resolverd_bindings_evicted", labels: []).set(Double(state.affinity.counts.evicted))
        var text = registry.emitToString()
        // Answers per (service, site) are counted outside the registry (DNSMetrics): one
        // family appended in the text format (Prometheus exposition format 0.0.4).
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
