import Scoring

/// What the fast path (`Responder.respondFast`) reads of a query, taken from its bytes
/// without decoding it into values: the common shape only, one question of class IN with an
/// uncompressed name and at most an OPT record of version 0. A pure function of the packet
/// and its source address (`parse(_:source:into:)`).
///
/// A UDP worker parses a whole batch first and answers it after (`Responder.prepare`), so
/// that what answering a datagram will read can be fetched while the others are parsed.
struct FastQuery {
    // Offsets and sizes as 16 bits (a datagram is under 64 KiB): a UDP worker keeps a batch's
    // worth, and copies of a smaller value are a few moves instead of a `memcpy` call.

    /// The header's second 16 bits (QR, OPCODE, AA, TC, RD, RA, Z, AD, CD, RCODE).
    var flags: UInt16
    var qtype: UInt16
    /// Where the question's name ends (after its root label) and the question ends.
    var nameEnd: UInt16
    var questionEnd: UInt16
    /// The OPT record's UDP payload size, at least 512 (512 without OPT).
    var payload: UInt16 = 512
    /// An OPT record was present (RFC 6891), with the DO bit set or not.
    var edns = false
    var dnssecOK = false
    /// The query asked for the server's NSID (RFC 5001), which only the general path writes.
    var asksNSID = false
    /// Where a valid ECS option's OPTION-DATA is in the packet (length 0: none). An answer
    /// echoes those bytes with the scope set (RFC 7871 §7.2.1: FAMILY, SOURCE PREFIX-LENGTH
    /// and ADDRESS as the query's; `ClientSubnet` accepts only the one encoding of each).
    var subnetStart: UInt16 = 0
    var subnetLength: UInt8 = 0
    /// The client the ECS option stands for (`Responder.client(subnet:source:)`).
    var ecsClient: Client? = nil
    var ecsUsed = false

    var hasSubnet: Bool { subnetLength > 0 }

    /// A blank to parse into.
    init() { (flags, qtype, nameEnd, questionEnd) = (0, 0, 0, 0) }

    init(flags: UInt16, qtype: UInt16, nameEnd: UInt16, questionEnd: UInt16) {
        (self.flags, self.qtype, self.nameEnd, self.questionEnd) = (flags, qtype, nameEnd, questionEnd)
    }

    /// Reads `packet`, which came from `source`, into `query`; false (and `query` left
    /// unspecified) for anything the fast path leaves to the general path: not a plain query,
    /// a pointer or an over-long name in the question, a class other than IN, another record
    /// than OPT, a malformed OPT or ECS option, a COOKIE (RFC 7873).
    ///
    /// Into a value the caller has, rather than returned: a UDP worker parses a batch into the
    /// elements of an array, and building each in a temporary to copy it over read back what
    /// had just been written (a store-forwarding stall per datagram, in perf annotate).
    static func parse(_ packet: UnsafeRawBufferPointer, source: IPAddress?, into query: inout FastQuery) -> Bool {
        let count = packet.count
        guard count >= Header.length + 5 else { return false }
        @inline(__always) func u16(_ at: Int) -> Int { Int(packet[at]) << 8 | Int(packet[at + 1]) }
        let flags = UInt16(u16(2))
        // A query (QR=0) with OPCODE QUERY, one question and nothing but an optional OPT.
        guard flags & 0xF800 == 0, u16(4) == 1, u16(6) == 0, u16(8) == 0 else { return false }
        let additional = u16(10)
        guard additional <= 1 else { return false }

        // QNAME: labels only (a pointer in a question is legal but rare; the general path
        // handles it), within RFC 1035's limits.
        var offset = Header.length
        while true {
            guard offset < count else { return false }
            let length = Int(packet[offset])
            offset += 1
            if length == 0 { break }
            guard length <= DNSName.maxLabelLength else { return false }
            offset += length
        }
        let nameEnd = offset
        guard nameEnd - Header.length <= DNSName.maxWireLength, offset + 4 <= count else { return false }
        guard u16(offset + 2) == Int(RRClass.in.rawValue) else { return false }
        query = FastQuery(flags: flags, qtype: UInt16(u16(offset)), nameEnd: UInt16(nameEnd), questionEnd: UInt16(offset + 4))
        guard additional == 1 else { return true }

        // OPT (RFC 6891 §6.1.2): owner root, version 0; options walked for ECS only.
        offset += 4
        guard offset + 11 <= count, packet[offset] == 0, u16(offset + 1) == Int(RRType.opt.rawValue),
              packet[offset + 6] == 0 else { return false }
        query.edns = true
        query.payload = UInt16(max(u16(offset + 3), 512))
        query.dnssecOK = packet[offset + 7] & 0x80 != 0
        var option = offset + 11
        let end = option + u16(offset + 9)
        guard end <= count else { return false }
        while option < end {
            guard end - option >= 4 else { return false }
            let code = UInt16(u16(option))
            let length = u16(option + 2)
            option += 4
            guard length <= end - option else { return false }
            switch EDNSOptionCode(rawValue: code) {
            case .clientSubnet:
                // A valid option has 4 to 20 bytes.
                guard !query.hasSubnet,
                      let parsed = try? ClientSubnet(optionData: UnsafeRawBufferPointer(rebasing: packet[option..<(option + length)]))
                else { return false }
                (query.subnetStart, query.subnetLength) = (UInt16(option), UInt8(length))
                let who = Responder.client(subnet: parsed, source: source)
                (query.ecsClient, query.ecsUsed) = (who.client, who.usedSubnet)
            case .cookie:
                return false
            case .nsid:
                query.asksNSID = true
            default:
                break
            }
            option += length
        }
        return true
    }

    /// The bytes of the OPT record the fast path answers with: the general path's
    /// (`Responder.writeOPT`) for a query that asked for no NSID and sent no cookie.
    var optLength: Int { edns ? 11 + (hasSubnet ? 4 + Int(subnetLength) : 0) : 0 }
}
