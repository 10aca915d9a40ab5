/// Reads the latency CSV (`prefix,site,rtt_ms`, SPEC.md) and the optional locations CSV
/// (`prefix,lat,lon`). An optional header line and `#` comments are allowed; every malformed
/// line is reported with its number, and nothing invalid enters the map.
public enum LatencyFile {
    public struct LineError: Error, Hashable, Sendable {
        public var line: Int
        public var message: String
    }

    /// Adds the measurements in `text` to `map`. `siteIndex` resolves site names.
    public static func parseRTTs(_ text: String, into map: inout LatencyMap,
                                 siteIndex: (String) -> Int?) -> [LineError] {
        var errors: [LineError] = []
        for (number, fields) in rows(text, header: "prefix") {
            guard fields.count == 3 else {
                errors.append(LineError(line: number, message: "expected prefix,site,rtt_ms, got \(fields.count) field(s)"))
                continue
            }
            guard let prefix = IPPrefix(fields[0]) else {
                errors.append(LineError(line: number, message: "\"\(fields[0])\" is not a prefix (address/length, no host bits)"))
                continue
            }
            guard let site = siteIndex(fields[1]) else {
                errors.append(LineError(line: number, message: "unknown site \"\(fields[1])\""))
                continue
            }
            guard let rtt = Double(fields[2]), rtt.isFinite, rtt >= 0, rtt < 100_000 else {
                errors.append(LineError(line: number, message: "rtt_ms \"\(fields[2])\" is not a finite number of milliseconds ≥ 0"))
                continue
            }
            map.setRTT(rtt, prefix: prefix, site: site)
        }
        return errors
    }

    /// Adds prefix locations, used to estimate RTTs to sites without a measurement.
    public static func parseLocations(_ text: String, into map: inout LatencyMap) -> [LineError] {
        var errors: [LineError] = []
        for (number, fields) in rows(text, header: "prefix") {
            guard fields.count == 3, let prefix = IPPrefix(fields[0]) else {
                errors.append(LineError(line: number, message: "expected prefix,lat,lon"))
                continue
            }
            guard let lat = Double(fields[1]), let lon = Double(fields[2]),
                  let point = GeoPoint(latitude: lat, longitude: lon) else {
                errors.append(LineError(line: number, message: "latitude/longitude out of range"))
                continue
            }
            map.setLocation(point, prefix: prefix)
        }
        return errors
    }

    /// Non-empty, non-comment lines split on commas, with 1-based line numbers; a first
    /// line starting with `header` is skipped.
    static func rows(_ text: String, header: String) -> [(Int, [String])] {
        var result: [(Int, [String])] = []
        var number = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
                .map { $0.trimmingSpaces() }
            if fields.allSatisfy(\.isEmpty) { continue }
            if result.isEmpty && fields[0].lowercased() == header { continue }
            result.append((number, fields))
        }
        return result
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        return String(drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
