/// A JSON value with its type kept, so that `"healthy": 1` or `"utilization": true` can be
/// told apart and refused (JSONSerialization would hand both back as NSNumber).
enum JSONValue: Equatable {
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])
    case null

    /// Nesting deeper than this is refused: no report needs it, and a parser that recursed
    /// without a bound could be made to exhaust its stack by a 64 KiB body of `[`.
    static let maxDepth = 32

    /// Parses one JSON text (RFC 8259): a value with optional whitespace around it and
    /// nothing else. A report is parsed on the same cores as DNS, so this reads the bytes
    /// once, in place, and throws one error at the first problem (Foundation's decoder took
    /// ten times as long, trying each type in turn through thrown errors).
    static func parse(_ bytes: [UInt8]) throws(ReportError) -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        guard let value = parser.document() else { throw ReportError("body is not valid JSON") }
        return value
    }
}

/// The reader behind `JSONValue.parse`; nil from any method means invalid JSON.
private struct JSONParser {
    let bytes: [UInt8]
    var position = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func document() -> JSONValue? {
        guard let value = value(depth: 0) else { return nil }
        skipWhitespace()
        return position == bytes.count ? value : nil
    }

    /// RFC 8259 §2: space, tab, line feed, carriage return.
    mutating func skipWhitespace() {
        while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
    }

    mutating func literal(_ text: StaticString, _ value: JSONValue) -> JSONValue? {
        let count = text.utf8CodeUnitCount
        guard position + count <= bytes.count else { return nil }
        for offset in 0..<count where bytes[position + offset] != text.utf8Start[offset] { return nil }
        position += count
        return value
    }

    mutating func value(depth: Int) -> JSONValue? {
        guard depth <= JSONValue.maxDepth else { return nil }
        skipWhitespace()
        guard position < bytes.count else { return nil }
        switch bytes[position] {
        case UInt8(ascii: "{"): return object(depth: depth)
        case UInt8(ascii: "["): return array(depth: depth)
        case UInt8(ascii: "\""): return string().map(JSONValue.string)
        case UInt8(ascii: "t"): return literal("true", .bool(true))
        case UInt8(ascii: "f"): return literal("false", .bool(false))
        case UInt8(ascii: "n"): return literal("null", .null)
        default: return number().map(JSONValue.number)
        }
    }

    mutating func object(depth: Int) -> JSONValue? {
        position += 1
        var fields: [String: JSONValue] = [:]
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
            position += 1
            return .object(fields)
        }
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\""), let key = string() else { return nil }
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { return nil }
            position += 1
            guard let value = value(depth: depth + 1) else { return nil }
            fields[key] = value   // a repeated name: the last one counts, as JSONDecoder did
            skipWhitespace()
            guard position < bytes.count else { return nil }
            position += 1
            switch bytes[position - 1] {
            case UInt8(ascii: ","): continue
            case UInt8(ascii: "}"): return .object(fields)
            default: return nil
            }
        }
    }

    mutating func array(depth: Int) -> JSONValue? {
        position += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
            position += 1
            return .array(items)
        }
        while true {
            guard let item = value(depth: depth + 1) else { return nil }
            items.append(item)
            skipWhitespace()
            guard position < bytes.count else { return nil }
            position += 1
            switch bytes[position - 1] {
            case UInt8(ascii: ","): continue
            case UInt8(ascii: "]"): return .array(items)
            default: return nil
            }
        }
    }

    /// RFC 8259 §7, from the opening quote: escapes decoded, `\u` surrogate pairs joined,
    /// control characters and lone surrogates refused, the rest kept as valid UTF-8.
    mutating func string() -> String? {
        position += 1
        var scalars = String.UnicodeScalarView()
        var start = position
        var plain: [UInt8] = []
        func flush(_ end: Int) { plain.append(contentsOf: bytes[start..<end]) }
        while position < bytes.count {
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: "\""):
                flush(position)
                position += 1
                guard let text = String(validating: plain, as: UTF8.self) else { return nil }
                if scalars.isEmpty { return text }
                var joined = String(scalars)
                joined += text
                return joined
            case UInt8(ascii: "\\"):
                flush(position)
                position += 1
                guard position < bytes.count else { return nil }
                let escaped = bytes[position]
                position += 1
                let scalar: Unicode.Scalar
                switch escaped {
                case UInt8(ascii: "\""): scalar = "\""
                case UInt8(ascii: "\\"): scalar = "\\"
                case UInt8(ascii: "/"): scalar = "/"
                case UInt8(ascii: "b"): scalar = "\u{08}"
                case UInt8(ascii: "f"): scalar = "\u{0C}"
                case UInt8(ascii: "n"): scalar = "\n"
                case UInt8(ascii: "r"): scalar = "\r"
                case UInt8(ascii: "t"): scalar = "\t"
                case UInt8(ascii: "u"):
                    guard let unit = hex4() else { return nil }
                    if (0xD800..<0xDC00).contains(unit) {
                        guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"),
                              bytes[position + 1] == UInt8(ascii: "u") else { return nil }
                        position += 2
                        guard let low = hex4(), (0xDC00..<0xE000).contains(low),
                              let joined = Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)) else { return nil }
                        scalar = joined
                    } else {
                        guard let single = Unicode.Scalar(unit) else { return nil }   // a lone low surrogate
                        scalar = single
                    }
                default:
                    return nil
                }
                // What came before the escape, then the escaped character.
                guard let text = String(validating: plain, as: UTF8.self) else { return nil }
                scalars.append(contentsOf: text.unicodeScalars)
                scalars.append(scalar)
                plain.removeAll(keepingCapacity: true)
                start = position
            default:
                guard byte >= 0x20 else { return nil }
                position += 1
            }
        }
        return nil
    }

    mutating func hex4() -> UInt32? {
        guard position + 4 <= bytes.count else { return nil }
        var value: UInt32 = 0
        for byte in bytes[position..<(position + 4)] {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt32(digit)
        }
        position += 4
        return value
    }

    /// RFC 8259 §6: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, checked here and
    /// then converted by the standard library.
    mutating func number() -> Double? {
        let start = position
        func digits() -> Int {
            let first = position
            while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) { position += 1 }
            return position - first
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "-") { position += 1 }
        guard position < bytes.count else { return nil }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
        } else {
            guard digits() > 0 else { return nil }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            position += 1
            guard digits() > 0 else { return nil }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
            guard digits() > 0 else { return nil }
        }
        // Digits only, as checked: the conversion cannot fail, and a too-large exponent gives
        // infinity, which the report's checks refuse.
        return Double(String(decoding: bytes[start..<position], as: UTF8.self))
    }
}
