import Foundation

/// `GET /`: one self-contained HTML page (no external assets: the daemon may have no
/// network) that shows at a glance how each site is loaded, whether it is healthy, how old its
/// last report is and what share of recent answers it received, with a small map.
enum StatusPage {
    static func render(_ report: SitesReport) -> String {
        func escape(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        func percent(_ value: Double) -> String { String(format: "%.0f%%", value * 100) }
        var rows = ""
        for site in report.sites {
            let utilization = site.utilization ?? 0
            let width = min(max(utilization, 0), 1) * 100
            let colour = utilization >= 1 ? "#c0392b" : utilization >= 0.8 ? "#e67e22" : "#27ae60"
            let down = !site.healthy || site.check == "failing" || site.reportState == "stale"
            let health = !site.healthy ? "unhealthy (reported)" : site.check == "failing" ? "check failing"
                : site.reportState == "stale" ? "stale" : "healthy"
            let age = site.reportAgeSeconds.map { String(format: "%.0f s", $0) } ?? "never"
            rows += """
                <tr class="\(down ? "down" : "up")"><td class="site">\(escape(site.site))</td>
                <td><div class="bar"><div style="width:\(String(format: "%.1f", width))%;background:\(colour)"></div></div>
                <span class="num">\(site.utilization.map(percent) ?? "unknown")</span></td>
                <td>\(health)</td><td class="num">\(age) (\(site.reportState))</td>
                <td class="num">\(percent(site.shareOfAnswers)) <small>(\(site.answersLastMinute)/min)</small></td>
                <td class="num">\(String(format: "%.0f", site.capacity)) rps</td></tr>

                """
        }
        // Equirectangular map of the located sites, fitted to their bounding box.
        let located = report.sites.compactMap { site in site.location.map { (site, $0[0], $0[1]) } }
        var map = ""
        if !located.isEmpty {
            let lats = located.map(\.1), lons = located.map(\.2)
            let (minLat, maxLat, minLon, maxLon) = (lats.min()! - 2, lats.max()! + 2, lons.min()! - 3, lons.max()! + 3)
            var dots = ""
            for (site, lat, lon) in located {
                let x = 20 + (lon - minLon) / (maxLon - minLon) * 360
                let y = 20 + (maxLat - lat) / (maxLat - minLat) * 160
                let r = 6 + site.shareOfAnswers * 24
                let fill = site.healthy && site.check != "failing" && site.reportState != "stale" ? "#2e86de" : "#c0392b"
                dots += "<circle cx=\"\(Int(x))\" cy=\"\(Int(y))\" r=\"\(Int(r))\" fill=\"\(fill)\" fill-opacity=\"0.6\"/>"
                dots += "<text x=\"\(Int(x) + Int(r) + 3)\" y=\"\(Int(y) + 4)\">\(escape(site.site))</text>"
            }
            map = "<svg viewBox=\"0 0 400 200\" width=\"400\" height=\"200\" role=\"img\" aria-label=\"site map\">"
                + "<rect width=\"400\" height=\"200\" fill=\"#f4f6f8\"/>\(dots)</svg>"
        }
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
            <title>resolverd status</title>
            <style>
            body{font:14px system-ui,sans-serif;margin:24px;color:#222}
            table{border-collapse:collapse;margin-bottom:20px}
            td,th{padding:6px 12px;border-bottom:1px solid #ddd;text-align:left}
            .bar{display:inline-block;width:160px;height:12px;background:#eee;vertical-align:middle;margin-right:8px}
            .bar div{height:12px}
            .num{font-variant-numeric:tabular-nums}
            tr.down td.site{color:#c0392b;font-weight:bold}
            svg text{font-size:12px}
            </style></head><body>
            <h1>resolverd</h1>
            <p>Services: \(report.services.map(escape).joined(separator: ", "))</p>
            <table><tr><th>site</th><th>load</th><th>health</th><th>last report</th><th>share of answers (1 min)</th><th>capacity</th></tr>
            \(rows)</table>
            \(map)
            </body></html>
            """
    }
}
