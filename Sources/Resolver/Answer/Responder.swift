import Scoring

/// How a query arrived; it decides the size limit (RFC 1035 §4.2.1, RFC 7766 §8).
public enum Transport: String, Sendable {
    case udp
    case tcp
}

/// Everything a response depends on that is not in the query: the published state and
/// where the query came from.
public struct RequestContext: Sendable {
    public var transport: Transport
    /// The source address of the packet; the ECS address takes its place for selection.
    public var source: IPAddress?

    /// Seconds on the steering clock, injected by tests; nil means "read the clock", which is
    /// done only for the queries that need it (service names), not for static answers.
    public var injectedNow: Double?
    /// A per-transport query counter for the round-robin and weighted baselines.
    public var sequence: UInt64

    public init(transport: Transport, source: IPAddress? = nil, now: Double? = nil, sequence: UInt64 = 0) {
        self.transport = transport
        self.source = source
        self.injectedNow = now
        self.sequence = sequence
    }

    public var now: Double { injectedNow ?? SteeringClock.now() }
}

/// Turns one query packet into one response packet: the whole of answering, with no
/// sockets. Each transport handler owns one, so its buffers are reused and never shared.
public struct Responder {
    /// The largest UDP response we send whatever the client offers: the DNS Flag Day 2020
    /// value, which avoids IP fragmentation on almost every path.
    public static let maxUDPPayload = 1232
    /// Sent in our OPT record as our own receive size.
    public static let advertisedUDPPayload: UInt16 = 1232

    public private(set) var writer = WireWriter(capacity: 65_535 + 2)
    private var resolution = Resolution()

    public init() {}

    /// The response bytes of the last call that returned true.
    public var response: [UInt8] { writer.bytes }

    /// Answers `packet`. Returns false when nothing must be sent: the packet is shorter than
    /// a header, or is itself a response (QR=1), which must never be answered (RFC 8906 §3.1).
    public mutating func respond(to packet: UnsafeRawBufferPointer, context: RequestContext,
                                 state: ServingState) -> Bool {
        rcode = .noError
        sawECS = false
        let answered = answer(packet, context: context, state: state)
        if answered {
            state.metrics.query(transport: context.transport, rcode: rcode, ecs: sawECS)
        } else {
            state.metrics.drop()
        }
        return answered
    }

    /// The RCODE of the last response, and whether its query carried ECS (for metrics).
    public private(set) var rcode: ResponseCode = .noError
    private var sawECS = false

    private mutating func answer(_ packet: UnsafeRawBufferPointer, context: RequestContext,
                                 state: ServingState) -> Bool {
        writer.reset()
        var reader = WireReader(packet)
        guard let header = try? Header(from: &reader), !header.isResponse else { return false }

        guard header.opcode == .query else {
            // RFC 8906 §3.1.4: NOTIMP, all other flags clear, no records.
            var reply = Header(id: header.id)
            reply.isResponse = true
            reply.opcode = header.opcode
            reply.rcodeLow = UInt8(ResponseCode.notImp.rawValue)
            reply.encode(into: &writer)
            rcode = .notImp
            return true
        }

        let query: Query
        do {
            query = try Query(header: header, body: &reader)
        } catch {
            writeFormErr(header)
            return true
        }

        if let edns = query.edns, edns.version > 0 {
            // RFC 6891 §6.1.3: BADVERS with our version (0), no options interpreted or echoed.
            resolution.reset()
            resolution.rcode = .badVers
            encode(query: query, options: ResponseOptions(), limit: Self.maxUDPPayload)
            return true
        }

        resolution.reset()
        let question = query.question
        if question.type == .opt {
            writeFormErr(header)
            return true
        }
        if question.rrClass == .in, let service = state.services[question.name] {
            state.answerService(service, question: question, client: Self.client(of: query, context: context),
                                now: context.now, sequence: context.sequence, into: &resolution)
        } else if question.rrClass == .chaos, question.type == .txt, let identity = state.chaos[question.name] {
            // As NSD answers them: AA clear (there is no CH zone), TTL 0; any other type or
            // name in class CH is REFUSED below.
            resolution.answer.append(SectionEntry(owner: question.name, rrset: identity))
        } else if question.rrClass != .in || question.type == .axfr || question.type == .ixfr
            || !state.catalog.answer(question, into: &resolution) {
            // Not ours, or zone transfer (not offered): REFUSED (RFC 8906 §3.1.3.1).
            resolution.reset()
            resolution.rcode = .refused
        }

        var options = ResponseOptions()
        if let edns = query.edns {
            if edns.nsidRequested, let nsid = state.nsid { options.nsid = nsid }
            if var subnet = edns.clientSubnet {
                // RFC 7871 §7.2.1: echo FAMILY, SOURCE and ADDRESS; SCOPE is what the answer
                // depended on, never more than the client revealed.
                subnet.scopePrefixLength = min(resolution.scopePrefixLength, subnet.sourcePrefixLength)
                options.clientSubnet = subnet
            }
        }
        let limit: Int
        switch context.transport {
        case .tcp:
            limit = 65_535
        case .udp:
            let offered = Int(query.edns?.udpPayloadSize ?? 512)
            limit = query.edns == nil ? 512 : min(max(offered, 512), Self.maxUDPPayload)
        }
        encode(query: query, options: options, limit: limit)
        return true
    }

    /// The client selection is for: the ECS address and source prefix when the query has
    /// one (RFC 7871 §7.1), else the packet's source address.
    static func client(of query: Query, context: RequestContext) -> Client {
        if let subnet = query.edns?.clientSubnet {
            return Client(address: subnet.address, prefixLength: Int(subnet.sourcePrefixLength))
        }
        if let source = context.source { return Client(address: source) }
        return Client(address: .v4(0), prefixLength: 0)
    }

    struct ResponseOptions {
        var nsid: [UInt8]? = nil
        var clientSubnet: ClientSubnet? = nil

        /// Bytes of OPT RDATA these options take.
        var length: Int {
            (nsid.map { 4 + $0.count } ?? 0) + (clientSubnet.map { 4 + $0.encodedLength } ?? 0)
        }
    }

    /// FORMERR for a query we could not decode: the header echoed with counts cleared
    /// (the question may be what was malformed).
    private mutating func writeFormErr(_ header: Header) {
        rcode = .formErr
        writer.reset()
        var reply = Header(id: header.id)
        reply.isResponse = true
        reply.opcode = header.opcode
        reply.recursionDesired = header.recursionDesired
        reply.rcodeLow = UInt8(ResponseCode.formErr.rawValue)
        reply.encode(into: &writer)
    }

    /// Encodes `resolution` for `query` within `limit` bytes.
    ///
    /// If an answer or authority RRset does not fit, the response is cut back to header,
    /// question and OPT with TC=1 (RFC 2181 §9, RFC 7766 §5: the client retries over TCP). An
    /// additional RRset that does not fit is left out without TC.
    private mutating func encode(query: Query, options: ResponseOptions, limit: Int) {
        rcode = resolution.rcode
        sawECS = query.edns?.clientSubnet != nil
        writer.reset()
        var header = Header(id: query.header.id, questionCount: 1)
        header.isResponse = true
        header.opcode = .query
        header.authoritative = resolution.authoritative
        // RD and CD are copied (RFC 1035 §4.1.1, RFC 4035 §3.2.2); RA, Z, AD stay clear.
        header.recursionDesired = query.header.recursionDesired
        header.checkingDisabled = query.header.checkingDisabled
        header.rcodeLow = UInt8(resolution.rcode.rawValue & 0xF)
        header.encode(into: &writer)
        writer.writeName(query.question.name)
        writer.writeUInt16(query.question.type.rawValue)
        writer.writeUInt16(query.question.rrClass.rawValue)
        let afterQuestion = writer.count

        let optLength = query.edns == nil ? 0 : 11 + options.length
        let budget = limit - optLength
        var counts: (answer: UInt16, authority: UInt16, additional: UInt16) = (0, 0, 0)
        var truncated = false
        if let written = write(resolution.answer, budget: budget), let authority = write(resolution.authority, budget: budget) {
            counts = (written, authority, writeAdditional(budget: budget))
        } else {
            truncated = true
            writer.truncate(to: afterQuestion)
        }
        if let edns = query.edns {
            writeOPT(dnssecOK: edns.dnssecOK, options: options)
            counts.additional += 1
        }
        writer.patchUInt16(counts.answer, at: 6)
        writer.patchUInt16(counts.authority, at: 8)
        writer.patchUInt16(counts.additional, at: 10)
        if truncated { writer.patchUInt16(header.flags | 0x0200, at: 2) }
    }

    /// Writes a required section; nil when it does not fit in `budget` bytes.
    private mutating func write(_ entries: [SectionEntry], budget: Int) -> UInt16? {
        var count: UInt16 = 0
        for entry in entries {
            count += entry.rrset.encode(owner: entry.owner, ttl: entry.ttl, into: &writer)
            if writer.count > budget { return nil }
        }
        return count
    }

    /// Writes additional RRsets while they fit; the first that does not is left out, with
    /// everything after it (RFC 2181 §9: no TC for additional data).
    private mutating func writeAdditional(budget: Int) -> UInt16 {
        var count: UInt16 = 0
        for entry in resolution.additional {
            let before = writer.count
            let written = entry.rrset.encode(owner: entry.owner, ttl: entry.ttl, into: &writer)
            if writer.count > budget {
                writer.truncate(to: before)
                break
            }
            count += written
        }
        return count
    }

    /// Our OPT record (RFC 6891 §6.1.2), carrying the upper bits of an extended RCODE.
    private mutating func writeOPT(dnssecOK: Bool, options: ResponseOptions) {
        writer.writeUInt8(0)
        writer.writeUInt16(RRType.opt.rawValue)
        writer.writeUInt16(Self.advertisedUDPPayload)
        writer.writeUInt8(UInt8(resolution.rcode.rawValue >> 4))
        writer.writeUInt8(0)
        // DO is echoed (RFC 3225 §3); the other flag bits are cleared (RFC 6891 §6.1.4).
        writer.writeUInt16(dnssecOK ? 0x8000 : 0)
        writer.writeUInt16(UInt16(options.length))
        if let nsid = options.nsid {
            writer.writeUInt16(EDNSOptionCode.nsid.rawValue)
            writer.writeUInt16(UInt16(nsid.count))
            writer.writeBytes(nsid)
        }
        if let subnet = options.clientSubnet {
            writer.writeUInt16(EDNSOptionCode.clientSubnet.rawValue)
            writer.writeUInt16(UInt16(subnet.encodedLength))
            subnet.encodeData(into: &writer)
        }
    }
}
