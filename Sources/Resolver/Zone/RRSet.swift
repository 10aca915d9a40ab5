/// All records of one owner, type and class (RFC 2181 §5), with RDATA precomputed in
/// uncompressed wire form so that answering only copies bytes.
public final class RRSet: Sendable, CustomStringConvertible {
    public let name: DNSName
    public let type: RRType
    public let rrClass: RRClass
    /// One TTL for the set (RFC 2181 §5.2).
    public let ttl: UInt32
    public let rdatas: [[UInt8]]
    /// Names whose A/AAAA records belong in the additional section when this set is sent
    /// (RFC 1035 §3.3.9 MX, §3.3.11 NS; RFC 2782 SRV).
    public let additionalNames: [DNSName]

    public init(name: DNSName, type: RRType, rrClass: RRClass = .in, ttl: UInt32, rdatas: [[UInt8]]) {
        self.name = name
        self.type = type
        self.rrClass = rrClass
        self.ttl = ttl
        self.rdatas = rdatas
        self.additionalNames = rdatas.compactMap { Self.additionalName(type: type, rdata: $0) }
    }

    /// The same set with another TTL (used for the negative-answer SOA, RFC 2308 §3).
    public func with(ttl: UInt32) -> RRSet {
        RRSet(name: name, type: type, rrClass: rrClass, ttl: ttl, rdatas: rdatas)
    }

    /// First name in an RDATA that is a CNAME or DNAME target.
    public var target: DNSName? {
        guard type == .cname || type == .dname, let rdata = rdatas.first else { return nil }
        return try? DNSName(wire: rdata)
    }

    static func additionalName(type: RRType, rdata: [UInt8]) -> DNSName? {
        let offset: Int
        switch type {
        case .ns: offset = 0
        case .mx: offset = 2
        case .srv: offset = 6
        default: return nil
        }
        guard rdata.count > offset else { return nil }
        return try? DNSName(wire: Array(rdata[offset...]))
    }

    public var description: String { "\(name.text) \(ttl) \(type) ×\(rdatas.count)" }
}

extension RRSet {
    /// Appends every record of the set. `owner` replaces the stored owner (the query name
    /// for wildcard synthesis, RFC 4592 §3.3.1, and to echo the query's case).
    /// Returns the number of records written.
    @discardableResult
    func encode(owner: DNSName, ttl: UInt32, into writer: inout WireWriter) -> UInt16 {
        for rdata in rdatas {
            writer.writeName(owner)
            writer.writeUInt16(type.rawValue)
            writer.writeUInt16(rrClass.rawValue)
            writer.writeUInt32(ttl)
            let lengthAt = writer.count
            writer.writeUInt16(0)
            if type.hasCompressibleRDATA {
                Self.writeCompressed(type: type, rdata: rdata, into: &writer)
            } else {
                writer.writeBytes(rdata)
            }
            writer.patchUInt16(UInt16(writer.count - lengthAt - 2), at: lengthAt)
        }
        return UInt16(rdatas.count)
    }

    /// Writes RDATA of an RFC 1035 type with its names compressed (RFC 3597 §4). The stored
    /// RDATA was validated at load time, so the walk cannot go out of bounds.
    static func writeCompressed(type: RRType, rdata: [UInt8], into writer: inout WireWriter) {
        var offset = 0
        for field in RDataLayout.fields(of: type) {
            switch field {
            case .name:
                var end = offset
                while rdata[end] != 0 { end += 1 + Int(rdata[end]) }
                writer.writeName(storage: rdata, start: offset, compress: true)
                offset = end + 1
            case .fixed(let count):
                writer.writeBytes(rdata[offset..<(offset + count)])
                offset += count
            }
        }
    }
}
