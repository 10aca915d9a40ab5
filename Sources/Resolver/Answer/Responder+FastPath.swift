import Scoring

extension Responder {
    /// Answers the common query from the compiled answers (`AnswerTable`) without decoding
    /// it into values: one question of class IN, an uncompressed name, and at most an OPT
    /// record of version 0 whose only option of interest is ECS. Returns false, having
    /// written nothing, for anything else (a miss, a cookie, NSID when configured, rate
    /// limiting on, a malformed message, an answer that needs truncation or more than one
    /// site's template), which the general path then answers. The one thing it may have done
    /// by then is a service decision, left in `decided` for the general path to render.
    ///
    /// What it writes is what the general path writes for the same query: the tests compare
    /// the two byte for byte over every compiled name and the query shapes this accepts.
    mutating func respondFast(_ packet: UnsafeRawBufferPointer, context: RequestContext, state: ServingState) -> Bool {
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
        let qtype = UInt16(u16(offset))
        guard u16(offset + 2) == Int(RRClass.in.rawValue) else { return false }
        let questionEnd = offset + 4

        // OPT (RFC 6891 §6.1.2): owner root, version 0; options walked for ECS only.
        var edns = false
        var dnssecOK = false
        var payload = 512
        var subnet: ClientSubnet? = nil
        if additional == 1 {
            offset = questionEnd
            guard offset + 11 <= count, packet[offset] == 0, u16(offset + 1) == Int(RRType.opt.rawValue),
                  packet[offset + 6] == 0 else { return false }
            payload = max(u16(offset + 3), 512)
            dnssecOK = packet[offset + 7] & 0x80 != 0
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
                    guard subnet == nil,
                          let parsed = try? ClientSubnet(optionData: UnsafeRawBufferPointer(rebasing: packet[option..<(option + length)]))
                    else { return false }
                    subnet = parsed
                case .cookie:
                    return false
                case .nsid:
                    if state.nsid != nil { return false }
                default:
                    break
                }
                option += length
            }
            edns = true
        }

        // A query with ECS is most likely for a service name, from one of many clients:
        // its remembered decision is fetched while the name is looked up. The client is
        // worked out once, here, for the service case below.
        let ecsClient = subnet.map { Self.client(subnet: $0, source: context.source) }
        if let ecsClient { memo.prefetch(client: ecsClient.client) }
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
            return false
        }
        let compiled: AnswerTable.Compiled
        var ttl: UInt32 = 0
        var scope: UInt8 = 0
        var hit: DecisionMemo.Slot? = nil
        var slot = 0
        var serviceSite = 0
        var serviceClient: Client? = nil
        var now = 0.0   // read once, for service names only
        switch kind {
        case .fixed(let fixed):
            compiled = fixed
        case .service(let index):
            let who = ecsClient ?? Self.client(subnet: nil, source: context.source)
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
                let made = state.decide(service: index, client: who.client, now: now, sequence: context.sequence,
                                        storage: &decisionStorage)
                decided = (index, made)
                guard made.decision.sites.count == 1, !made.decision.allDown else { return false }
                (site, ttl, decisionScope) = (made.decision.sites[0], made.decision.ttl, made.decision.scope)
            }
            guard let templates = state.answers.services[index][site] else { return false }
            compiled = qtype == RRType.aaaa.rawValue ? templates.aaaa : templates.a
            // RFC 7871 §7.2.1 and §7.4: the decision's scope for an answer, 0 for NODATA or
            // when the ECS address was not what was used.
            scope = who.usedSubnet && compiled.answerCount > 0 ? UInt8(clamping: decisionScope) : 0
            (serviceSite, serviceClient) = (site, who.client)
        }

        // The whole response must fit, or the general path truncates it (RFC 2181 §9).
        let optLength = edns ? 11 + (subnet.map { 4 + $0.encodedLength } ?? 0) : 0
        let limit = context.transport == .tcp ? 65_535 : (edns ? min(payload, Self.maxUDPPayload) : 512)
        guard questionEnd + Int(compiled.length) + optLength <= limit else { return false }

        if case .service(let index) = kind {
            if hit != nil {
                // The bookkeeping of the decision this reuses, as `ServingState.decide` does
                // it. The renewal of a sticky binding is counted in the memo and handed over later.
                memo.reuse(at: slot, now: now)
            } else if let (_, made) = decided, let serviceClient {
                decided = nil
                remember(made, service: index, client: serviceClient, now: now, state: state)
                // Answered: its arrays are for the next decision (once `made` is gone, theirs alone).
                decisionStorage.reclaim(made.decision)
            }
            // As `renderService` counts the answers it gives.
            if compiled.answerCount > 0 { countAnswer(service: index, site: serviceSite, now: now, state: state) }
        }

        rcode = compiled.rcode
        writer.reset()
        writer.writeBytes(UnsafeRawBufferPointer(rebasing: packet[0..<2]))
        // QR, AA and RCODE from the answer; RD and CD copied (RFC 1035 §4.1.1, RFC 4035
        // §3.2.2); OPCODE QUERY; RA, Z, AD clear.
        writer.writeUInt16(Header.qrBit | compiled.flags | (flags & (Header.rdBit | Header.cdBit)))
        writer.writeUInt16(1)
        writer.writeUInt16(compiled.answerCount)
        writer.writeUInt16(compiled.authorityCount)
        writer.writeUInt16(compiled.additionalCount + (edns ? 1 : 0))
        // The question as the client wrote it: the compiled names point into it.
        writer.writeBytes(UnsafeRawBufferPointer(rebasing: packet[Header.length..<questionEnd]))
        let tailStart = writer.count
        (cached ? cache.tails : state.answers.bytes).withUnsafeBytes { bytes in
            writer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[Int(compiled.start)..<Int(compiled.start + compiled.length)]))
        }
        if compiled.ttlCount > 0 {
            for index in Int(compiled.ttlStart)..<Int(compiled.ttlStart + compiled.ttlCount) {
                writer.patchUInt32(ttl, at: tailStart + Int(state.answers.ttlOffsets[index]))
            }
        }
        if edns {
            if var echoed = subnet {
                echoed.scopePrefixLength = min(scope, echoed.sourcePrefixLength)
                subnet = echoed
            }
            var options = ResponseOptions()
            options.clientSubnet = subnet
            writeOPT(dnssecOK: dnssecOK, extendedRCode: 0, options: options)
        }
        pending.query(transport: context.transport, rcode: rcode, ecs: subnet != nil, compiled: true)
        if case .service = kind, hit == nil { decidedAnswers &+= 1 } else { compiledAnswers &+= 1 }
        return true
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
                                 sticky: state.steering.services[service].isSticky, now: now)
        if let held { hand(held, slots: 0..<0) }
    }

    /// Makes `state` the one the memo's renewals are counted for, handing those counted for
    /// another state's data over first; and hands a slice of them over every sixteenth of a
    /// second, so each is handed over within a second and no hand-over is long.
    @inline(__always)
    mutating func adoptMemo(_ state: ServingState, now: Double) {
        if memoOwner?.dataGeneration != state.dataGeneration {
            handOverRenewals()
            memoOwner = state
        } else if now >= nextHandOver {
            let slice = max(memo.slotCount / Self.handOverSlices, 1)
            handOver(slots: handOverCursor..<(handOverCursor + slice))
            handOverCursor = handOverCursor + slice >= memo.slotCount ? 0 : handOverCursor + slice
        } else {
            return
        }
        nextHandOver = now + DecisionMemo.lifetime / Double(Self.handOverSlices)
    }

    static let handOverSlices = 16

    /// Hands every renewal the memo has counted to the bindings (`AffinityTable.renew`) and
    /// the metrics: when the server is idle, when it stops, and by tests before they read
    /// the bindings.
    public mutating func handOverRenewals() {
        handOver(slots: 0..<memo.slotCount)
    }

    private mutating func handOver(slots: Range<Int>) {
        hand(nil, slots: slots)
    }

    /// Hands `held` and the renewals counted in `slots` to the bindings and the metrics of
    /// the state they were counted for, under one lock.
    private mutating func hand(_ held: DecisionMemo.Renewal?, slots: Range<Int>) {
        guard let owner = memoOwner else { return }
        let services = owner.steering.services
        var queries = 0
        var batch: [AffinityTable.Renewal] = []
        swap(&batch, &renewals)   // the buffer's capacity is kept from one hand-over to the next
        defer {
            batch.removeAll(keepingCapacity: true)
            swap(&batch, &renewals)
        }
        func add(_ renewal: DecisionMemo.Renewal) {
            guard renewal.service < services.count else { return }
            batch.append(AffinityTable.Renewal(service: services[renewal.service].name, client: renewal.client,
                                               lastSeen: renewal.lastSeen, queries: renewal.queries))
            queries += renewal.queries
        }
        if let held { add(held) }
        memo.drainRenewals(in: slots, add)
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
