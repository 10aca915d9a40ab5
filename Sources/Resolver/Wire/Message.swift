/// A resource record as decoded from a message, with names in its RDATA expanded so that
/// two encodings of the same record compare equal.
public struct Record: Hashable, Sendable, CustomStringConvertible {
    public var name: DNSName
    public var type: RRType
    public var rrClass: RRClass
    public var ttl: UInt32
    public var rdata: [UInt8]

    public init(name: DNSName, type: RRType, rrClass: RRClass = .in, ttl: UInt32, rdata: [UInt8]) {
        self.name = name
        self.type = type
        self.rrClass = rrClass
        self.ttl = ttl
        self.rdata = rdata
    }

    public var description: String {
        "\(name.text) \(ttl) \(type) \(rdata.map { String($0, radix: 16) }.joined(separator: " "))"
    }
}

/// A whole decoded message: what tests and tools read back from a server.
public struct Message: Sendable {
    public var header: Header
    public var questions: [Question]
    public var answer: [Record]
    public var authority: [Record]
    /// Additional records other than OPT.
    public var additional: [Record]
    public var edns: EDNS?

    public var rcode: ResponseCode {
        ResponseCode(rawValue: UInt16(edns?.extendedRCode ?? 0) << 4 | UInt16(header.rcodeLow))
    }

    public init(_ bytes: UnsafeRawBufferPointer) throws(WireError) {
        var reader = WireReader(bytes)
        header = try Header(from: &reader)
        questions = []
        for _ in 0..<header.questionCount { questions.append(try Question(from: &reader)) }
        answer = []
        authority = []
        additional = []
        edns = nil
        for _ in 0..<header.answerCount { answer.append(try Self.readRecord(&reader, bytes)) }
        for _ in 0..<header.authorityCount { authority.append(try Self.readRecord(&reader, bytes)) }
        for _ in 0..<header.additionalCount {
            let start = reader.offset
            let owner = try reader.readName()
            if RRType(rawValue: try reader.readUInt16()) == .opt {
                guard edns == nil else { throw .duplicateOPT }
                guard owner.isRoot else { throw .badOPTOwner }
                edns = try EDNS(afterType: &reader, keepOptions: true)
            } else {
                reader = WireReader(bytes, offset: start)
                additional.append(try Self.readRecord(&reader, bytes))
            }
        }
    }

    public init(_ bytes: [UInt8]) throws(WireError) {
        let result: Result<Message, WireError> = bytes.withUnsafeBytes { raw in
            do throws(WireError) { return .success(try Message(raw)) } catch { return .failure(error) }
        }
        self = try result.get()
    }

    static func readRecord(_ reader: inout WireReader, _ message: UnsafeRawBufferPointer) throws(WireError) -> Record {
        let name = try reader.readName()
        let type = RRType(rawValue: try reader.readUInt16())
        let rrClass = RRClass(rawValue: try reader.readUInt16())
        let ttl = try reader.readUInt32()
        let length = Int(try reader.readUInt16())
        let rdataStart = reader.offset
        try reader.skip(length)
        let rdataEnd = reader.offset
        var rdata: [UInt8]
        if type.hasCompressibleRDATA {
            // Re-read the RDATA in the context of the whole message to follow pointers.
            var inner = WireReader(message, offset: rdataStart)
            rdata = []
            for field in RDataLayout.fields(of: type) {
                switch field {
                case .name: rdata.append(contentsOf: try inner.readName().wire)
                case .fixed(let count): rdata.append(contentsOf: try inner.readBytes(count))
                }
            }
            guard inner.offset == rdataEnd else { throw .truncated }
        } else {
            rdata = Array(UnsafeRawBufferPointer(rebasing: message[rdataStart..<rdataEnd]))
        }
        return Record(name: name, type: type, rrClass: rrClass, ttl: ttl, rdata: rdata)
    }
}

/// The shape of RDATA for the RFC 1035 types whose names are compressed.
enum RDataLayout {
    enum Field { case name, fixed(Int) }

    static func fields(of type: RRType) -> [Field] {
        switch type {
        case .ns, .md, .mf, .cname, .mb, .mg, .mr, .ptr: return [.name]
        case .mx: return [.fixed(2), .name]
        case .soa: return [.name, .name, .fixed(20)]
        case .minfo: return [.name, .name]
        default: return []
        }
    }
}
