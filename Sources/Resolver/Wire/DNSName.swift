/// A domain name in uncompressed wire form (RFC 1035 §3.1): length-prefixed labels ending
/// with the root label. Case is preserved for output; comparison and hashing ignore ASCII
/// case (RFC 4343).
///
/// A name may share its storage with a longer name: `parent` and the other suffix
/// operations return a view of the same bytes, so walking up the tree while answering
/// does not allocate.
public struct DNSName: Sendable {
    /// Wire bytes; the name starts at `start` and runs to the end of the array.
    @usableFromInline let storage: [UInt8]
    @usableFromInline let start: Int

    /// Maximum length of a name in wire form (RFC 1035 §2.3.4).
    public static let maxWireLength = 255
    /// Maximum length of one label (RFC 1035 §2.3.4).
    public static let maxLabelLength = 63

    public static let root = DNSName(uncheckedWire: [0])

    /// Wraps bytes already known to be a valid uncompressed name.
    @inlinable
    init(uncheckedWire bytes: [UInt8], start: Int = 0) {
        self.storage = bytes
        self.start = start
    }

    /// Validates and wraps an uncompressed wire-format name.
    public init(wire bytes: [UInt8]) throws(WireError) {
        var index = 0
        while true {
            guard index < bytes.count else { throw .truncated }
            let length = Int(bytes[index])
            if length == 0 { break }
            guard length <= Self.maxLabelLength else { throw .labelTooLong }
            index += 1 + length
        }
        guard index + 1 == bytes.count else { throw .malformedName }
        guard bytes.count <= Self.maxWireLength else { throw .nameTooLong }
        self.init(uncheckedWire: bytes)
    }

    /// Parses presentation format (`www.example.`, `\065`, `\.` escapes). A name without a
    /// trailing dot is taken relative to `origin` (root when nil).
    public init(_ text: String, origin: DNSName? = nil) throws(WireError) {
        if text == "." { self = .root; return }
        if text == "@", let origin { self = origin; return }
        var bytes: [UInt8] = []
        var label: [UInt8] = []
        var absolute = false
        let chars = Array(text.utf8)
        var index = 0
        func flush() throws(WireError) {
            guard !label.isEmpty else { throw .malformedName }
            guard label.count <= Self.maxLabelLength else { throw .labelTooLong }
            bytes.append(UInt8(label.count))
            bytes.append(contentsOf: label)
            label.removeAll(keepingCapacity: true)
        }
        while index < chars.count {
            let c = chars[index]
            if c == UInt8(ascii: "\\") {
                guard index + 1 < chars.count else { throw .malformedName }
                let next = chars[index + 1]
                if next >= 0x30 && next <= 0x39 {
                    // \DDD: exactly three decimal digits (RFC 1035 §5.1).
                    guard index + 3 < chars.count else { throw .malformedName }
                    let digits = chars[(index + 1)...(index + 3)]
                    guard digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { throw .malformedName }
                    let value = digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
                    guard value <= 255 else { throw .malformedName }
                    label.append(UInt8(value))
                    index += 4
                } else {
                    label.append(next)
                    index += 2
                }
                continue
            }
            if c == UInt8(ascii: ".") {
                try flush()
                if index == chars.count - 1 { absolute = true }
            } else {
                label.append(c)
            }
            index += 1
        }
        if !label.isEmpty { try flush() }
        if absolute || origin == nil {
            bytes.append(0)
        } else if let origin {
            bytes.append(contentsOf: origin.wire)
        }
        guard bytes.count <= Self.maxWireLength else { throw .nameTooLong }
        self.init(uncheckedWire: bytes)
    }

    /// The name's wire bytes (a copy when this name is a suffix view).
    public var wire: ArraySlice<UInt8> { storage[start...] }

    /// Length of the name in wire form, root label included.
    @inlinable public var wireLength: Int { storage.count - start }

    @inlinable public var isRoot: Bool { storage[start] == 0 }

    /// Number of labels, not counting the root.
    public var labelCount: Int {
        var count = 0
        var index = start
        while storage[index] != 0 {
            count += 1
            index += 1 + Int(storage[index])
        }
        return count
    }

    /// The name with its first label removed; nil for the root.
    @inlinable public var parent: DNSName? {
        let length = Int(storage[start])
        if length == 0 { return nil }
        return DNSName(uncheckedWire: storage, start: start + 1 + length)
    }

    /// The first label's bytes (empty for the root).
    public var firstLabel: ArraySlice<UInt8> {
        let length = Int(storage[start])
        return storage[(start + 1)..<(start + 1 + length)]
    }

    /// True when the first label is `*` (RFC 4592 §2.1.1).
    public var isWildcard: Bool { storage[start] == 1 && storage[start + 1] == UInt8(ascii: "*") }

    /// This name with `label` prepended.
    public func prepending(label: [UInt8]) -> DNSName {
        var bytes: [UInt8] = [UInt8(label.count)]
        bytes.reserveCapacity(1 + label.count + wireLength)
        bytes.append(contentsOf: label)
        bytes.append(contentsOf: wire)
        return DNSName(uncheckedWire: bytes)
    }

    /// The wildcard name `*.self`.
    public var wildcardChild: DNSName { prepending(label: [UInt8(ascii: "*")]) }

    /// True when `self` equals `other` or lies below it.
    public func isSubdomain(of other: DNSName) -> Bool {
        let difference = wireLength - other.wireLength
        guard difference >= 0 else { return false }
        // The suffix must start on a label boundary of self.
        var index = start
        while index - start < difference {
            index += 1 + Int(storage[index])
        }
        guard index - start == difference else { return false }
        return DNSName(uncheckedWire: storage, start: index) == other
    }

    /// Presentation format with a trailing dot; non-printable and special bytes escaped.
    public var text: String {
        if isRoot { return "." }
        var out = ""
        var index = start
        while storage[index] != 0 {
            let length = Int(storage[index])
            for byte in storage[(index + 1)...(index + length)] {
                switch byte {
                case UInt8(ascii: "."), UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: ";"),
                     UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "@"), UInt8(ascii: "$"):
                    out.append("\\")
                    out.append(Character(UnicodeScalar(byte)))
                case 0x21...0x7E:
                    out.append(Character(UnicodeScalar(byte)))
                default:
                    let digits = String(byte)
                    out.append("\\" + String(repeating: "0", count: 3 - digits.count) + digits)
                }
            }
            out.append(".")
            index += 1 + length
        }
        return out
    }
}

@inlinable func asciiLower(_ byte: UInt8) -> UInt8 {
    (byte >= 0x41 && byte <= 0x5A) ? byte | 0x20 : byte
}

extension DNSName: Hashable {
    /// Case-insensitive (RFC 4343). Label length bytes are at most 63, below 'A', so
    /// folding every byte of the wire form is safe.
    @inlinable
    public static func == (lhs: DNSName, rhs: DNSName) -> Bool {
        let length = lhs.wireLength
        guard length == rhs.wireLength else { return false }
        return lhs.storage.withUnsafeBufferPointer { a in
            rhs.storage.withUnsafeBufferPointer { b in
                var i = lhs.start
                var j = rhs.start
                let end = lhs.start + length
                while i < end {
                    if a[i] != b[j] && asciiLower(a[i]) != asciiLower(b[j]) { return false }
                    i += 1
                    j += 1
                }
                return true
            }
        }
    }

    @inlinable
    public func hash(into hasher: inout Hasher) {
        storage.withUnsafeBufferPointer { bytes in
            var index = start
            // Hash eight folded bytes at a time: names are short and this is on the query path.
            while index + 8 <= bytes.count {
                var word: UInt64 = 0
                for k in 0..<8 { word = word << 8 | UInt64(asciiLower(bytes[index + k])) }
                hasher.combine(word)
                index += 8
            }
            while index < bytes.count {
                hasher.combine(asciiLower(bytes[index]))
                index += 1
            }
        }
    }
}

extension DNSName: CustomStringConvertible {
    public var description: String { text }
}
