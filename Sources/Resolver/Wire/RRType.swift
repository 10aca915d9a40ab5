/// A resource record TYPE (RFC 1035 §3.2.2). A struct rather than an enum so that every
/// 16-bit value, known or not, round-trips (RFC 3597).
public struct RRType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let a = RRType(rawValue: 1)
    public static let ns = RRType(rawValue: 2)
    public static let md = RRType(rawValue: 3)
    public static let mf = RRType(rawValue: 4)
    public static let cname = RRType(rawValue: 5)
    public static let soa = RRType(rawValue: 6)
    public static let mb = RRType(rawValue: 7)
    public static let mg = RRType(rawValue: 8)
    public static let mr = RRType(rawValue: 9)
    public static let ptr = RRType(rawValue: 12)
    public static let minfo = RRType(rawValue: 14)
    public static let mx = RRType(rawValue: 15)
    public static let txt = RRType(rawValue: 16)
    public static let aaaa = RRType(rawValue: 28)
    public static let srv = RRType(rawValue: 33)
    public static let dname = RRType(rawValue: 39)
    public static let opt = RRType(rawValue: 41)
    public static let ds = RRType(rawValue: 43)
    public static let rrsig = RRType(rawValue: 46)
    public static let nsec = RRType(rawValue: 47)
    public static let caa = RRType(rawValue: 257)
    public static let ixfr = RRType(rawValue: 251)
    public static let axfr = RRType(rawValue: 252)
    public static let mailb = RRType(rawValue: 253)
    public static let maila = RRType(rawValue: 254)
    public static let any = RRType(rawValue: 255)

    /// Types whose RDATA names may be compressed: only those defined in RFC 1035
    /// (RFC 3597 §4). Every later type is written uncompressed.
    public var hasCompressibleRDATA: Bool {
        switch self {
        case .ns, .md, .mf, .cname, .soa, .mb, .mg, .mr, .ptr, .minfo, .mx: return true
        default: return false
        }
    }

    static let names: [UInt16: String] = [
        1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 13: "HINFO", 15: "MX", 16: "TXT",
        28: "AAAA", 33: "SRV", 35: "NAPTR", 39: "DNAME", 41: "OPT", 43: "DS", 46: "RRSIG",
        47: "NSEC", 48: "DNSKEY", 50: "NSEC3", 52: "TLSA", 64: "SVCB", 65: "HTTPS",
        99: "SPF", 251: "IXFR", 252: "AXFR", 255: "ANY", 257: "CAA",
    ]

    public var description: String { Self.names[rawValue] ?? "TYPE\(rawValue)" }
}

/// A CLASS (RFC 1035 §3.2.4).
public struct RRClass: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let `in` = RRClass(rawValue: 1)
    public static let chaos = RRClass(rawValue: 3)
    public static let any = RRClass(rawValue: 255)
}

/// Response codes, including the extended ones carried partly in OPT (RFC 6891 §6.1.3).
public struct ResponseCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let noError = ResponseCode(rawValue: 0)
    public static let formErr = ResponseCode(rawValue: 1)
    public static let servFail = ResponseCode(rawValue: 2)
    public static let nxDomain = ResponseCode(rawValue: 3)
    public static let notImp = ResponseCode(rawValue: 4)
    public static let refused = ResponseCode(rawValue: 5)
    /// RFC 6891 §9: the requester's EDNS version is not supported.
    public static let badVers = ResponseCode(rawValue: 16)
    /// RFC 7873 §8: a server cookie was expected.
    public static let badCookie = ResponseCode(rawValue: 23)

    public var description: String {
        switch rawValue {
        case 0: return "NOERROR"
        case 1: return "FORMERR"
        case 2: return "SERVFAIL"
        case 3: return "NXDOMAIN"
        case 4: return "NOTIMP"
        case 5: return "REFUSED"
        case 16: return "BADVERS"
        case 23: return "BADCOOKIE"
        default: return "RCODE\(rawValue)"
        }
    }
}

/// Operation codes (RFC 1035 §4.1.1); only QUERY is implemented.
public struct OpCode: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let query = OpCode(rawValue: 0)
    public static let notify = OpCode(rawValue: 4)
    public static let update = OpCode(rawValue: 5)
}
