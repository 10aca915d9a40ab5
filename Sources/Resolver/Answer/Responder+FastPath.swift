import Scoring
import CUDPBatch

extension Responder {
    /// Parses `packet` for the fast path (`FastQuery`) and starts fetching what answering it
    /// will read first: the decision memo's set of an ECS client. A UDP worker prepares a
    /// whole batch before answering any of it, so those fetches overlap each other rather
    /// than each holding up its own query (a client's set is rarely cached: thousands of
    /// datagrams pass through the kernel between two queries of one client).
    func prepare(_ packet: UnsafeRawBufferPointer, source: IPAddress?) -> FastQuery? {
        var query = FastQuery()
        return prepare(packet, source: source, into: &query) ? query : nil
    }

    /// As `prepare(_:source:)`, into `query` (`FastQuery.parse(_:source:into:)`).
    func prepare(_ packet: UnsafeRawBufferPointer, source: IPAddress?, into query: inout FastQuery) -> Bool {
        guard FastQuery.parse(packet, source: source, into: &query) else { return false }
        if let client = query.ecsClient { memo.prefetch(client: client) }
        return true
    }

    /// Answers the common query (`FastQuery`) from the compiled answers (`AnswerTable`):
    /// decides, counts, and returns what to write (`write`), or nil, having counted nothing,
    /// for anything else (a miss, NSID when configured, an answer that needs truncation, that
    /// does not fit in `capacity` bytes or needs more than one site's template), which the
    /// general path then answers. The one thing it may have done by then is a service
    /// decision, left in `decided` for the general path to render. Rate limiting is the
    /// caller's to rule out (the general path does it).
    ///
    /// What it writes is what the general path writes for the same query: the tests compare
    /// the two byte for byte over every compiled name and the query shapes this accepts.
    mutating func respondFast(_ packet: UnsafeRawBufferPointer, query: FastQuery, context: RequestContext,
                              state: ServingState, capacity: Int) -> FastAnswer? {
        if query.asksNSID, state.nsid != nil { return nil }
        let (nameEnd, qtype) = (Int(query.nameEnd), query.qtype)
        let name = UnsafeRawBufferPointer(rebasing: packet[Header.length..<nameEnd])
        let kind: AnswerTable.Kind
        var cached = false
        if let found = state.answers.lookup(name, type: qtype) {
            kind = found
        } else if let found = cache.find(generation: state.dataGeneration, name: name, type: qtype) {
            kind = .fixed(found)
            cached = true
        } else {
            // The general path answers; if its answer is static and whole, it is kept.
            uncached = (nameEnd, qtype)
            return nil
        }
        let compiled: AnswerTable.Compiled
        var ttl: UInt32 = 0
        var scope: UInt8 = 0
        var hit: DecisionMemo.Slot? = nil
        var slot = 0
        var serviceSite = 0
        var serviceClient: Client? = nil
        var now = 0.0   // read once, for service names only
        // A decision made here: moved, not copied (a copy is a retain and a release of each
        // of its arrays), to `decided` when the general path is to answer, else remembered.
        var made: ServiceDecision? = nil
        func answerGenerally(_ service: Int) -> FastAnswer? {
            if let made = made.take() { decided = (service, made) }
            return nil
        }
        switch kind {
        case .fixed(let fixed):
            compiled = fixed
        case .service(let index):
            // The ECS client was worked out by `prepare` (which fetched its memo set).
            let who = query.ecsClient.map { (client: $0, usedSubnet: query.ecsUsed) }
                ?? Self.client(subnet: nil, source: context.source)
            now = context.now
            adoptMemo(state, now: now)
            let site: Int
            let decisionScope: Int
            if let (at, found) = memo.find(epoch: state.decisionEpoch, service: index, client: who.client, now: now) {
                (slot, hit) = (at, found)
                (site, ttl, decisionScope) = (Int(found.site), found.ttl, Int(found.scope))
            } else {
                // No decision to reuse: decide here, and answer from the chosen site's
                // template unless the decision needs the general path's rendering (several
                // sites, the all-down answer), which then renders this decision.
                // What the decision will wait for first, fetched now, so that the reads overlap
                // each other and the work before them: the binding's first bucket and the
                // latency walk's first read (neither is cached: the client last asked a second
                // or more ago). Here rather than for the whole batch in `prepare`, where most
                // queries (answered from the memo) would have fetched them for nothing: that
                // cost more than the overlap gained on the bench's ECS mix.
                state.affinity.withBindingPlace(of: who.client) { udp_batch_prefetch($0) }
                state.steering.latency.withFirstRead(of: who.client.address, prefixLength: who.client.prefixLength) {
                    udp_batch_prefetch($0)
                }
                let renewal = memo.takeRenewal(service: index, client: who.client)
                made = state.decide(service: index, client: who.client, now: now, sequence: context.sequence,
                                    renewal: renewal.map { (queries: $0.queries, lastSeen: $0.lastSeen) },
                                    storage: &decisionStorage)
                guard let decision = made?.decision, decision.sites.count == 1, !decision.allDown else {
                    return answerGenerally(index)
                }
                (site, ttl, decisionScope) = (decision.sites[0], decision.ttl, decision.scope)
            }
            guard let templates = state.answers.templates(service: index, site: site) else { return answerGenerally(index) }
            compiled = qtype == RRType.aaaa.rawValue ? templates.aaaa : templates.a
            // RFC 7871 §7.2.1 and §7.4: the decision's scope for an answer, 0 for NODATA or
            // when the ECS address was not what was used.
            scope = who.usedSubnet && compiled.answerCount > 0 ? UInt8(clamping: decisionScope) : 0
            (serviceSite, serviceClient) = (site, who.client)
        }

        // The whole response must fit, or the general path truncates it (RFC 2181 §9).
        let length = Int(query.questionEnd) + Int(compiled.length) + query.optLength
        let limit = context.transport == .tcp ? 65_535 : (query.edns ? min(Int(query.payload), Self.maxUDPPayload) : 512)
        guard length <= min(limit, capacity) else {
            if case .service(let index) = kind { return answerGenerally(index) }
            return nil
        }

        if case .service(let index) = kind {
            if hit != nil {
                // The bookkeeping of the decision this reuses, as `ServingState.decide` does
                // it. The renewal of a sticky binding is counted in the memo and handed over later.
                memo.reuse(at: slot, now: now)
            } else if let made = made.take(), let serviceClient {
                remember(made, service: index, client: serviceClient, now: now, state: state)
                // Answered: its arrays are for the next decision (once `made` is gone, theirs alone).
                decisionStorage.reclaim(made.decision)
            }
            // As `renderService` counts the answers it gives.
            if compiled.answerCount > 0 { countAnswer(service: index, site: serviceSite, now: now, state: state) }
        }

        rcode = compiled.rcode
        pending.query(transport: context.transport, rcode: rcode, ecs: query.hasSubnet, compiled: true)
        if case .service = kind, hit == nil { decidedAnswers &+= 1 } else { compiledAnswers &+= 1 }
        return FastAnswer(compiled: compiled, cached: cached, ttl: ttl, scope: scope, length: length)
    }

    /// A response the fast path has decided on, to be written by `write`.
    struct FastAnswer {
        var compiled: AnswerTable.Compiled
        /// `compiled` points into the answer cache's bytes, not the compiled answers'.
        var cached: Bool
        var ttl: UInt32
        var scope: UInt8
        /// Of the whole response.
        var length: Int
    }

    /// The bytes `answer.compiled` points into.
    func tails(of answer: FastAnswer, state: ServingState) -> [UInt8] {
        answer.cached ? cache.tails : state.answers.bytes
    }

    /// `write` into `out`, borrowing the bytes `answer` points into where they are (taking
    /// them as an array, `tails(of:state:)`, retained and released it for every answer).
    func write(_ answer: FastAnswer, query: FastQuery, packet: UnsafeRawBufferPointer, state: ServingState,
               into out: UnsafeMutableRawBufferPointer) {
        state.answers.ttlOffsets.withUnsafeBufferPointer { ttlOffsets in
            if answer.cached {
                cache.tails.withUnsafeBytes { Self.write(answer, query: query, packet: packet, tails: $0, ttlOffsets: ttlOffsets, into: out) }
            } else {
                state.answers.bytes.withUnsafeBytes {
                    Self.write(answer, query: query, packet: packet, tails: $0, ttlOffsets: ttlOffsets, into: out)
                }
            }
        }
    }

    /// Writes `answer` to `query` (`packet`) into `out` (at least `answer.length` bytes);
    /// `tails` as `tails(of:state:)` gives them, `ttlOffsets` the compiled answers'.
    static func write(_ answer: FastAnswer, query: FastQuery, packet: UnsafeRawBufferPointer, tails: UnsafeRawBufferPointer,
                      ttlOffsets: UnsafeBufferPointer<Int32>, into out: UnsafeMutableRawBufferPointer) {
        let compiled = answer.compiled
        var at = 0
        @inline(__always) func u16(_ value: UInt16) {
            out[at] = UInt8(value >> 8)
            out[at + 1] = UInt8(truncatingIfNeeded: value)
            at += 2
        }
        @inline(__always) func copy(_ bytes: UnsafeRawBufferPointer) {
            UnsafeMutableRawBufferPointer(rebasing: out[at..<(at + bytes.count)]).copyMemory(from: bytes)
            at += bytes.count
        }
        out[0] = packet[0]
        out[1] = packet[1]
        at = 2
        // QR, AA and RCODE from the answer; RD and CD copied (RFC 1035 §4.1.1, RFC 4035
        // §3.2.2); OPCODE QUERY; RA, Z, AD clear.
        u16(Header.qrBit | compiled.flags | (query.flags & (Header.rdBit | Header.cdBit)))
        u16(1)
        u16(compiled.answerCount)
        u16(compiled.authorityCount)
        u16(compiled.additionalCount + (query.edns ? 1 : 0))
        // The question as the client wrote it: the compiled names point into it.
        copy(UnsafeRawBufferPointer(rebasing: packet[Header.length..<Int(query.questionEnd)]))
        let tailStart = at
        copy(UnsafeRawBufferPointer(rebasing: tails[Int(compiled.start)..<Int(compiled.start + compiled.length)]))
        if compiled.ttlCount > 0 {
            let ttl = answer.ttl.bigEndian
            for index in Int(compiled.ttlStart)..<Int(compiled.ttlStart + compiled.ttlCount) {
                out.storeBytes(of: ttl, toByteOffset: tailStart + Int(ttlOffsets[index]), as: UInt32.self)
            }
        }
        guard query.edns else { return }
        // The OPT record `writeOPT` writes for these options.
        out[at] = 0
        at += 1
        u16(RRType.opt.rawValue)
        u16(Self.advertisedUDPPayload)
        u16(0)   // extended RCODE and version
        u16(query.dnssecOK ? 0x8000 : 0)
        guard query.hasSubnet else { return u16(0) }
        let data = Int(query.subnetStart)..<(Int(query.subnetStart) + Int(query.subnetLength))
        u16(UInt16(4 + data.count))
        u16(EDNSOptionCode.clientSubnet.rawValue)
        u16(UInt16(data.count))
        copy(UnsafeRawBufferPointer(rebasing: packet[data]))
        // SCOPE PREFIX-LENGTH (the option's fourth byte), at most the SOURCE (its third):
        // RFC 7871 §7.2.1.
        out[at - data.count + 3] = min(answer.scope, packet[data.lowerBound + 2])
    }

    /// Keeps the general path's answer to a query the fast path parsed but found in no table
    /// (`uncached`), when it is a whole static answer.
    mutating func keepAnswer(_ packet: UnsafeRawBufferPointer, state: ServingState) {
        defer { uncached = nil }
        guard let (nameEnd, type) = uncached, let complete = lastComplete, rcode == .noError || rcode == .nxDomain,
              cookie == .absent, state.rateLimiter == nil, complete.end >= questionEnd else { return }
        cache.store(generation: state.dataGeneration, name: UnsafeRawBufferPointer(rebasing: packet[Header.length..<nameEnd]),
                    type: type, flags: complete.flags, counts: (complete.answer, complete.authority, complete.additional),
                    tail: writer.bytes[questionEnd..<complete.end])
    }

    /// Remembers a decision so the client's next queries within a second can be answered by
    /// `respondFast` without deciding (DecisionMemo).
    mutating func remember(_ made: ServiceDecision, service: Int, client: Client, now: Double, state: ServingState) {
        guard made.reusable, !made.decision.allDown, made.decision.sites.count == 1,
              state.rateLimiter == nil else { return }
        adoptMemo(state, now: now)
        let held = memo.remember(epoch: state.decisionEpoch, service: service, client: client, site: made.decision.sites[0],
                                 ttl: made.decision.ttl, scope: made.decision.scope,
                                 sticky: made.sticky, now: now)
        if let held { hand(held, slots: 0..<0) }
    }

    /// Makes `state` the one the memo's renewals are counted for, handing those counted for
    /// another state's data over first; and hands a slice of them over every sixteenth of a
    /// second, those of expired decisions (the others go with the client's next decision), so
    /// each is handed over within two seconds and no hand-over is long.
    @inline(__always)
    mutating func adoptMemo(_ state: ServingState, now: Double) {
        if memoOwner?.dataGeneration != state.dataGeneration {
            handOverRenewals()
            memoOwner = state
        } else if now >= nextHandOver {
            let slice = max(memo.slotCount / Self.handOverSlices, 1)
            handOver(slots: handOverCursor..<(handOverCursor + slice), expiredBy: now)
            handOverCursor = handOverCursor + slice >= memo.slotCount ? 0 : handOverCursor + slice
        } else {
            return
        }
        nextHandOver = now + DecisionMemo.lifetime / Double(Self.handOverSlices)
    }

    static let handOverSlices = 16

    /// Allocates the decision memo now (a UDP worker, before it answers), so that no query
    /// waits while its megabytes are first written.
    public mutating func allocateMemo() {
        memo.allocate()
    }

    /// Hands every renewal the memo has counted to the bindings (`AffinityTable.renew`) and
    /// the metrics: when the server is idle, when it stops, and by tests before they read
    /// the bindings.
    public mutating func handOverRenewals() {
        handOver(slots: 0..<memo.slotCount)
    }

    private mutating func handOver(slots: Range<Int>, expiredBy now: Double? = nil) {
        hand(nil, slots: slots, expiredBy: now)
    }

    /// Hands `held` and the renewals counted in `slots` (of decisions expired by `now`, when
    /// given) to the bindings and the metrics of the state they were counted for, under one lock.
    private mutating func hand(_ held: DecisionMemo.Renewal?, slots: Range<Int>, expiredBy now: Double? = nil) {
        guard let owner = memoOwner else { return }
        var queries = 0
        var batch: [AffinityTable.Renewal] = []
        swap(&batch, &renewals)   // the buffer's capacity is kept from one hand-over to the next
        defer {
            batch.removeAll(keepingCapacity: true)
            swap(&batch, &renewals)
        }
        // The services' names read where they lie: an element taken out of the array is a
        // copy of the whole service, three retains and releases per renewal.
        owner.steering.services.withUnsafeBufferPointer { services in
            func add(_ renewal: DecisionMemo.Renewal) {
                guard renewal.service < services.count else { return }
                batch.append(AffinityTable.Renewal(service: services[renewal.service].name, client: renewal.client,
                                                   lastSeen: renewal.lastSeen, queries: renewal.queries))
                queries += renewal.queries
            }
            if let held { add(held) }
            memo.drainRenewals(in: slots, expiredBy: now, add)
        }
        guard !batch.isEmpty else { return }
        owner.affinity.renew(batch)
        owner.metrics.bindingsKept(queries)
    }

    /// Encodes `resolution` as the answer to `question` with no EDNS and no size limit, for
    /// `AnswerTable`: the message and where its question ends.
    mutating func compile(_ question: Question, _ resolution: Resolution) -> ([UInt8], Int) {
        self.resolution = resolution
        let query = Query(header: Header(id: 0, questionCount: 1), question: question)
        encode(query: query, options: ResponseOptions(), dnssecOK: false, limit: 65_535)
        return (writer.bytes, questionEnd)
    }

    /// Copies the last response into `buffer`; returns its length (0 when it does not fit).
    public func copyResponse(to buffer: UnsafeMutableRawBufferPointer) -> Int {
        writer.bytes.withUnsafeBytes { bytes in
            guard bytes.count <= buffer.count else { return 0 }
            buffer.copyMemory(from: bytes)
            return bytes.count
        }
    }
}
