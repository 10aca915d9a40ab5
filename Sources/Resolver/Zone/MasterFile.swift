/// An error found while loading configuration or zone data, located by file and line.
public struct SourceError: Error, Hashable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var message: String

    public init(file: String, line: Int, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    /// `FILE:LINE: message`, the form compilers use, so editors can jump to it.
    public var description: String { "\(file):\(line): \(message)" }
}

/// Splits RFC 1035 §5.1 master-file text into logical entries, one per record or directive.
///
/// ldns parses the text of one record well but does not implement `$INCLUDE` and loses the
/// position of multi-line records, so this layer does the part of the syntax that spans lines:
/// comments, quoted strings, escapes and parentheses. Each entry keeps the line it started on,
/// and its leading white space, which means "same owner as the previous record".
public struct MasterFileEntry: Hashable, Sendable {
    public var text: String
    public var line: Int
}

public enum MasterFileSplitter {
    public static func split(_ content: [UInt8], file: String) -> ([MasterFileEntry], [SourceError]) {
        var entries: [MasterFileEntry] = []
        var errors: [SourceError] = []
        var current: [UInt8] = []
        var line = 1
        var entryLine = 1
        var depth = 0
        var parenLine = 0
        var inQuotes = false
        var index = 0

        func finishEntry() {
            if current.contains(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D }) {
                entries.append(MasterFileEntry(text: String(decoding: current, as: UTF8.self), line: entryLine))
            }
            current.removeAll(keepingCapacity: true)
        }

        while index < content.count {
            let byte = content[index]
            if current.isEmpty && depth == 0 && !inQuotes { entryLine = line }
            switch byte {
            case UInt8(ascii: "\\"):
                current.append(byte)
                if index + 1 < content.count {
                    if content[index + 1] == UInt8(ascii: "\n") { line += 1 }
                    current.append(content[index + 1])
                    index += 1
                }
            case UInt8(ascii: "\""):
                inQuotes.toggle()
                current.append(byte)
            case UInt8(ascii: ";") where !inQuotes:
                while index + 1 < content.count && content[index + 1] != UInt8(ascii: "\n") { index += 1 }
            case UInt8(ascii: "(") where !inQuotes:
                if depth == 0 { parenLine = line }
                depth += 1
                current.append(0x20)
            case UInt8(ascii: ")") where !inQuotes:
                if depth == 0 {
                    errors.append(SourceError(file: file, line: line, message: "')' without matching '('"))
                } else {
                    depth -= 1
                }
                current.append(0x20)
            case UInt8(ascii: "\n"):
                if inQuotes {
                    errors.append(SourceError(file: file, line: line, message: "unterminated quoted string"))
                    inQuotes = false
                    depth = 0
                    finishEntry()
                } else if depth > 0 {
                    current.append(0x20)
                } else {
                    finishEntry()
                }
                line += 1
            case UInt8(ascii: "\r"):
                break
            default:
                current.append(byte)
            }
            index += 1
        }
        if depth > 0 {
            errors.append(SourceError(file: file, line: parenLine, message: "'(' is never closed"))
        } else if inQuotes {
            errors.append(SourceError(file: file, line: entryLine, message: "unterminated quoted string"))
        } else {
            finishEntry()
        }
        return (entries, errors)
    }
}
