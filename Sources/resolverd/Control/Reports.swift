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
        try body.withUnsafeBytes { bytes in Result { () throws(ReportError) in try parse(bytes) } }.get()
    }

    /// `parse` of a body borrowed in place. A body of the usual flat form is read straight
    /// into its fields (`ReportFields(flat:)`), which allocates nothing; any other is read as
    /// JSON first. Both end in the same `validate`, so they accept and refuse alike.
    static func parse(_ body: UnsafeRawBufferPointer) throws(ReportError) -> LoadReport {
        if let fields = ReportFields(flat: body) { return try validate(fields, unknown: nil) }
        return try parse(JSONValue.parse(body))
    }

    /// The reports of `PUT /v1/loads`: one JSON object whose names are site IDs and whose
    /// values are each a body `parse` accepts, e.g. `{"fra1": {"utilization": 0.4}, "ams1":
    /// {"level": 2, "score": 0.7}}`. One bad report refuses the whole body; its reason names
    /// the site. In the order of the site IDs.
    ///
    /// A body whose reports are all flat is read straight into their fields
    /// (`ReportFields.flatBatch`); any other as JSON first. Both check alike.
    static func parseBatch(_ body: [UInt8]) throws(ReportError) -> [(site: String, report: LoadReport)] {
        if let flat = body.withUnsafeBytes({ ReportFields.flatBatch($0) }) {
            var bySite: [String: ReportFields] = [:]
            for (site, fields) in flat { bySite[site] = fields }   // a repeated site: the last counts
            return try validateBatch(bySite) { fields throws(ReportError) in try validate(fields, unknown: nil) }
        }
        return try parseBatch(JSONValue.parse(body))
    }

    /// `parseBatch` for a body already read as JSON.
    static func parseBatch(_ value: JSONValue) throws(ReportError) -> [(site: String, report: LoadReport)] {
        guard case .object(let reports) = value else {
            throw ReportError("body must be a JSON object of site IDs to reports")
        }
        return try validateBatch(reports) { report throws(ReportError) in try parse(report) }
    }

    /// Each site's report checked by `check`, in the order of the site IDs; the first refusal
    /// refuses all, its reason prefixed with its site.
    private static func validateBatch<Report>(_ reports: [String: Report],
                                              _ check: (Report) throws(ReportError) -> LoadReport)
        throws(ReportError) -> [(site: String, report: LoadReport)] {
        guard !reports.isEmpty else { throw ReportError("no reports") }
        var parsed: [(site: String, report: LoadReport)] = []
        parsed.reserveCapacity(reports.count)
        for site in reports.keys.sorted() {
            do throws(ReportError) {
                parsed.append((site, try check(reports[site]!)))
            } catch {
                throw ReportError("\(site): \(error.reason)")
            }
        }
        return parsed
    }

    /// `parse` for a body already read as JSON.
    static func parse(_ value: JSONValue) throws(ReportError) -> LoadReport {
        guard case .object(let object) = value else { throw ReportError("body must be a JSON object") }
        var fields = ReportFields()
        var unknown: String? = nil
        for (name, value) in object {
            guard let field = ReportFields.Name(name) else {
                unknown = min(unknown ?? name, name)
                continue
            }
            fields[field] = ReportFields.Value(value)
        }
        return try validate(fields, unknown: unknown)
    }

    /// The checks of every report, on its fields and the first of its names that no form has
    /// (sorted order, so the reason does not depend on hashing).
    static func validate(_ fields: ReportFields, unknown: String?) throws(ReportError) -> LoadReport {
        let level: Int?
        switch fields[.level] {
        case nil: level = nil
        case .number(let value) where value == 0 || value == 1 || value == 2: level = Int(value)
        default: throw ReportError("level must be 0, 1 or 2 (CATS metric levels)")
        }
        // A field of another form counts as unknown in this one.
        let allowed = ReportFields.allowed[level.map { $0 + 1 } ?? 0]
        var refused = unknown
        for field in ReportFields.Name.allCases where fields[field] != nil && allowed & field.bit == 0 {
            refused = min(refused ?? field.json, field.json)
        }
        if let refused { throw ReportError("unknown field \"\(refused)\"") }

        func number(_ field: ReportFields.Name, range: ClosedRange<Double>) throws(ReportError) -> Double? {
            guard let value = fields[field] else { return nil }
            guard case .number(let number) = value else { throw ReportError("\(field.json) must be a number") }
            guard number.isFinite else { throw ReportError("\(field.json) must be finite") }
            guard range.contains(number) else {
                throw ReportError("\(field.json) must be between \(range.lowerBound) and \(range.upperBound)")
            }
            return number
        }

        var report = LoadReport(utilization: 0, healthy: true)
        switch level {
        case nil:
            guard let utilization = try number(.utilization, range: 0...maxUtilization) else {
                throw ReportError("utilization is required")
            }
            report.utilization = utilization
            report.serviceMs = try number(.serviceMs, range: 0...600_000)
        case 0:
            guard let utilization = try number(.cpuUtilization, range: 0...maxUtilization) else {
                throw ReportError("cpu_utilization is required at level 0")
            }
            report.utilization = utilization
            report.computeDelayMs = try number(.computeDelayMs, range: 0...600_000)
        case 1:
            guard let compute = try number(.compute, range: 0...1) else { throw ReportError("compute is required at level 1") }
            _ = try number(.network, range: 0...1)
            report.utilization = compute
        default:
            guard let score = try number(.score, range: 0...1) else { throw ReportError("score is required at level 2") }
            report.utilization = score
        }
        report.capacity = try number(.capacity, range: 0.001...1e9)
        if let queue = try number(.queue, range: 0...1e9) {
            guard queue == queue.rounded() else { throw ReportError("queue must be a whole number") }
            report.queue = Int(queue)
        }
        switch fields[.healthy] {
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

/// The fields a load report may have, each in a place of its own: what `LoadReport.validate`
/// checks, filled from a general JSON object or straight from the bytes of a flat one.
struct ReportFields {
    enum Name: Int, CaseIterable {
        case level, utilization, serviceMs, cpuUtilization, computeDelayMs, compute, network, score, capacity, queue, healthy

        /// The name in a report's JSON.
        var json: String { Self.names[rawValue] }
        var bit: UInt16 { 1 << UInt16(rawValue) }

        private static let names = ["level", "utilization", "service_ms", "cpu_utilization", "compute_delay_ms", "compute",
                                    "network", "score", "capacity", "queue", "healthy"]
        private static let bytes = names.map { Array($0.utf8) }

        init?(_ json: String) {
            guard let index = Self.names.firstIndex(of: json) else { return nil }
            self.init(rawValue: index)
        }

        init?(_ json: UnsafeRawBufferPointer) {
            guard let index = Self.bytes.firstIndex(where: { json.hasSameBytes(as: $0) }) else { return nil }
            self.init(rawValue: index)
        }
    }

    /// A field's value as the checks tell them apart: anything but a number or a boolean is
    /// `other` (each check refuses it by its own reason).
    enum Value: Equatable {
        case number(Double)
        case bool(Bool)
        case other

        init(_ value: JSONValue) {
            switch value {
            case .number(let number): self = .number(number)
            case .bool(let bool): self = .bool(bool)
            default: self = .other
            }
        }
    }

    /// The fields each form allows, as bits of `Name`: without `level`, then at levels 0, 1, 2.
    static let allowed: [UInt16] = {
        let common = Name.capacity.bit | Name.queue.bit | Name.healthy.bit
        return [common | Name.utilization.bit | Name.serviceMs.bit,
                common | Name.level.bit | Name.cpuUtilization.bit | Name.computeDelayMs.bit,
                common | Name.level.bit | Name.compute.bit | Name.network.bit,
                common | Name.level.bit | Name.score.bit]
    }()

    private var values = InlineArray<11, Value?>(repeating: nil)

    subscript(name: Name) -> Value? {
        get { values[name.rawValue] }
        set { values[name.rawValue] = newValue }
    }

    init() {}

    /// The fields of a body that is one flat object of known names with number or boolean
    /// values (`JSONParser.flatObject`); nil for any other body, which is then read as JSON.
    init?(flat body: UnsafeRawBufferPointer) {
        var parser = JSONParser(bytes: body)
        var fields = ReportFields()
        guard parser.flatObject({ name, value in fields.set(name, value) }) else { return nil }
        self = fields
    }

    /// The reports of a `PUT /v1/loads` body that is one object of site IDs (valid UTF-8
    /// without escapes) to flat reports, in the body's order, repeats included; nil for any
    /// other body, which is then read as JSON.
    static func flatBatch(_ body: UnsafeRawBufferPointer) -> [(site: String, fields: ReportFields)]? {
        var parser = JSONParser(bytes: body)
        var reports: [(site: String, fields: ReportFields)] = []
        parser.skipWhitespace()
        let read = parser.flatMembers { site, parser in
            guard let id = String(validating: site, as: UTF8.self) else { return false }
            var fields = ReportFields()
            guard parser.flatMembers({ name, parser in parser.scalar().map { fields.set(name, $0) } ?? false }) else { return false }
            reports.append((id, fields))
            return true
        }
        return read && parser.atEnd() ? reports : nil
    }

    /// Sets the field named by `name`; false for a name no form has.
    private mutating func set(_ name: UnsafeRawBufferPointer, _ value: JSONValue) -> Bool {
        guard let field = Name(name) else { return false }
        self[field] = Value(value)
        return true
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
