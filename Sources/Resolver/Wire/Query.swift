/// A decoded query: the header, its single question and its EDNS facts.
///
/// Decoding is the only place untrusted bytes are interpreted; everything downstream works
/// on this validated value.
public struct Query: Sendable {
    public var header: Header
    public var question: Question
    public var edns: EDNS?

    public init(header: Header, question: Question, edns: EDNS? = nil) {
        self.header = header
        self.question = question
        self.edns = edns
    }

    /// Decodes the rest of a query whose header has been read.
    ///
    /// - Throws: `WireError` for anything RFC 1035 / RFC 6891 calls malformed: QDCOUNT ≠ 1,
    ///   truncated records, OPT outside the additional section, two OPTs, or an OPT whose owner
    ///   is not the root (RFC 6891 §6.1.1).
    public init(header: Header, body reader: inout WireReader, keepOptions: Bool = false) throws(WireError) {
        guard header.questionCount == 1 else { throw .badQuestionCount }
        self.header = header
        self.question = try Question(from: &reader)
        self.edns = try Self.readEDNS(header: header, records: &reader, keepOptions: keepOptions)
    }

    /// Reads the records after the question section and returns the OPT record's facts.
    /// An OPT outside the additional section, two of them, or one not owned by the root is
    /// malformed (RFC 6891 §6.1.1).
    static func readEDNS(header: Header, records reader: inout WireReader, keepOptions: Bool) throws(WireError) -> EDNS? {
        var edns: EDNS?
        let otherRecords = Int(header.answerCount) + Int(header.authorityCount)
        for _ in 0..<otherRecords {
            _ = try reader.readName()
            let type = RRType(rawValue: try reader.readUInt16())
            guard type != .opt else { throw .misplacedOPT }
            try reader.skip(6)
            try reader.skip(Int(try reader.readUInt16()))
        }
        for _ in 0..<header.additionalCount {
            let owner = try reader.readName()
            let type = RRType(rawValue: try reader.readUInt16())
            if type == .opt {
                guard edns == nil else { throw .duplicateOPT }
                guard owner.isRoot else { throw .badOPTOwner }
                edns = try EDNS(afterType: &reader, keepOptions: keepOptions)
            } else {
                // TSIG and anything else in the additional section is not for us.
                try reader.skip(6)
                try reader.skip(Int(try reader.readUInt16()))
            }
        }
        return edns
    }

    /// The EDNS of a query with no question that carries a COOKIE option: a client asking for
    /// a server cookie (RFC 7873 §5.4). Nil for anything else.
    public static func cookieRequest(header: Header, body reader: inout WireReader) -> EDNS? {
        guard header.questionCount == 0, header.opcode == .query,
              let edns = try? readEDNS(header: header, records: &reader, keepOptions: false),
              edns.version == 0, edns.cookie != nil else { return nil }
        return edns
    }

    /// Decodes a whole query packet.
    public static func decode(_ bytes: UnsafeRawBufferPointer, keepOptions: Bool = true) throws(WireError) -> Query {
        var reader = WireReader(bytes)
        let header = try Header(from: &reader)
        return try Query(header: header, body: &reader, keepOptions: keepOptions)
    }

    /// Encodes a query (used by tests, the benchmark load generator and health probes).
    public func encode(into writer: inout WireWriter) {
        var header = self.header
        header.questionCount = 1
        header.answerCount = 0
        header.authorityCount = 0
        header.additionalCount = edns == nil ? 0 : 1
        header.encode(into: &writer)
        writer.writeName(question.name, compress: false)
        writer.writeUInt16(question.type.rawValue)
        writer.writeUInt16(question.rrClass.rawValue)
        if let edns {
            writer.writeUInt8(0)
            writer.writeUInt16(RRType.opt.rawValue)
            writer.writeUInt16(edns.udpPayloadSize)
            writer.writeUInt8(edns.extendedRCode)
            writer.writeUInt8(edns.version)
            writer.writeUInt16(edns.dnssecOK ? 0x8000 : 0)
            let lengthAt = writer.count
            writer.writeUInt16(0)
            for option in edns.options {
                writer.writeUInt16(option.code.rawValue)
                writer.writeUInt16(UInt16(option.data.count))
                writer.writeBytes(option.data)
            }
            writer.patchUInt16(UInt16(writer.count - lengthAt - 2), at: lengthAt)
        }
    }

    public var wire: [UInt8] {
        var writer = WireWriter(capacity: 512)
        encode(into: &writer)
        return writer.bytes
    }
}
