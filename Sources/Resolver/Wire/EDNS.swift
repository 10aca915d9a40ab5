import Scoring

/// EDNS option codes we act on.
public struct EDNSOptionCode: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// RFC 5001.
    public static let nsid = EDNSOptionCode(rawValue: 3)
    /// RFC 7871.
    public static let clientSubnet = EDNSOptionCode(rawValue: 8)
    /// RFC 7873.
    public static let cookie = EDNSOptionCode(rawValue: 10)
    /// RFC 7830.
    public static let padding = EDNSOptionCode(rawValue: 12)
}

/// One option of the OPT RDATA (RFC 6891 §6.1.2), kept as raw bytes.
public struct EDNSOption: Hashable, Sendable {
    public var code: EDNSOptionCode
    public var data: [UInt8]
    public init(code: EDNSOptionCode, data: [UInt8]) {
        self.code = code
        self.data = data
    }
}

/// The EDNS(0) facts of a query: its OPT pseudo-record (RFC 6891 §6.1) and the options
/// this server understands. Unknown options are skipped (RFC 6891 §6.1.2, RFC 8906 §8).
public struct EDNS: Hashable, Sendable {
    /// Requestor's UDP payload size; values below 512 are treated as 512 (RFC 6891 §6.2.3).
    public var udpPayloadSize: UInt16
    public var extendedRCode: UInt8
    public var version: UInt8
    /// The DO bit (RFC 3225); copied into the response.
    public var dnssecOK: Bool
    public var nsidRequested: Bool
    public var clientSubnet: ClientSubnet?
    /// Client cookie (8 bytes) and server cookie (8–32 bytes) when present (RFC 7873 §4).
    public var cookie: [UInt8]?
    /// Every option in order, for tests and diagnostics; left empty on the answer path,
    /// which needs only the options above.
    public var options: [EDNSOption]

    public init(udpPayloadSize: UInt16 = 1232, extendedRCode: UInt8 = 0, version: UInt8 = 0,
                dnssecOK: Bool = false, nsidRequested: Bool = false, clientSubnet: ClientSubnet? = nil,
                cookie: [UInt8]? = nil, options: [EDNSOption] = []) {
        self.udpPayloadSize = udpPayloadSize
        self.extendedRCode = extendedRCode
        self.version = version
        self.dnssecOK = dnssecOK
        self.nsidRequested = nsidRequested
        self.clientSubnet = clientSubnet
        self.cookie = cookie
        self.options = options
    }

    /// Decodes the OPT record's fields after its owner name and TYPE: CLASS (payload size),
    /// TTL (extended RCODE, version, flags) and RDATA (options).
    ///
    /// Options are validated only when the version is 0: a server that does not speak the
    /// requested version answers BADVERS without interpreting anything else (RFC 6891 §6.1.3).
    init(afterType reader: inout WireReader, keepOptions: Bool) throws(WireError) {
        udpPayloadSize = try reader.readUInt16()
        let ttl = try reader.readUInt32()
        extendedRCode = UInt8(ttl >> 24)
        version = UInt8((ttl >> 16) & 0xFF)
        dnssecOK = ttl & 0x8000 != 0
        nsidRequested = false
        clientSubnet = nil
        cookie = nil
        options = []
        let length = Int(try reader.readUInt16())
        var rdata = WireReader(try reader.readBytes(length))
        while rdata.remaining > 0 {
            guard rdata.remaining >= 4 else { throw .badOption }
            let code = EDNSOptionCode(rawValue: try rdata.readUInt16())
            let optionLength = Int(try rdata.readUInt16())
            guard optionLength <= rdata.remaining else { throw .badOption }
            let data = try rdata.readBytes(optionLength)
            if keepOptions { options.append(EDNSOption(code: code, data: Array(data))) }
            guard version == 0 else { continue }
            switch code {
            case .nsid:
                nsidRequested = true
            case .clientSubnet:
                guard clientSubnet == nil else { throw .badClientSubnet("more than one ECS option") }
                clientSubnet = try ClientSubnet(optionData: data)
            case .cookie:
                // 8 bytes client cookie, optionally followed by an 8–32 byte server cookie.
                guard optionLength == 8 || (16...40).contains(optionLength) else { throw .badCookie }
                cookie = Array(data)
            default:
                break
            }
        }
    }
}

/// The EDNS Client Subnet option (RFC 7871 §6).
public struct ClientSubnet: Hashable, Sendable {
    public var family: IPAddress.Family
    public var sourcePrefixLength: UInt8
    public var scopePrefixLength: UInt8
    /// The address, masked to the source prefix.
    public var address: IPAddress

    public init(address: IPAddress, sourcePrefixLength: UInt8, scopePrefixLength: UInt8 = 0) {
        self.family = address.family
        self.sourcePrefixLength = sourcePrefixLength
        self.scopePrefixLength = scopePrefixLength
        self.address = address.masked(to: Int(sourcePrefixLength))
    }

    /// Validates per RFC 7871 §6: known family, prefix within the family's length, exactly
    /// ceil(SOURCE/8) address octets, and no bits set beyond SOURCE. Any violation is FORMERR.
    public init(optionData data: UnsafeRawBufferPointer) throws(WireError) {
        guard data.count >= 4 else { throw .badClientSubnet("option shorter than 4 octets") }
        let familyValue = UInt16(data[0]) << 8 | UInt16(data[1])
        guard let family = IPAddress.Family(rawValue: familyValue) else {
            throw .badClientSubnet("unknown address family \(familyValue)")
        }
        let source = Int(data[2])
        let scope = Int(data[3])
        guard source <= family.bitLength else {
            throw .badClientSubnet("source prefix /\(source) longer than the address")
        }
        guard scope <= family.bitLength else {
            throw .badClientSubnet("scope prefix /\(scope) longer than the address")
        }
        let addressBytes = data[4...]
        guard addressBytes.count == (source + 7) / 8 else {
            throw .badClientSubnet("\(addressBytes.count) address octets for a /\(source) prefix")
        }
        guard let address = IPAddress(family: family, bytes: addressBytes) else {
            throw .badClientSubnet("address too long")
        }
        guard address.masked(to: source) == address else {
            throw .badClientSubnet("address bits set beyond the source prefix")
        }
        self.family = family
        self.sourcePrefixLength = UInt8(source)
        self.scopePrefixLength = UInt8(scope)
        self.address = address
    }

    /// OPTION-DATA: FAMILY, SOURCE, SCOPE, ADDRESS truncated to SOURCE (RFC 7871 §6).
    public func encodeData(into writer: inout WireWriter) {
        writer.writeUInt16(family.rawValue)
        writer.writeUInt8(sourcePrefixLength)
        writer.writeUInt8(scopePrefixLength)
        let count = (Int(sourcePrefixLength) + 7) / 8
        switch address {
        case .v4(let value):
            for index in 0..<count { writer.writeUInt8(UInt8(truncatingIfNeeded: value >> (24 - 8 * index))) }
        case .v6(let high, let low):
            for index in 0..<count {
                let word = index < 8 ? high : low
                writer.writeUInt8(UInt8(truncatingIfNeeded: word >> (56 - 8 * (index % 8))))
            }
        }
    }

    public var encodedLength: Int { 4 + (Int(sourcePrefixLength) + 7) / 8 }
}
