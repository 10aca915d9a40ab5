import Foundation
import Scoring

/// Why a report was refused; the text goes back to the sender in a 400.
struct ReportError: Error, Equatable {
    var reason: String
    init(_ reason: String) { self.reason = reason }
}

/// A validated load report, applied whole or not at all.
struct LoadReport: Equatable {
    var utilization: Double
    var capacity: Double?
    var serviceMs: Double?
    var queue: Int?
    var healthy: Bool
    /// A CATS level-0 report's measured compute delay, under its load: the service time is
    /// derived from it once the site's capacity is known (`siteLoad`).
    var computeDelayMs: Double?

    static let maxUtilization = 10.0

    /// SPEC.md's body form (what `resolverd report` sends); `parse` reads it back unchanged.
    var json: [UInt8] {
        var fields = ["\"utilization\":\(utilization)"]
        if let capacity { fields.append("\"capacity\":\(capacity)") }
        if let serviceMs { fields.append("\"service_ms\":\(serviceMs)") }
        if let queue { fields.append("\"queue\":\(queue)") }
        fields.append("\"healthy\":\(healthy)")
        return Array("{\(fields.joined(separator: ","))}".utf8)
    }

    /// Parses SPEC.md's form (`utilization`, `capacity`, `service_ms`, `queue`, `healthy`) or
    /// a CATS metric level (draft-ietf-cats-metric-definition), selected by `level`:
    ///
    /// - `level: 0` (raw metrics): `cpu_utilization` (0–10) → utilisation; `compute_delay_ms`
    ///   — the delay measured now, under load — → the service time for which the queueing
    ///   model gives the measured delay back at the current load (`Queueing.serviceTime`).
    /// - `level: 1` (normalised per category, 0 = idle … 1 = saturated): `compute` →
    ///   utilisation; `network` is accepted and ignored (resolverd measures the network itself).
    /// - `level: 2` (one normalised value, 0 … 1): `score` → utilisation.
    ///
    /// `capacity`, `queue` and `healthy` may accompany any form.
    static func parse(_ body: [UInt8]) throws(ReportError) -> LoadReport {
        try parse(JSONValue.parse(body))
    }

    /// The reports of `PUT /v1/loads`: one JSON object whose names are site IDs and whose
    /// values are each a body `parse` accepts, e.g. `{"fra1": {"utilization": 0.4}, "ams1":
    /// {"level": 2, "score": 0.7}}`. One bad report refuses the whole body; its reason names
    /// the site. In the order of the site IDs.
    static func parseBatch(_ body: [UInt8]) throws(ReportError) -> [(site: String, report: LoadReport)] {
        guard case .object(let reports) = try JSONValue.parse(body) else {
            throw ReportError("body must be a JSON object of site IDs to reports")
        }
        guard !reports.isEmpty else { throw ReportError("no reports") }
        var parsed: [(site: String, report: LoadReport)] = []
        parsed.reserveCapacity(reports.count)
        for site in reports.keys.sorted() {
            do throws(ReportError) {
                parsed.append((site, try parse(reports[site]!)))
            } catch {
                throw ReportError("\(site): \(error.reason)")
            }
        }
        return parsed
    }

    /// The fields a report may have: without `level`, then at levels 0, 1 and 2.
    private static let allowedFields: [Set<String>] = {
        let common: Set<String> = ["capacity", "queue", "healthy"]
        return [common.union(["utilization", "service_ms"]), common.union(["level", "cpu_utilization", "compute_delay_ms"]),
                common.union(["level", "compute", "network"]), common.union(["level", "score"])]
    }()

    /// `parse` for a body already read as JSON.
    static func parse(_ value: JSONValue) throws(ReportError) -> LoadReport {
        guard case .object(let fields) = value else { throw ReportError("body must be a JSON object") }
        let level: Int?
        switch fields["level"] {
        case nil: level = nil
        case .number(let value) where [0, 1, 2].contains(value): level = Int(value)
        default: throw ReportError("level must be 0, 1 or 2 (CATS metric levels)")
        }
        let allowed = Self.allowedFields[level.map { $0 + 1 } ?? 0]
        // The first unknown name in sorted order, so the reason does not depend on hashing;
        // sorting only when there is one (this runs for every report).
        if fields.keys.contains(where: { !allowed.contains($0) }),
           let unknown = fields.keys.filter({ !allowed.contains($0) }).min() {
            throw ReportError("unknown field \"\(unknown)\"")
        }

        func number(_ key: String, range: ClosedRange<Double>) throws(ReportError) -> Double? {
            guard let value = fields[key] else { return nil }
            guard case .number(let number) = value else { throw ReportError("\(key) must be a number") }
            guard number.isFinite else { throw ReportError("\(key) must be finite") }
            guard range.contains(number) else {
                throw ReportError("\(key) must be between \(range.lowerBound) and \(range.upperBound)")
            }
            return number
        }

        var report = LoadReport(utilization: 0, healthy: true)
        switch level {
        case nil:
            guard let utilization = try number("utilization", range: 0...maxUtilization) else {
                throw ReportError("utilization is required")
            }
            report.utilization = utilization
            report.serviceMs = try number("service_ms", range: 0...600_000)
        case 0:
            guard let utilization = try number("cpu_utilization", range: 0...maxUtilization) else {
                throw ReportError("cpu_utilization is required at level 0")
            }
            report.utilization = utilization
            report.computeDelayMs = try number("compute_delay_ms", range: 0...600_000)
        case 1:
            guard let compute = try number("compute", range: 0...1) else { throw ReportError("compute is required at level 1") }
            _ = try number("network", range: 0...1)
            report.utilization = compute
        default:
            guard let score = try number("score", range: 0...1) else { throw ReportError("score is required at level 2") }
            report.utilization = score
        }
        report.capacity = try number("capacity", range: 0.001...1e9)
        if let queue = try number("queue", range: 0...1e9) {
            guard queue == queue.rounded() else { throw ReportError("queue must be a whole number") }
            report.queue = Int(queue)
        }
        switch fields["healthy"] {
        case nil: break
        case .bool(let healthy): report.healthy = healthy
        default: throw ReportError("healthy must be true or false")
        }
        return report
    }

    /// The report as the steering state keeps it; `configuredCapacity` is the site's, for a
    /// report that does not give its own.
    func siteLoad(at now: Double, configuredCapacity: Double) -> SiteLoad {
        let serviceMs = computeDelayMs.map {
            Queueing.serviceTime(delayMs: $0, utilization: utilization, capacity: capacity ?? configuredCapacity)
        } ?? self.serviceMs
        return SiteLoad(utilization: utilization, capacity: capacity, serviceMs: serviceMs, queue: queue,
                        healthy: healthy, reportedAt: now)
    }
}

/// One validated latency measurement from `PUT /v1/latency`.
struct LatencyReport: Equatable {
    var prefix: IPPrefix
    var site: Int
    var rtt: Double

    /// Parses `[{"prefix": "203.0.113.0/24", "site": "fra1", "rtt_ms": 12.5}, …]`; one bad
    /// entry refuses the whole body.
    static func parse(_ body: [UInt8], siteIndex: (String) -> Int?) throws(ReportError) -> [LatencyReport] {
        guard case .array(let items) = try JSONValue.parse(body) else { throw ReportError("body must be a JSON array") }
        guard items.count <= 10_000 else { throw ReportError("at most 10000 measurements per request") }
        var reports: [LatencyReport] = []
        for (index, item) in items.enumerated() {
            guard case .object(let fields) = item else { throw ReportError("[\(index)]: must be an object") }
            if let unknown = fields.keys.sorted().first(where: { !["prefix", "site", "rtt_ms"].contains($0) }) {
                throw ReportError("[\(index)]: unknown field \"\(unknown)\"")
            }
            guard case .string(let prefixText)? = fields["prefix"], let prefix = IPPrefix(prefixText) else {
                throw ReportError("[\(index)].prefix: expected a prefix such as 203.0.113.0/24")
            }
            guard case .string(let siteName)? = fields["site"], let site = siteIndex(siteName) else {
                throw ReportError("[\(index)].site: unknown site")
            }
            guard case .number(let rtt)? = fields["rtt_ms"], rtt.isFinite, rtt >= 0, rtt < 100_000 else {
                throw ReportError("[\(index)].rtt_ms: expected a finite number of milliseconds ≥ 0")
            }
            reports.append(LatencyReport(prefix: prefix, site: site, rtt: rtt))
        }
        return reports
    }
}
