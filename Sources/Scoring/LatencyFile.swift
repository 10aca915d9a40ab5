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
        // A row per line at most (a header, comments and blank lines are fewer rows).
        map.reserveCapacity(rows: lineCount(text))
        forEachRow(text, header: "prefix") { number, fields in
            guard fields.count == 3 else {
                errors.append(LineError(line: number, message: "expected prefix,site,rtt_ms, got \(fields.count) field(s)"))
                return
            }
            guard let prefix = IPPrefix(fields[0]) else {
                errors.append(LineError(line: number, message: "\"\(fields[0])\" is not a prefix (address/length, no host bits)"))
                return
            }
            guard let site = siteIndex(fields[1]) else {
                errors.append(LineError(line: number, message: "unknown site \"\(fields[1])\""))
                return
            }
            guard let rtt = Double(fields[2]), rtt.isFinite, rtt >= 0, rtt < 100_000 else {
                errors.append(LineError(line: number, message: "rtt_ms \"\(fields[2])\" is not a finite number of milliseconds ≥ 0"))
                return
            }
            map.setRTT(rtt, prefix: prefix, site: site)
        }
        return errors
    }

    /// How many lines `text` has (the last one may lack its newline).
    static func lineCount(_ text: String) -> Int {
        var count = 0
        var last: UInt8 = 0x0A
        for byte in text.utf8 {
            if byte == 0x0A { count += 1 }
            last = byte
        }
        return last == 0x0A ? count : count + 1
    }

    /// Adds prefix locations, used to estimate RTTs to sites without a measurement.
    public static func parseLocations(_ text: String, into map: inout LatencyMap) -> [LineError] {
        var errors: [LineError] = []
        forEachRow(text, header: "prefix") { number, fields in
            guard fields.count == 3, let prefix = IPPrefix(fields[0]) else {
                errors.append(LineError(line: number, message: "expected prefix,lat,lon"))
                return
            }
            guard let lat = Double(fields[1]), let lon = Double(fields[2]),
                  let point = GeoPoint(latitude: lat, longitude: lon) else {
                errors.append(LineError(line: number, message: "latitude/longitude out of range"))
                return
            }
            map.setLocation(point, prefix: prefix)
        }
        return errors
    }

    /// Calls `body` with each non-empty, non-comment line split on commas (fields trimmed of
    /// spaces, tabs and CR) and its 1-based number; a first line starting with `header` is
    /// skipped. Scans UTF-8 bytes, without building a string per character or an array of all
    /// rows: a latency file may have millions of lines.
    static func forEachRow(_ text: String, header: String, _ body: (Int, [String]) -> Void) {
        var text = text
        text.withUTF8 { bytes in
            var number = 0
            var sawRow = false
            var fields: [String] = []
            fields.reserveCapacity(4)
            var lineStart = 0
            while lineStart <= bytes.count {
                var lineEnd = lineStart
                while lineEnd < bytes.count && bytes[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
                number += 1
                defer { lineStart = lineEnd + 1 }
                if lineEnd == bytes.count && lineStart == bytes.count { break }
                var contentEnd = lineStart
                while contentEnd < lineEnd && bytes[contentEnd] != UInt8(ascii: "#") { contentEnd += 1 }
                fields.removeAll(keepingCapacity: true)
                var fieldStart = lineStart
                var allEmpty = true
                while true {
                    var fieldEnd = fieldStart
                    while fieldEnd < contentEnd && bytes[fieldEnd] != UInt8(ascii: ",") { fieldEnd += 1 }
                    var from = fieldStart
                    var to = fieldEnd
                    while from < to && isSpace(bytes[from]) { from += 1 }
                    while to > from && isSpace(bytes[to - 1]) { to -= 1 }
                    if to > from { allEmpty = false }
                    fields.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[from..<to]), as: UTF8.self))
                    if fieldEnd >= contentEnd { break }
                    fieldStart = fieldEnd + 1
                }
                if allEmpty { continue }
                if !sawRow && fields[0].lowercased() == header { sawRow = true; continue }
                sawRow = true
                body(number, fields)
            }
        }
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
    }
}
