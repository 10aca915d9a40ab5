/// The 12-octet message header (RFC 1035 §4.1.1), with the AD and CD bits of RFC 4035 §3.2.
public struct Header: Hashable, Sendable {
    public var id: UInt16
    /// QR, OPCODE, AA, TC, RD, RA, Z, AD, CD and the low four bits of RCODE.
    public var flags: UInt16
    public var questionCount: UInt16
    public var answerCount: UInt16
    public var authorityCount: UInt16
    public var additionalCount: UInt16

    public static let length = 12

    public init(id: UInt16 = 0, flags: UInt16 = 0, questionCount: UInt16 = 0, answerCount: UInt16 = 0,
                authorityCount: UInt16 = 0, additionalCount: UInt16 = 0) {
        self.id = id
        self.flags = flags
        self.questionCount = questionCount
        self.answerCount = answerCount
        self.authorityCount = authorityCount
        self.additionalCount = additionalCount
    }

    public init(from reader: inout WireReader) throws(WireError) {
        id = try reader.readUInt16()
        flags = try reader.readUInt16()
        questionCount = try reader.readUInt16()
        answerCount = try reader.readUInt16()
        authorityCount = try reader.readUInt16()
        additionalCount = try reader.readUInt16()
    }

    public func encode(into writer: inout WireWriter) {
        writer.writeUInt16(id)
        writer.writeUInt16(flags)
        writer.writeUInt16(questionCount)
        writer.writeUInt16(answerCount)
        writer.writeUInt16(authorityCount)
        writer.writeUInt16(additionalCount)
    }

    static let qrBit: UInt16 = 0x8000
    static let aaBit: UInt16 = 0x0400
    static let tcBit: UInt16 = 0x0200
    static let rdBit: UInt16 = 0x0100
    static let raBit: UInt16 = 0x0080
    static let zBit: UInt16 = 0x0040
    static let adBit: UInt16 = 0x0020
    static let cdBit: UInt16 = 0x0010

    private func bit(_ mask: UInt16) -> Bool { flags & mask != 0 }
    private mutating func set(_ mask: UInt16, _ on: Bool) { flags = on ? flags | mask : flags & ~mask }

    public var isResponse: Bool { get { bit(Self.qrBit) } set { set(Self.qrBit, newValue) } }
    public var authoritative: Bool { get { bit(Self.aaBit) } set { set(Self.aaBit, newValue) } }
    public var truncated: Bool { get { bit(Self.tcBit) } set { set(Self.tcBit, newValue) } }
    public var recursionDesired: Bool { get { bit(Self.rdBit) } set { set(Self.rdBit, newValue) } }
    public var recursionAvailable: Bool { get { bit(Self.raBit) } set { set(Self.raBit, newValue) } }
    public var z: Bool { get { bit(Self.zBit) } set { set(Self.zBit, newValue) } }
    public var authenticData: Bool { get { bit(Self.adBit) } set { set(Self.adBit, newValue) } }
    public var checkingDisabled: Bool { get { bit(Self.cdBit) } set { set(Self.cdBit, newValue) } }

    public var opcode: OpCode {
        get { OpCode(rawValue: UInt8((flags >> 11) & 0xF)) }
        set { flags = (flags & ~0x7800) | (UInt16(newValue.rawValue & 0xF) << 11) }
    }

    /// The low four bits of the response code; the rest travel in OPT.
    public var rcodeLow: UInt8 {
        get { UInt8(flags & 0xF) }
        set { flags = (flags & ~0xF) | UInt16(newValue & 0xF) }
    }
}

/// One entry of the question section (RFC 1035 §4.1.2).
public struct Question: Hashable, Sendable {
    public var name: DNSName
    public var type: RRType
    public var rrClass: RRClass

    public init(name: DNSName, type: RRType, rrClass: RRClass = .in) {
        self.name = name
        self.type = type
        self.rrClass = rrClass
    }

    public init(from reader: inout WireReader) throws(WireError) {
        name = try reader.readName()
        type = RRType(rawValue: try reader.readUInt16())
        rrClass = RRClass(rawValue: try reader.readUInt16())
    }
}
