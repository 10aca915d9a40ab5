import Scoring
#if canImport(Glibc)
import Glibc
#endif

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

    /// Seconds on the steering clock, read by the caller (a UDP worker, once per batch) or
    /// injected by tests; nil means "read the clock", which is done only for the queries that
    /// need it (service names), not for static answers.
    public var injectedNow: Double?
    /// A per-transport query counter for the round-robin and weighted baselines.
    public var sequence: UInt64

    /// Seconds since the epoch for server cookie timestamps, injected by tests; nil means
    /// "read the wall clock", done only for queries that carry a cookie.
    public var injectedWallClock: Int64?

    public init(transport: Transport, source: IPAddress? = nil, now: Double? = nil, sequence: UInt64 = 0,
                wallClock: Int64? = nil) {
        self.transport = transport
        self.source = source
        self.injectedNow = now
        self.sequence = sequence
        self.injectedWallClock = wallClock
    }

    public var now: Double { injectedNow ?? SteeringClock.now() }
    public var wallClock: Int64 { injectedWallClock ?? Int64(time(nil)) }
}

/// Turns one query packet into one response packet: the whole of answering, with no
/// sockets. Each transport handler owns one, so its buffers are reused and never shared.
public struct Responder {
    /// The largest UDP response we send whatever the client offers: the DNS Flag Day 2020
    /// value, which avoids IP fragmentation on almost every path.
    public static let maxUDPPayload = 1232
    /// Sent in our OPT record as our own receive size.
    public static let advertisedUDPPayload: UInt16 = 1232

    public internal(set) var writer = WireWriter(capacity: 65_535 + 2)
    var resolution = Resolution()
    /// Decisions to reuse for a client's next queries (the fast path's service answers).
    var memo: DecisionMemo
    /// The state whose services the memo's decisions name (by index), so that the renewals
    /// the memo holds are handed to the right bindings after a reload; and when they are
    /// handed over next at the latest.
    var memoOwner: ServingState?
    var nextHandOver: Double = 0
    /// The first memo slot the next partial hand-over looks at.
    var handOverCursor = 0
    /// Renewals on their way to the affinity table, kept for its capacity.
    var renewals: [AffinityTable.Renewal] = []
    /// Static answers of the general path kept for the fast path.
    var cache: AnswerCache
    /// The question end and type of a query the fast path parsed but could not answer.
    var uncached: (nameEnd: Int, type: UInt16)?
    /// False answers every query the general way: the reference the fast path is compared
    /// with in tests and benchmarks.
    public var usesCompiledAnswers = true
    /// Queries answered from compiled answers (`respondFast`) without a decision: static
    /// answers and reused ones. For tests and benchmarks.
    public internal(set) var compiledAnswers = 0
    /// Service queries decided by the fast path and answered from the chosen site's template.
    public internal(set) var decidedAnswers = 0
    /// The decision the fast path made for the current query when it then left the query to
    /// the general path, which renders it (`ServingState.answerService(decided:)`).
    var decided: (service: Int, made: ServiceDecision)?
    /// The arrays of the last decision the fast path answered, lent to the next one, so that
    /// deciding allocates nothing (`DecisionStorage`).
    var decisionStorage: DecisionStorage
    /// The query counts of both paths and the fast path's answer counts, not yet added to the
    /// state's ledger and metrics.
    var pending = PendingCounts()
    /// True leaves them to the caller's `flushCounts(to:)`, due before the responder answers
    /// from another state (a UDP worker: after each batch); false flushes after each answer.
    public var defersCounts = false

    /// `memoCapacity`: client decisions remembered for reuse (a UDP worker's: `UDPWorkers.
    /// memoSlots`); 0 for none: a TCP connection asks rarely and must not hold megabytes for it.
    public init(memoCapacity: Int = 1 << 15) {
        memo = DecisionMemo(capacity: memoCapacity)
        // 4 096 answers of up to 512 bytes (3 MB) per UDP worker; none for a TCP connection.
        cache = AnswerCache(capacity: memoCapacity > 0 ? 1 << 12 : 0)
        // A UDP worker keeps every service's compute delays (a table of every site, 32 bytes
        // each); a TCP connection only those of large services, as any decision does.
        decisionStorage = DecisionStorage(keepingDelaysFrom: memoCapacity > 0 ? 1 : DecisionStorage.largeService)
    }

    /// The response bytes of the last call that returned true.
    public var response: [UInt8] { writer.bytes }

    /// Answers `packet`. Returns false when nothing must be sent: the packet is shorter than
    /// a header, or is itself a response (QR=1), which must never be answered (RFC 8906 §3.1),
    /// or response rate limiting drops it.
    public mutating func respond(to packet: UnsafeRawBufferPointer, context: RequestContext,
                                 state: ServingState) -> Bool {
        begin()
        if usesCompiledAnswers, state.rateLimiter == nil, let query = prepare(packet, source: context.source),
           let answer = respondFast(packet, query: query, context: context, state: state, capacity: .max) {
            let (tails, ttlOffsets) = (tails(of: answer, state: state), state.answers.ttlOffsets)
            writer.replaceAll(count: answer.length) { out in
                tails.withUnsafeBytes { tails in
                    ttlOffsets.withUnsafeBufferPointer {
                        Self.write(answer, query: query, packet: packet, tails: tails, ttlOffsets: $0, into: out)
                    }
                }
            }
            if !defersCounts { pending.flush(to: state) }
            return true
        }
        return respondGeneral(packet, context: context, state: state)
    }

    /// As `respond(to:context:state:)`, with the response written into `reply`: its length,
    /// or nil when nothing must be sent. `query` is the packet as `prepare` read it (nil: it
    /// is not for the fast path). A UDP worker answers a batch this way, prepared first; the
    /// fast path writes straight into the datagram's buffer.
    mutating func respond(to packet: UnsafeRawBufferPointer, prepared query: FastQuery?, context: RequestContext,
                          state: ServingState, into reply: UnsafeMutableRawBufferPointer) -> Int? {
        begin()
        if usesCompiledAnswers, state.rateLimiter == nil, let query,
           let answer = respondFast(packet, query: query, context: context, state: state, capacity: reply.count) {
            write(answer, query: query, packet: packet, state: state, into: reply)
            if !defersCounts { pending.flush(to: state) }
            return answer.length
        }
        guard respondGeneral(packet, context: context, state: state) else { return nil }
        return copyResponse(to: reply)
    }

    /// Forgets what the last query left behind. The references only when there are any: the
    /// fast path leaves them nil, and clearing them anyway was two calls per answer.
    @inline(__always)
    private mutating func begin() {
        rcode = .noError
        sawECS = false
        cookie = .absent
        if limitName != nil { limitName = nil }
        early = nil
        if decided != nil { decided = nil }
    }

    /// The general path: decodes the query into values and answers it into `writer`.
    private mutating func respondGeneral(_ packet: UnsafeRawBufferPointer, context: RequestContext,
                                         state: ServingState) -> Bool {
        lastComplete = nil
        guard let kind = answer(packet, context: context, state: state) else {
            uncached = nil
            state.metrics.drop()
            return false
        }
        if uncached != nil { keepAnswer(packet, state: state) }
        state.metrics.cookie(cookie)
        if let action = early ?? rateLimit(kind, name: limitName, context: context, state: state) {
            switch action {
            case .send:
                break
            case .drop:
                state.metrics.drop()
                return false
            case .slip:
                // An empty TC=1 response: no amplification, and a real client retries over TCP.
                writer.truncate(to: questionEnd)
                writer.patchUInt16(0, at: 6)
                writer.patchUInt16(0, at: 8)
                writer.patchUInt16(0, at: 10)
                writer.patchUInt16(UInt16(writer.bytes[2]) << 8 | UInt16(writer.bytes[3]) | Header.tcBit, at: 2)
            }
        }
        pending.query(transport: context.transport, rcode: rcode, ecs: sawECS, compiled: false)
        if !defersCounts { pending.flush(to: state) }
        return true
    }

    /// Counts a response of class `kind` about `name` against its rate-limit bucket; nil when
    /// rate limiting does not apply. It applies to UDP only: over TCP the source address is
    /// proven by the handshake, and so it is by a valid server cookie (RFC 7873 §5.3).
    private func rateLimit(_ kind: ResponseClass, name: DNSName?, context: RequestContext,
                           state: ServingState) -> RateLimitAction? {
        guard context.transport == .udp, cookie != .valid, let limiter = state.rateLimiter,
              let source = context.source else { return nil }
        let action = limiter.account(key: limiter.key(client: source, kind: kind, name: name), now: context.now)
        state.metrics.rateLimited(action, kind: kind)
        return action
    }

    /// The rate-limit decision taken before answering a service name, so that an answer that
    /// will not be sent is not steered (it would count as load sent to a site).
    private var early: RateLimitAction?

    /// The RCODE of the last response, and whether its query carried ECS (for metrics).
    public internal(set) var rcode: ResponseCode = .noError
    private var sawECS = false
    /// What the last query's COOKIE option showed.
    public private(set) var cookie: CookieVerdict = .absent
    /// The name the last response counts against in rate limiting (RateLimiter.key).
    private var limitName: DNSName?
    /// Where the question of the last response ends (the header's end when it has none).
    var questionEnd = Header.length
    /// For the last response encoded with every section whole: its AA and RCODE bits, section
    /// counts (OPT not counted) and where its sections end.
    var lastComplete: (flags: UInt16, answer: UInt16, authority: UInt16, additional: UInt16, end: Int)?

    /// Writes the response to `packet` and returns its class for rate limiting; nil when
    /// nothing must be sent.
    private mutating func answer(_ packet: UnsafeRawBufferPointer, context: RequestContext,
                                 state: ServingState) -> ResponseClass? {
        writer.reset()
        questionEnd = Header.length
        var reader = WireReader(packet)
        guard let header = try? Header(from: &reader), !header.isResponse else { return nil }

        guard header.opcode == .query else {
            // RFC 8906 §3.1.4: NOTIMP, all other flags clear, no records.
            writeBare(header, rcode: .notImp, recursionDesired: false)
            return .error
        }

        if header.questionCount == 0 {
            var records = reader
            if let edns = Query.cookieRequest(header: header, body: &records) {
                // RFC 7873 §5.4: NOERROR, no question, and our server cookie.
                writeCookieOnly(header, edns: edns, context: context, state: state)
                return .error
            }
        }
        let query: Query
        do {
            query = try Query(header: header, body: &reader)
        } catch {
            // Malformed, QDCOUNT ≠ 1, two OPTs, an OPT not owned by the root, a bad ECS or
            // COOKIE option: FORMERR (RFC 1035 §4.1.1, RFC 6891 §6.1.1, RFC 7871 §7.1.1,
            // RFC 7873 §5.2.2).
            writeBare(header, rcode: .formErr, recursionDesired: header.recursionDesired)
            return .error
        }

        resolution.reset()
        if let edns = query.edns, edns.version > 0 {
            // RFC 6891 §6.1.3: BADVERS with our version (0); no option is interpreted and
            // nothing of the query's OPT is echoed (RFC 8906 §8.2.4).
            resolution.rcode = .badVers
            encode(query: query, options: ResponseOptions(), dnssecOK: false, limit: Self.maxUDPPayload)
            return .error
        }

        let question = query.question
        if question.type == .opt {
            writeBare(header, rcode: .formErr, recursionDesired: header.recursionDesired)
            return .error
        }
        var options = ResponseOptions()
        // Judged first: a valid cookie exempts the query from rate limiting.
        options.cookie = cookieOption(query.edns?.cookie, context: context, state: state)
        let client = Self.client(of: query, context: context)
        if question.rrClass == .in, let service = state.services[question.name] {
            let kind: ResponseClass = question.type == .a || question.type == .aaaa || question.type == .any ? .answer : .nodata
            early = rateLimit(kind, name: service.name, context: context, state: state)
            if early == nil || early == .send {
                let now = context.now
                let premade = decided.flatMap { $0.service == service.index ? $0.made : nil }
                decided = nil
                if let made = state.answerService(service, question: question, client: client.client, now: now,
                                                  sequence: context.sequence, decided: premade, into: &resolution) {
                    remember(made, service: service.index, client: client.client, now: now, state: state)
                }
            }
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

        if let edns = query.edns {
            if edns.nsidRequested, let nsid = state.nsid { options.nsid = nsid }
            if var subnet = edns.clientSubnet {
                // RFC 7871 §7.2.1: echo FAMILY, SOURCE and ADDRESS; SCOPE is what the answer
                // depended on, never more than the client revealed, and 0 when the ECS address
                // was not used or the answer is negative or a referral (the same for everyone).
                let scope = client.usedSubnet && !resolution.answer.isEmpty ? resolution.scopePrefixLength : 0
                subnet.scopePrefixLength = min(scope, subnet.sourcePrefixLength)
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
        encode(query: query, options: options, dnssecOK: query.edns?.dnssecOK ?? false, limit: limit)
        return classify(question)
    }

    /// The rate-limiting class of the resolution just encoded, and the name it counts against:
    /// NXDOMAIN and referrals count against the zone or delegation that produced them, so a
    /// flood of random names under one zone is limited as one (as in NSD and BIND).
    private mutating func classify(_ question: Question) -> ResponseClass {
        switch resolution.rcode {
        case .noError:
            if let first = resolution.answer.first {
                // The RRset's own owner: for an answer synthesized from a wildcard that is the
                // wildcard, so random names under it share one bucket (as in BIND and NSD).
                limitName = first.rrset.name
                return .answer
            }
            if !resolution.authoritative, let delegation = resolution.authority.first, delegation.rrset.type == .ns {
                limitName = delegation.owner
                return .referral
            }
            limitName = question.name
            return .nodata
        case .nxDomain:
            limitName = resolution.authority.first?.owner ?? question.name
            return .nxdomain
        default:
            return .error
        }
    }

    /// The client selection is for: the ECS address and source prefix when the query has
    /// one (RFC 7871 §7.1), else the packet's source address. An ECS option that reveals
    /// nothing (SOURCE /0) or names a private, loopback or link-local network, which says
    /// nothing about where the client is and may be forged (RFC 7871 §10), is set aside for
    /// the source address; the answer then has SCOPE 0.
    static func client(of query: Query, context: RequestContext) -> (client: Client, usedSubnet: Bool) {
        client(subnet: query.edns?.clientSubnet, source: context.source)
    }

    @inline(__always)
    static func client(subnet: ClientSubnet?, source: IPAddress?) -> (client: Client, usedSubnet: Bool) {
        if let subnet, subnet.sourcePrefixLength > 0, !subnet.address.isNonRoutable {
            return (Client(address: subnet.address, prefixLength: Int(subnet.sourcePrefixLength)), true)
        }
        if let source { return (Client(address: source), false) }
        return (Client(address: .v4(0), prefixLength: 0), false)
    }

    struct ResponseOptions {
        var nsid: [UInt8]? = nil
        var clientSubnet: ClientSubnet? = nil
        /// Client cookie and server cookie (RFC 7873 §4).
        var cookie: [UInt8]? = nil

        /// Bytes of OPT RDATA these options take.
        var length: Int {
            (nsid.map { 4 + $0.count } ?? 0) + (clientSubnet.map { 4 + $0.encodedLength } ?? 0)
                + (cookie.map { 4 + $0.count } ?? 0)
        }
    }

    /// A header-only response (FORMERR for a query we could not decode, NOTIMP for an opcode
    /// we do not serve): the ID and opcode echoed, counts cleared (the question may be what
    /// was malformed), every flag but QR (and RD for FORMERR) clear (RFC 8906 §3.1).
    private mutating func writeBare(_ header: Header, rcode: ResponseCode, recursionDesired: Bool) {
        self.rcode = rcode
        writer.reset()
        var reply = Header(id: header.id)
        reply.isResponse = true
        reply.opcode = header.opcode
        reply.recursionDesired = recursionDesired
        reply.rcodeLow = UInt8(rcode.rawValue)
        reply.encode(into: &writer)
    }

    /// Judges the query's COOKIE option (RFC 7873 §5.2) into `cookie` and returns the one to
    /// send back, nil when the query had none.
    private mutating func cookieOption(_ presented: [UInt8]?, context: RequestContext, state: ServingState) -> [UInt8]? {
        guard let presented else { return nil }
        let now = context.wallClock
        cookie = ServerCookie.verdict(presented, address: context.source, now: now, secrets: state.cookies)
        return ServerCookie.response(to: presented, verdict: cookie, address: context.source, now: now, secrets: state.cookies)
    }

    /// The answer to a cookie-only query: the header echoed (RD and CD copied) with no records
    /// but our OPT, holding the client cookie and a server cookie.
    private mutating func writeCookieOnly(_ header: Header, edns: EDNS, context: RequestContext, state: ServingState) {
        rcode = .noError
        writer.reset()
        var reply = Header(id: header.id, additionalCount: 1)
        reply.isResponse = true
        reply.recursionDesired = header.recursionDesired
        reply.checkingDisabled = header.checkingDisabled
        reply.encode(into: &writer)
        resolution.reset()
        var options = ResponseOptions()
        options.cookie = cookieOption(edns.cookie, context: context, state: state)
        writeOPT(dnssecOK: edns.dnssecOK, extendedRCode: 0, options: options)
    }

    /// Encodes `resolution` for `query` within `limit` bytes.
    ///
    /// If an answer or authority RRset does not fit, the response is cut back to header,
    /// question and OPT with TC=1 (RFC 2181 §9, RFC 7766 §5: the client retries over TCP). An
    /// additional RRset that does not fit is left out without TC.
    mutating func encode(query: Query, options: ResponseOptions, dnssecOK: Bool, limit: Int) {
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
        questionEnd = afterQuestion

        let optLength = query.edns == nil ? 0 : 11 + options.length
        let budget = limit - optLength
        var counts: (answer: UInt16, authority: UInt16, additional: UInt16) = (0, 0, 0)
        var truncated = false
        var complete = false
        if let written = write(resolution.answer, budget: budget), let authority = write(resolution.authority, budget: budget) {
            let additional = writeAdditional(budget: budget)
            counts = (written, authority, additional.records)
            complete = additional.complete
        } else {
            truncated = true
            writer.truncate(to: afterQuestion)
        }
        // Every section whole: what follows the question is the answer to (name, type) for
        // any client and size that fits it, so it may be kept for the next asker (AnswerCache).
        lastComplete = complete ? (Header.aaBit * (resolution.authoritative ? 1 : 0) | (resolution.rcode.rawValue & 0xF),
                                   counts.answer, counts.authority, counts.additional, writer.count) : nil
        if query.edns != nil {
            writeOPT(dnssecOK: dnssecOK, extendedRCode: UInt8(resolution.rcode.rawValue >> 4), options: options)
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
    /// everything after it (RFC 2181 §9: no TC for additional data). `complete`: all fitted.
    private mutating func writeAdditional(budget: Int) -> (records: UInt16, complete: Bool) {
        var count: UInt16 = 0
        for entry in resolution.additional {
            let before = writer.count
            let written = entry.rrset.encode(owner: entry.owner, ttl: entry.ttl, into: &writer)
            if writer.count > budget {
                writer.truncate(to: before)
                return (count, false)
            }
            count += written
        }
        return (count, true)
    }

    /// Our OPT record (RFC 6891 §6.1.2), carrying the upper bits of an extended RCODE.
    mutating func writeOPT(dnssecOK: Bool, extendedRCode: UInt8, options: ResponseOptions) {
        writer.writeUInt8(0)
        writer.writeUInt16(RRType.opt.rawValue)
        writer.writeUInt16(Self.advertisedUDPPayload)
        writer.writeUInt8(extendedRCode)
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
        if let cookie = options.cookie {
            writer.writeUInt16(EDNSOptionCode.cookie.rawValue)
            writer.writeUInt16(UInt16(cookie.count))
            writer.writeBytes(cookie)
        }
    }
}
