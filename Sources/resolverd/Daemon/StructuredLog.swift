import Foundation
import ArgumentParser
import Logging

/// Log lines a machine can parse: logfmt (`key=value`, the default) or one JSON object per
/// line. Every line has `ts` (UTC, RFC 3339 with milliseconds), `level`, `msg`, then the
/// metadata sorted by key, so that journald, Loki or `jq` can filter on fields.
enum LogFormat: String, CaseIterable, Sendable {
    case logfmt, json

    /// One line (without the newline).
    func line(time: Date, level: Logger.Level, message: String, metadata: Logger.Metadata) -> String {
        var fields: [(String, String)] = [("ts", Self.timestamp(time)), ("level", level.rawValue), ("msg", message)]
        for key in metadata.keys.sorted() where !["ts", "level", "msg"].contains(key) {
            fields.append((key, Self.text(metadata[key]!)))
        }
        switch self {
        case .logfmt:
            return fields.map { "\($0.0)=\(Self.logfmtValue($0.1))" }.joined(separator: " ")
        case .json:
            return "{" + fields.map { "\(Self.jsonString($0.0)):\(Self.jsonString($0.1))" }.joined(separator: ",") + "}"
        }
    }

    static func text(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let text): return text
        case .stringConvertible(let value): return value.description
        case .array(let items): return items.map { text($0) }.joined(separator: ",")
        case .dictionary(let items): return items.keys.sorted().map { "\($0):\(text(items[$0]!))" }.joined(separator: ",")
        }
    }

    /// Bare when the value has no space, quote, `=` or control character; otherwise quoted
    /// and escaped as a JSON string, which logfmt parsers (go-logfmt, Loki's) read.
    static func logfmtValue(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.unicodeScalars.contains { $0 == " " || $0 == "=" || $0 == "\"" || $0.value < 0x20 }
        return needsQuotes ? jsonString(value) : value
    }

    /// A JSON string literal (RFC 8259 §7).
    static func jsonString(_ value: String) -> String {
        var quoted = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\n": quoted += "\\n"
            case "\t": quoted += "\\t"
            case "\r": quoted += "\\r"
            default:
                if scalar.value < 0x20 { quoted += String(format: "\\u%04x", scalar.value) } else { quoted.unicodeScalars.append(scalar) }
            }
        }
        return quoted + "\""
    }

    static func timestamp(_ time: Date) -> String {
        let seconds = time.timeIntervalSince1970
        var whole = time_t(seconds.rounded(.down))
        let millis = Int((seconds - Double(whole)) * 1000)
        var parts = tm()
        gmtime_r(&whole, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                      parts.tm_hour, parts.tm_min, parts.tm_sec, millis)
    }
}

/// Writes each event as one `LogFormat` line to standard error, in a single write so that
/// lines from different threads never interleave.
struct StructuredLogHandler: LogHandler {
    let label: String
    let format: LogFormat
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider? = nil

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { $1 } }
        if let extra = event.metadata { fields.merge(extra) { $1 } }
        if let error = event.error { fields["error"] = .string("\(error)") }
        var line = format.line(time: Date(), level: event.level, message: event.message.description, metadata: fields)
        line += "\n"
        line.withUTF8 { bytes in _ = write(STDERR_FILENO, bytes.baseAddress, bytes.count) }
    }

    /// Routes every `Logger` in the process (ours, Hummingbird's, ServiceLifecycle's)
    /// through this format.
    static func bootstrap(format: LogFormat, level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            StructuredLogHandler(label: label, format: format, logLevel: level)
        }
    }
}

extension LogFormat: ExpressibleByArgument {}
