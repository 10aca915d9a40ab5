#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Markdown tables and SVG plots of a scenario's results: plain text, no I/O.
public enum Report {
    /// One row per policy, in the order the policies ran.
    public static func table(_ results: [RunResult], scenario: Scenario) -> String {
        let hasFailures = scenario.events.contains { if case .fail = $0.kind { true } else { false } }
        var header = ["policy", "mean ms", "p50 ms", "p95 ms", "p99 ms", "dropped", "to overloaded",
                      "… outside transitions", "max util.", "changes /24/h", "auth q/s"]
        if hasFailures { header.insert("90% left failed site", at: header.count - 1) }
        var lines = ["| " + header.joined(separator: " | ") + " |",
                     "|:---|" + String(repeating: "---:|", count: header.count - 1)]
        for result in results {
            let dropped = result.measured > 0 ? Double(result.measuredDropped) / Double(result.measured) : 0
            var row = [result.policy == .resolverd ? "**resolverd**" : result.policy.title,
                       fixed(result.mean, 1), fixed(result.p50, 1), fixed(result.p95, 1), fixed(result.p99, 1),
                       percent(dropped), percent(result.overloadedShare), percent(result.overloadedOutsideShare),
                       fixed(result.maxUtilization, 2), fixed(result.changesPerPrefixHour, 2),
                       fixed(result.authoritativeRate, 1)]
            if hasFailures {
                let times = result.evacuation.map { $0.map { "\(Int($0)) s" } ?? "never" }
                row.insert(times.isEmpty ? "–" : times.joined(separator: ", "), at: row.count - 1)
            }
            lines.append("| " + row.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// How resolverd compares with the best baseline, the oracle and capacity-weighted random
    /// (the figures the targets are stated in).
    public static func targets(_ results: [RunResult]) -> [String] {
        guard let product = results.first(where: { $0.policy == .resolverd }) else { return [] }
        var lines: [String] = []
        let baselines = results.filter { $0.policy != .resolverd && $0.policy != .oracle }
        if let best = baselines.min(by: { $0.p95 < $1.p95 }) {
            lines.append("resolverd p95 \(fixed(product.p95, 1)) ms vs best baseline (\(best.policy.title)) "
                         + "\(fixed(best.p95, 1)) ms: \(relative(product.p95, best.p95))")
        }
        if let oracle = results.first(where: { $0.policy == .oracle }) {
            lines.append("resolverd mean \(fixed(product.mean, 1)) ms vs oracle \(fixed(oracle.mean, 1)) ms: "
                         + relative(product.mean, oracle.mean))
        }
        if let weighted = results.first(where: { $0.policy == .weighted }) {
            lines.append("vs capacity-weighted random: mean \(relative(product.mean, weighted.mean)), "
                         + "p95 \(relative(product.p95, weighted.p95))")
        }
        lines.append("resolverd requests to overloaded sites outside transitions: \(percent(product.overloadedOutsideShare))")
        return lines
    }

    /// One row per variant of a sweep: mean / p95 of every policy.
    public static func sweepTable(_ rows: [(Variant, [RunResult])]) -> String {
        guard let first = rows.first?.1 else { return "" }
        let header = ["variant"] + first.map { $0.policy == .resolverd ? "**resolverd**" : $0.policy.title }
        var lines = ["| " + header.joined(separator: " | ") + " |",
                     "|:---|" + String(repeating: "---:|", count: header.count - 1)]
        for (variant, results) in rows {
            let cells = results.map { "\(fixed($0.mean, 1)) / \(fixed($0.p95, 1))" }
            lines.append("| \(variant.label) | " + cells.joined(separator: " | ") + " |")
        }
        return "Mean / p95 response time in ms.\n\n" + lines.joined(separator: "\n") + "\n"
    }

    /// "12.3% lower" / "4.5% higher" of `value` relative to `reference`.
    static func relative(_ value: Double, _ reference: Double) -> String {
        guard reference > 0 else { return "n/a" }
        let change = (value - reference) / reference * 100
        if abs(change) < 0.05 { return "equal" }
        return change < 0 ? "\(fixed(-change, 1))% lower" : "\(fixed(change, 1))% higher"
    }

    /// Every window of every policy: time, mean and p95 response time, utilisation per site.
    public static func seriesCSV(_ results: [RunResult], scenario: Scenario) -> String {
        var out = "policy,time,mean_ms,p95_ms," + scenario.sites.map { "util_\($0.id)" }.joined(separator: ",") + "\n"
        for result in results {
            for (point, row) in zip(result.series, result.utilization) {
                let cells = [result.policy.rawValue, fixed(point.time, 0), fixed(point.mean, 2), fixed(point.p95, 2)]
                    + row.map { $0.isFinite ? fixed($0, 3) : "down" }
                out += cells.joined(separator: ",") + "\n"
            }
        }
        return out
    }

    /// Response time per window, one line per policy.
    public static func responsePlot(_ results: [RunResult], title: String, p95: Bool) -> String {
        let series = results.map { result in
            (name: result.policy.title, points: result.series.map { ($0.time, p95 ? $0.p95 : $0.mean) })
        }
        let top = series.flatMap { $0.points.map(\.1) }.filter(\.isFinite).max() ?? 1
        return LineChart(title: title, yLabel: p95 ? "p95 response time (ms)" : "mean response time (ms)",
                         series: series, yMax: niceCeiling(top), reference: nil).svg()
    }

    /// Utilisation per site and window under one policy; a down site is drawn at the top.
    public static func utilizationPlot(_ result: RunResult, scenario: Scenario, title: String) -> String {
        let cap = 1.5
        let series = scenario.sites.indices.map { site in
            (name: scenario.sites[site].id,
             points: zip(result.series, result.utilization).map { ($0.time, min($1[site], cap)) })
        }
        return LineChart(title: title, yLabel: "utilisation (down = 1.5)", series: series, yMax: cap,
                         reference: 1).svg()
    }

    static func fixed(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return "∞" }
        let scale = pow(10, Double(digits))
        let rounded = (value * scale).rounded() / scale
        var text = String(rounded)
        if let dot = text.firstIndex(of: ".") {
            let decimals = text.distance(from: dot, to: text.endIndex) - 1
            if decimals < digits { text += String(repeating: "0", count: digits - decimals) }
        } else if digits > 0 {
            text += "." + String(repeating: "0", count: digits)
        }
        return text
    }

    static func percent(_ fraction: Double) -> String {
        fraction == 0 ? "0%" : fixed(fraction * 100, fraction < 0.001 ? 3 : 2) + "%"
    }

    static func niceCeiling(_ value: Double) -> Double {
        guard value > 0 else { return 1 }
        let magnitude = pow(10, floor(log10(value)))
        for step in [1.0, 2, 2.5, 5, 10] where step * magnitude >= value { return step * magnitude }
        return 10 * magnitude
    }
}

/// A minimal SVG line chart: shared x (seconds), one polyline per series, a legend.
struct LineChart {
    var title: String
    var yLabel: String
    var series: [(name: String, points: [(Double, Double)])]
    var yMax: Double
    var reference: Double?

    static let palette = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                          "#7f7f7f", "#bcbd22", "#17becf"]

    func svg() -> String {
        let (width, height) = (860.0, 420.0)
        let (left, right, top, bottom) = (70.0, 190.0, 40.0, 50.0)
        let plotWidth = width - left - right
        let plotHeight = height - top - bottom
        let xMax = max(series.flatMap { $0.points.map(\.0) }.max() ?? 1, 1)
        func x(_ value: Double) -> Double { left + value / xMax * plotWidth }
        func y(_ value: Double) -> Double { top + plotHeight - min(max(value, 0), yMax) / yMax * plotHeight }
        func number(_ value: Double) -> String { Report.fixed(value, 1) }

        var out = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
        font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(number(left))" y="22" font-size="15" font-weight="bold">\(escape(title))</text>

        """
        for step in 0...5 {
            let value = yMax * Double(step) / 5
            out += "<line x1=\"\(number(left))\" x2=\"\(number(left + plotWidth))\" y1=\"\(number(y(value)))\" "
                + "y2=\"\(number(y(value)))\" stroke=\"#ddd\"/>\n"
            out += "<text x=\"\(number(left - 6))\" y=\"\(number(y(value) + 4))\" text-anchor=\"end\">"
                + "\(Report.fixed(value, value < 10 ? 2 : 0))</text>\n"
        }
        let xStep = Report.niceCeiling(xMax / 6)
        var tick = 0.0
        while tick <= xMax {
            out += "<text x=\"\(number(x(tick)))\" y=\"\(number(top + plotHeight + 18))\" text-anchor=\"middle\">"
                + "\(Int(tick))</text>\n"
            tick += xStep
        }
        out += "<text x=\"\(number(left + plotWidth / 2))\" y=\"\(number(height - 10))\" text-anchor=\"middle\">"
            + "time (s)</text>\n"
        out += "<text transform=\"translate(16 \(number(top + plotHeight / 2))) rotate(-90)\" "
            + "text-anchor=\"middle\">\(escape(yLabel))</text>\n"
        out += "<rect x=\"\(number(left))\" y=\"\(number(top))\" width=\"\(number(plotWidth))\" "
            + "height=\"\(number(plotHeight))\" fill=\"none\" stroke=\"#888\"/>\n"
        if let reference {
            out += "<line x1=\"\(number(left))\" x2=\"\(number(left + plotWidth))\" y1=\"\(number(y(reference)))\" "
                + "y2=\"\(number(y(reference)))\" stroke=\"#000\" stroke-dasharray=\"6 4\"/>\n"
        }
        for (index, line) in series.enumerated() {
            let colour = Self.palette[index % Self.palette.count]
            let points = line.points.filter { $0.1.isFinite }.map { "\(number(x($0.0))),\(number(y($0.1)))" }
            out += "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"\(index == 0 ? 2.5 : 1.5)\" "
                + "points=\"\(points.joined(separator: " "))\"/>\n"
            let legendY = top + 10 + Double(index) * 18
            out += "<line x1=\"\(number(width - right + 15))\" x2=\"\(number(width - right + 35))\" "
                + "y1=\"\(number(legendY))\" y2=\"\(number(legendY))\" stroke=\"\(colour)\" stroke-width=\"3\"/>\n"
            out += "<text x=\"\(number(width - right + 40))\" y=\"\(number(legendY + 4))\">\(escape(line.name))</text>\n"
        }
        return out + "</svg>\n"
    }

    func escape(_ text: String) -> String {
        text.replacing("&", with: "&amp;").replacing("<", with: "&lt;").replacing(">", with: "&gt;")
    }
}
