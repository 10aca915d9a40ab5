import Foundation

/// A load report (`PUT /v1/sites/{site}/load`) read straight from a connection's bytes, for
/// `ReportFastPath`.
///
/// Only the plainest form is taken: `PUT /v1/sites/{site}/load HTTP/1.1`, header lines of
/// `name: value` ended by CRLF, the body framed by one `Content-Length` (or none: no body,
/// RFC 9112 §6.3). Anything else a client may send is not refused here but left to the full
/// HTTP/1.1 parser (`.other`): another method, path or version, a query string, a
/// percent-encoded site, `Transfer-Encoding`, `Expect`, `Upgrade`, two `Content-Length` or
/// `Authorization` lines, obsolete line folding, a bare LF, whitespace before a colon (RFC 9112
/// §5.1), control characters, a header section over `maxHead` or a body over
/// `ControlAPI.maxBody`. So this reader never has to be right about an unusual request: it
/// has only to recognise the usual one exactly.
struct ReportRequest: Equatable {
    /// Offsets into the bytes parsed.
    var site: Range<Int>
    var authorization: Range<Int>?
    var body: Range<Int>
    /// `Connection: close` was asked for (RFC 9112 §9.6).
    var close: Bool
    /// The request's whole length: where the next one starts.
    var length: Int

    enum Parse: Equatable {
        /// The bytes so far are the start of a report: wait for more.
        case incomplete
        /// A whole report at the front of the bytes.
        case report(ReportRequest)
        /// Not a report this reader takes: the full parser's, from here on.
        case other
    }

    /// The longest header section taken (the request line included).
    static let maxHead = 8192

    private static let prefix = Array("PUT /v1/sites/".utf8)
    private static let suffix = Array("/load HTTP/1.1\r\n".utf8)

    /// Reads the request at the front of `bytes`.
    static func parse(_ bytes: UnsafeRawBufferPointer) -> Parse {
        let count = bytes.count
        // The request line, byte by byte as far as there are bytes: a mismatch is known early.
        for (index, byte) in prefix.enumerated() {
            guard index < count else { return .incomplete }
            guard bytes[index] == byte else { return .other }
        }
        var cursor = prefix.count
        let siteStart = cursor
        while cursor < count, bytes[cursor] != UInt8(ascii: "/") {
            guard isSiteByte(bytes[cursor]) else { return .other }
            cursor += 1
            if cursor > maxHead { return .other }
        }
        guard cursor < count else { return .incomplete }
        let site = siteStart..<cursor
        guard !site.isEmpty else { return .other }
        for byte in suffix {
            guard cursor < count else { return .incomplete }
            guard bytes[cursor] == byte else { return .other }
            cursor += 1
        }
        // Header lines up to the empty one.
        var contentLength: Int? = nil
        var authorization: Range<Int>? = nil
        var close = false
        while true {
            guard cursor + 1 < count else { return cursor >= maxHead ? .other : .incomplete }
            if bytes[cursor] == UInt8(ascii: "\r") {
                guard bytes[cursor + 1] == UInt8(ascii: "\n") else { return .other }
                cursor += 2
                break
            }
            // One field line: name ":" OWS value OWS CRLF.
            let nameStart = cursor
            while cursor < count, bytes[cursor] != UInt8(ascii: ":") {
                guard isTokenByte(bytes[cursor]) else { return .other }   // also folding, spaces, bare LF
                cursor += 1
            }
            guard cursor < count else { return cursor >= maxHead ? .other : .incomplete }
            let name = nameStart..<cursor
            guard !name.isEmpty else { return .other }
            cursor += 1
            var valueStart = cursor
            while cursor < count, bytes[cursor] != UInt8(ascii: "\r") {
                let byte = bytes[cursor]
                guard byte >= 0x20 && byte != 0x7F || byte == UInt8(ascii: "\t") else { return .other }
                cursor += 1
            }
            guard cursor + 1 < count else { return cursor >= maxHead ? .other : .incomplete }
            guard bytes[cursor + 1] == UInt8(ascii: "\n") else { return .other }
            var valueEnd = cursor
            cursor += 2
            if cursor > maxHead { return .other }
            while valueStart < valueEnd, isWhitespace(bytes[valueStart]) { valueStart += 1 }
            while valueEnd > valueStart, isWhitespace(bytes[valueEnd - 1]) { valueEnd -= 1 }
            let value = valueStart..<valueEnd
            switch fieldName(bytes, name) {
            case .contentLength:
                guard contentLength == nil, !value.isEmpty, value.count <= 6 else { return .other }
                var length = 0
                for index in value {
                    guard bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") else { return .other }
                    length = length * 10 + Int(bytes[index] - UInt8(ascii: "0"))
                }
                guard length <= ControlAPI.maxBody else { return .other }
                contentLength = length
            case .authorization:
                guard authorization == nil else { return .other }
                authorization = value
            case .connection:
                // A list of options (RFC 9110 §7.6.1); "close" among them ends the connection.
                close = close || containsToken(bytes, value, closeToken)
            case .unsupported:
                return .other
            case .ignored:
                break
            }
        }
        let end = cursor + (contentLength ?? 0)
        guard end <= count else { return .incomplete }
        return .report(ReportRequest(site: site, authorization: authorization, body: cursor..<end, close: close, length: end))
    }

    private enum Field {
        case contentLength, authorization, connection
        /// Fields that change how the message is framed or answered.
        case unsupported
        case ignored
    }

    private static let unsupported = ["transfer-encoding", "expect", "upgrade", "te", "trailer"].map { Array($0.utf8) }

    private static func fieldName(_ bytes: UnsafeRawBufferPointer, _ name: Range<Int>) -> Field {
        if equalsLowercased(bytes, name, contentLengthName) { return .contentLength }
        if equalsLowercased(bytes, name, authorizationName) { return .authorization }
        if equalsLowercased(bytes, name, connectionName) { return .connection }
        for field in unsupported where equalsLowercased(bytes, name, field) { return .unsupported }
        return .ignored
    }

    private static let contentLengthName = Array("content-length".utf8)
    private static let authorizationName = Array("authorization".utf8)
    private static let connectionName = Array("connection".utf8)

    /// Field names are case-insensitive (RFC 9110 §5.1); `lowercase` is.
    private static func equalsLowercased(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ lowercase: [UInt8]) -> Bool {
        guard range.count == lowercase.count else { return false }
        // `| 0x20` lowers a letter and keeps '-'; the names compared are tchar already, and a
        // list element of a value that is no name simply matches nothing here.
        for (offset, byte) in lowercase.enumerated() where bytes[range.lowerBound + offset] | 0x20 != byte { return false }
        return true
    }

    /// Whether the comma-separated list `range` has the element `token`, in any case.
    private static let closeToken = Array("close".utf8)

    private static func containsToken(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ wanted: [UInt8]) -> Bool {
        var start = range.lowerBound
        while start <= range.upperBound {
            var end = start
            while end < range.upperBound, bytes[end] != UInt8(ascii: ",") { end += 1 }
            var (low, high) = (start, end)
            while low < high, isWhitespace(bytes[low]) { low += 1 }
            while high > low, isWhitespace(bytes[high - 1]) { high -= 1 }
            if equalsLowercased(bytes, low..<high, wanted) { return true }
            start = end + 1
        }
        return false
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }

    /// tchar (RFC 9110 §5.6.2).
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    /// A byte of a site ID as it may stand in the path without encoding: visible ASCII but for
    /// the path, query and fragment delimiters and '%' (an encoded site is the router's).
    private static func isSiteByte(_ byte: UInt8) -> Bool {
        byte > 0x20 && byte < 0x7F && byte != UInt8(ascii: "?") && byte != UInt8(ascii: "#") && byte != UInt8(ascii: "%")
    }
}

extension UnsafeRawBufferPointer {
    /// The same bytes as `other`, compared with `memcmp` (the generic `elementsEqual` stepped
    /// through an iterator a byte at a time, for a value compared on every report).
    func hasSameBytes(as other: [UInt8]) -> Bool {
        guard count == other.count else { return false }
        guard count > 0 else { return true }
        return other.withUnsafeBytes { memcmp(baseAddress!, $0.baseAddress!, count) == 0 }
    }
}
