/// An IPv4 or IPv6 address as a plain value: no sockets, no Foundation.
///
/// IPv6 is kept as two 64-bit halves so that masking to a prefix and comparing are a few
/// integer operations, which the latency map and the affinity table do on every query.
public enum IPAddress: Hashable, Sendable, Comparable {
    case v4(UInt32)
    case v6(UInt64, UInt64)

    public enum Family: UInt16, Sendable {
        /// Address family numbers from IANA, as ECS uses them (RFC 7871 §6).
        case ipv4 = 1
        case ipv6 = 2

        public var bitLength: Int { self == .ipv4 ? 32 : 128 }
    }

    public var family: Family {
        switch self {
        case .v4: return .ipv4
        case .v6: return .ipv6
        }
    }

    /// The address as two 64-bit words and its family, for tables that key on plain integers
    /// (an IPv4 address is the low word); `init(isV6:high:low:)` is the way back.
    @inlinable
    public var words: (isV6: Bool, high: UInt64, low: UInt64) {
        switch self {
        case .v4(let value): return (false, 0, UInt64(value))
        case .v6(let high, let low): return (true, high, low)
        }
    }

    @inlinable
    public init(isV6: Bool, high: UInt64, low: UInt64) {
        self = isV6 ? .v6(high, low) : .v4(UInt32(truncatingIfNeeded: low))
    }

    /// Network-order bytes: 4 for IPv4, 16 for IPv6.
    public var bytes: [UInt8] {
        switch self {
        case .v4(let value):
            return (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) }
        case .v6(let high, let low):
            return (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * $0)) }
                + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
        }
    }

    /// Builds an address from network-order bytes; `bytes` may be shorter than the
    /// family's length, the rest being zero (as in an ECS ADDRESS field).
    @inlinable
    public init?(family: Family, bytes: some Collection<UInt8>) {
        guard bytes.count <= family.bitLength / 8 else { return nil }
        // Folded byte by byte, with no intermediate array: ECS decoding calls this per query.
        switch family {
        case .ipv4:
            var value: UInt32 = 0
            for byte in bytes { value = value << 8 | UInt32(byte) }
            self = .v4(value << UInt32(8 * (4 - bytes.count)))
        case .ipv6:
            var high: UInt64 = 0
            var low: UInt64 = 0
            var count = 0
            for byte in bytes {
                if count < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
                count += 1
            }
            if count < 8 { high <<= UInt64(8 * (8 - count)) } else { low <<= UInt64(8 * (16 - count)) }
            self = .v6(high, low)
        }
    }

    /// The address with every bit after the first `length` set to zero. Inlined: a decision
    /// masks the client's address for its binding key and for each candidate's RTT source,
    /// and the call cost more than the mask.
    @inline(__always)
    public func masked(to length: Int) -> IPAddress {
        switch self {
        case .v4(let value):
            if length <= 0 { return .v4(0) }
            if length >= 32 { return self }
            return .v4(value & ~(UInt32.max >> UInt32(length)))
        case .v6(let high, let low):
            if length <= 0 { return .v6(0, 0) }
            if length >= 128 { return self }
            if length <= 64 {
                return .v6(length == 64 ? high : high & ~(UInt64.max >> UInt64(length)), 0)
            }
            return .v6(high, low & ~(UInt64.max >> UInt64(length - 64)))
        }
    }

    /// Bit `index` counted from the most significant (0-based).
    public func bit(_ index: Int) -> Bool {
        switch self {
        case .v4(let value):
            return (value >> UInt32(31 - index)) & 1 == 1
        case .v6(let high, let low):
            return index < 64 ? (high >> UInt64(63 - index)) & 1 == 1
                : (low >> UInt64(127 - index)) & 1 == 1
        }
    }

    /// Private, loopback, link-local and other addresses that say nothing about where a
    /// client is (RFC 7871 §10 asks servers not to trust them in ECS).
    public var isNonRoutable: Bool {
        switch self {
        case .v4(let v):
            let a = v >> 24
            let ab = v >> 16
            return a == 10 || a == 127 || a == 0 || ab == 0xA9FE || (v >> 20) == 0xAC1 || ab == 0xC0A8
                || (v >> 22) == (100 << 2 | 1) // 100.64.0.0/10
        case .v6(let high, let low):
            if high == 0 && (low == 1 || low == 0) { return true } // ::1, ::
            let top16 = high >> 48
            if top16 & 0xFE00 == 0xFC00 { return true } // fc00::/7 unique local
            if top16 & 0xFFC0 == 0xFE80 { return true } // fe80::/10 link local
            if high == 0 && low >> 32 == 0xFFFF { // IPv4-mapped
                return IPAddress.v4(UInt32(truncatingIfNeeded: low)).isNonRoutable
            }
            return false
        }
    }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        switch (lhs, rhs) {
        case (.v4(let a), .v4(let b)): return a < b
        case (.v4, .v6): return true
        case (.v6, .v4): return false
        case (.v6(let ah, let al), .v6(let bh, let bl)): return (ah, al) < (bh, bl)
        }
    }
}

extension IPAddress: CustomStringConvertible {
    /// Parses dotted-quad IPv4 or RFC 4291 §2.2 IPv6 text (with `::` and an optional
    /// embedded IPv4 tail).
    public init?(_ text: some StringProtocol) {
        if text.contains(":") {
            guard let parsed = Self.parseIPv6(Substring(text)) else { return nil }
            self = parsed
        } else {
            guard let value = Self.parseIPv4(Substring(text)) else { return nil }
            self = .v4(value)
        }
    }

    static func parseIPv4(_ text: Substring) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCII), let octet = UInt32(part),
                  octet <= 255 else { return nil }
            value = value << 8 | octet
        }
        return value
    }

    static func parseIPv6(_ text: Substring) -> IPAddress? {
        var groups: [UInt16] = []
        var tailGroups: [UInt16] = []
        var sawDoubleColon = false
        // Split on the first "::"; a second one is an error.
        var halves: [String] = [String(text)]
        if let range = text.firstRange(of: "::") {
            halves = [String(text[..<range.lowerBound]), String(text[range.upperBound...])]
            if halves[1].contains("::") { return nil }
        }
        sawDoubleColon = halves.count == 2
        func parseGroups(_ part: String, allowIPv4Tail: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if allowIPv4Tail && index == pieces.count - 1 && piece.contains(".") {
                    guard let v4 = parseIPv4(piece) else { return nil }
                    result.append(UInt16(v4 >> 16))
                    result.append(UInt16(v4 & 0xFFFF))
                } else {
                    guard !piece.isEmpty, piece.count <= 4, let group = UInt16(piece, radix: 16) else { return nil }
                    result.append(group)
                }
            }
            return result
        }
        guard let head = parseGroups(halves[0], allowIPv4Tail: !sawDoubleColon) else { return nil }
        groups = head
        if sawDoubleColon {
            guard let tail = parseGroups(halves[1], allowIPv4Tail: true) else { return nil }
            tailGroups = tail
            guard groups.count + tailGroups.count <= 7 else { return nil }
            groups += Array(repeating: 0, count: 8 - groups.count - tailGroups.count) + tailGroups
        }
        guard groups.count == 8 else { return nil }
        let high = groups[0..<4].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
        let low = groups[4..<8].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
        return .v6(high, low)
    }

    /// RFC 5952 text: lowercase, longest run of zero groups as `::`.
    public var description: String {
        switch self {
        case .v4(let v):
            return "\(v >> 24).\((v >> 16) & 0xFF).\((v >> 8) & 0xFF).\(v & 0xFF)"
        case .v6(let high, let low):
            let groups = (0..<4).map { UInt16(truncatingIfNeeded: high >> (48 - 16 * UInt64($0))) }
                + (0..<4).map { UInt16(truncatingIfNeeded: low >> (48 - 16 * UInt64($0))) }
            var bestStart = -1, bestLength = 0, runStart = -1
            for index in 0...8 {
                if index < 8 && groups[index] == 0 {
                    if runStart < 0 { runStart = index }
                } else if runStart >= 0 {
                    if index - runStart > bestLength && index - runStart >= 2 {
                        bestStart = runStart
                        bestLength = index - runStart
                    }
                    runStart = -1
                }
            }
            if bestStart < 0 { return groups.map { String($0, radix: 16) }.joined(separator: ":") }
            let head = groups[0..<bestStart].map { String($0, radix: 16) }.joined(separator: ":")
            let tail = groups[(bestStart + bestLength)...].map { String($0, radix: 16) }.joined(separator: ":")
            return head + "::" + tail
        }
    }
}

/// An address prefix such as `203.0.113.0/24` or `2001:db8::/32`.
public struct IPPrefix: Hashable, Sendable, CustomStringConvertible {
    public let address: IPAddress
    public let length: Int

    /// The address is masked, so two spellings of one network compare equal.
    public init?(address: IPAddress, length: Int) {
        guard length >= 0, length <= address.family.bitLength else { return nil }
        self.address = address.masked(to: length)
        self.length = length
    }

    /// Parses `ADDRESS/LENGTH`, or a bare address as a host prefix. Host bits set beyond
    /// the length are an error, as in most router configurations: they usually mean a typo.
    public init?(_ text: some StringProtocol) {
        // The common form, an IPv4 prefix, read straight from the bytes (a latency file may
        // hold a million); anything else goes the general way below.
        if let (value, length) = Self.scanIPv4(text.utf8) {
            guard length <= 32, let prefix = IPPrefix(address: .v4(value), length: length), prefix.address == .v4(value) else {
                return nil
            }
            self = prefix
            return
        }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = IPAddress(parts[0]) else { return nil }
        var length = address.family.bitLength
        if parts.count == 2 {
            guard parts[1].allSatisfy(\.isASCII), let parsed = Int(parts[1]) else { return nil }
            length = parsed
        }
        guard let prefix = IPPrefix(address: address, length: length), prefix.address == address else {
            return nil
        }
        self = prefix
    }

    /// `a.b.c.d/len` (four decimal octets ≤ 255 of one to three digits, a length of one or
    /// two digits); nil for anything else, including IPv4 without a length.
    static func scanIPv4(_ bytes: some Collection<UInt8>) -> (UInt32, Int)? {
        var value: UInt32 = 0
        var octet = 0
        var digits = 0
        var dots = 0
        var length = -1
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                digits += 1
                if length >= 0 {
                    guard digits <= 2 else { return nil }
                    length = length * 10 + Int(byte - UInt8(ascii: "0"))
                } else {
                    guard digits <= 3 else { return nil }
                    octet = octet * 10 + Int(byte - UInt8(ascii: "0"))
                    guard octet <= 255 else { return nil }
                }
            case UInt8(ascii: "."):
                guard length < 0, digits > 0, dots < 3 else { return nil }
                value = value << 8 | UInt32(octet)
                octet = 0
                digits = 0
                dots += 1
            case UInt8(ascii: "/"):
                guard length < 0, digits > 0, dots == 3 else { return nil }
                value = value << 8 | UInt32(octet)
                length = 0
                digits = 0
            default:
                return nil
            }
        }
        guard length >= 0, digits > 0 else { return nil }
        return (value, length)
    }

    public func contains(_ other: IPAddress) -> Bool {
        other.family == address.family && other.masked(to: length) == address
    }

    public var description: String { "\(address)/\(length)" }
}
