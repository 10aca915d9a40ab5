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
        try parse(bytes.withUnsafeBytes { JSONParser.document(of: $0) })
    }

    /// `parse` of bytes borrowed in place (a request's, still in the connection's buffer).
    static func parse(_ bytes: UnsafeRawBufferPointer) throws(ReportError) -> JSONValue {
        try parse(JSONParser.document(of: bytes))
    }

    private static func parse(_ value: JSONValue?) throws(ReportError) -> JSONValue {
        guard let value else { throw ReportError("body is not valid JSON") }
        return value
    }
}

/// The reader behind `JSONValue.parse`; nil from any method means invalid JSON.
struct JSONParser {
    let bytes: UnsafeRawBufferPointer
    var position = 0

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    static func document(of bytes: UnsafeRawBufferPointer) -> JSONValue? {
        var parser = JSONParser(bytes: bytes)
        return parser.document()
    }

    mutating func document() -> JSONValue? {
        guard let value = value(depth: 0) else { return nil }
        skipWhitespace()
        return position == bytes.count ? value : nil
    }

    /// Reads a whole document that is one object of names without escapes and values that
    /// are numbers, `true` or `false` (a load report's form), handing each name's bytes and
    /// value to `field` in order, without building a `JSONValue` (a dictionary and a string
    /// per name: most of a report's parsing time). False when the document is anything else
    /// or `field` declines a name; the caller then parses it the general way, which reads any
    /// JSON and finds the error in what this declined. Whatever both read, they read alike:
    /// the same whitespace, the same `number()`, a repeated name handed over again (the last
    /// counts, as in `object`).
    mutating func flatObject(_ field: (UnsafeRawBufferPointer, JSONValue) -> Bool) -> Bool {
        skipWhitespace()
        return flatMembers { name, parser in
            guard let value = parser.scalar() else { return false }
            return field(name, value)
        } && atEnd()
    }

    /// `{ "name": value, … }` from here, the names without escapes, each value read by
    /// `member` (given the name's bytes and the parser at the value, which it must read);
    /// false at anything else or when `member` declines. The same whitespace as `object`.
    mutating func flatMembers(_ member: (UnsafeRawBufferPointer, inout JSONParser) -> Bool) -> Bool {
        guard next(is: "{") else { return false }
        skipWhitespace()
        if next(is: "}") { return true }
        while true {
            skipWhitespace()
            guard next(is: "\"") else { return false }
            let start = position
            while position < bytes.count, bytes[position] != UInt8(ascii: "\""), bytes[position] != UInt8(ascii: "\\"),
                  bytes[position] >= 0x20 { position += 1 }
            let name = UnsafeRawBufferPointer(rebasing: bytes[start..<position])
            guard next(is: "\"") else { return false }
            skipWhitespace()
            guard next(is: ":") else { return false }
            skipWhitespace()
            guard member(name, &self) else { return false }
            skipWhitespace()
            if next(is: ",") { continue }
            return next(is: "}")
        }
    }

    /// A number, `true` or `false` here (`.number`, `.bool`); nil for anything else.
    mutating func scalar() -> JSONValue? {
        guard position < bytes.count else { return nil }
        switch bytes[position] {
        case UInt8(ascii: "t"): return literal("true", .bool(true))
        case UInt8(ascii: "f"): return literal("false", .bool(false))
        default: return number().map(JSONValue.number)
        }
    }

    /// Steps over `byte` if it is next.
    private mutating func next(is byte: Unicode.Scalar) -> Bool {
        guard position < bytes.count, bytes[position] == UInt8(ascii: byte) else { return false }
        position += 1
        return true
    }

    /// Only whitespace left.
    mutating func atEnd() -> Bool {
        skipWhitespace()
        return position == bytes.count
    }

    /// RFC 8259 §2: space, tab, line feed, carriage return.
    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
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
        let text = UnsafeRawBufferPointer(rebasing: bytes[start..<position])
        // Digits only, as checked: the conversion cannot fail, and a too-large exponent gives
        // infinity, which the report's checks refuse.
        return Self.shortDecimal(text) ?? Double(String(decoding: text, as: UTF8.self))
    }

    /// A number of RFC 8259's form (already checked) with at most 15 significant digits and a
    /// decimal exponent within ±22, converted exactly: its digits as an integer below 2^53 and
    /// 10^|e| are both doubles exactly, so the one multiplication or division IEEE 754 rounds
    /// correctly is the correctly rounded value, as `strtod` gives it (Clinger's fast path).
    /// Nil for any other, which the standard library converts. A report's numbers are all of
    /// this kind, and the general conversion was half of its parsing time.
    static func shortDecimal(_ text: UnsafeRawBufferPointer) -> Double? {
        var index = 0
        let negative = text.first == UInt8(ascii: "-")
        if negative { index += 1 }
        var digits: UInt64 = 0
        var significant = 0
        var exponent = 0
        var fraction = false
        while index < text.count {
            let byte = text[index]
            if byte == UInt8(ascii: ".") {
                fraction = true
            } else if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                if digits > 0 || byte != UInt8(ascii: "0") { significant += 1 }
                guard significant <= 15 else { return nil }
                digits = digits * 10 + UInt64(byte - UInt8(ascii: "0"))
                if fraction { exponent -= 1 }
            } else {
                break   // the exponent part
            }
            index += 1
        }
        if index < text.count {
            index += 1   // e or E
            var sign = 1
            if text[index] == UInt8(ascii: "+") || text[index] == UInt8(ascii: "-") {
                if text[index] == UInt8(ascii: "-") { sign = -1 }
                index += 1
            }
            var written = 0
            while index < text.count {
                written = written * 10 + Int(text[index] - UInt8(ascii: "0"))
                guard written <= 400 else { return nil }
                index += 1
            }
            exponent += sign * written
        }
        guard exponent >= -22 && exponent <= 22 else { return nil }
        let value = exponent < 0 ? Double(digits) / powersOfTen[-exponent] : Double(digits) * powersOfTen[exponent]
        return negative ? -value : value
    }

    /// 10^0 … 10^22, each exact in a double.
    private static let powersOfTen: [Double] = (0...22).map { power in (0..<power).reduce(1.0) { value, _ in value * 10 } }
}
