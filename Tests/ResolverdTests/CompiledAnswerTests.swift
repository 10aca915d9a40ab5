import Foundation
@testable import Resolver
import Scoring
import Testing
@testable import resolverd

/// The fast path (compiled answers, `Responder+FastPath`) against the general path, byte for
/// byte: every name of the example zone, the service name, and the query shapes the fast
/// path accepts or must hand over, over UDP and TCP.
@Suite struct CompiledAnswerTests {
    let state: ServingState
    let names: [String]

    init() throws {
        state = try StateLoader.load(configPath: Example.configPath).get().state
        // Every name of the zone, and names that are not in it (NXDOMAIN, wildcard synthesis,
        // below the delegation), which the general path answers once and the cache after.
        names = state.catalog.zones.values.flatMap { $0.nodes.keys.map(\.text) }.sorted()
            + ["nope.svc.example.", "a.b.nothing.svc.example.", "foo.wild.svc.example.", "x.y.wild.svc.example.",
               "host.sub.svc.example.", "deeper.ns.sub.svc.example."]
    }

    /// Query variants: (label, EDNS or nil, flags to set in the header).
    static func variants() -> [(String, EDNS?, UInt16)] {
        var unknownOption = EDNS()
        unknownOption.options = [EDNSOption(code: EDNSOptionCode(rawValue: 65001), data: [1, 2, 3])]
        var dnssec = EDNS()
        dnssec.dnssecOK = true
        var small = EDNS(udpPayloadSize: 512)
        small.options = Example.ecs("198.51.100.0/24").options
        var tiny = EDNS(udpPayloadSize: 100)
        tiny.options = []
        var nsid = EDNS()
        nsid.options = [EDNSOption(code: .nsid, data: [])]
        var padding = Example.ecs("203.0.113.0/24")
        padding.options.append(EDNSOption(code: .padding, data: [0, 0, 0, 0]))
        return [
            ("plain", nil, 0), ("plain RD", nil, 0x0100), ("EDNS", EDNS(), 0), ("EDNS RD CD", EDNS(), 0x0110),
            ("DO", dnssec, 0), ("4096", EDNS(udpPayloadSize: 4096), 0), ("payload 100", tiny, 0),
            ("ECS /24", Example.ecs("198.51.100.0/24"), 0), ("ECS /24 other", Example.ecs("203.0.113.0/24"), 0),
            ("ECS 512", small, 0), ("ECS /0", Example.ecs("0.0.0.0/0"), 0), ("ECS private", Example.ecs("10.1.2.0/24"), 0),
            ("ECS v6 /56", Example.ecs("2001:db8:aa00::/56"), 0), ("unknown option", unknownOption, 0),
            ("NSID", nsid, 0), ("ECS + padding", padding, 0),
        ]
    }

    static func packet(_ name: String, _ type: RRType, edns: EDNS?, flags: UInt16, id: UInt16) -> [UInt8] {
        var header = Header(id: id)
        header.flags = flags
        return Query(header: header, question: Question(name: try! DNSName(name), type: type), edns: edns).wire
    }

    /// The response as a transport gets it: over UDP as a UDP worker does (the query
    /// `prepare`d, the response written into the datagram's buffer), over TCP as a TCP
    /// connection does (into the responder's writer). So every comparison here covers both.
    static func answer(_ responder: inout Responder, _ packet: [UInt8], transport: Transport, state: ServingState,
                       source: String = "198.51.100.7") -> [UInt8]? {
        let context = RequestContext(transport: transport, source: IPAddress(source), now: 1_000_000)
        guard transport == .udp else {
            let answered = packet.withUnsafeBytes { responder.respond(to: $0, context: context, state: state) }
            return answered ? responder.response : nil
        }
        var reply = [UInt8](repeating: 0xEE, count: Int(UDPWorkers.bufferSize))
        let length = packet.withUnsafeBytes { packet in
            let prepared = responder.prepare(packet, source: context.source)
            return reply.withUnsafeMutableBytes {
                responder.respond(to: packet, prepared: prepared, context: context, state: state, into: $0)
            }
        }
        return length.map { Array(reply[..<$0]) }
    }

    /// Mixed case: the response must echo the question as sent, and still match.
    static func cased(_ name: String, _ variant: Int) -> String {
        switch variant {
        case 0: return name
        case 1: return name.uppercased()
        default: return String(name.enumerated().map { $0.offset % 2 == 0 ? Character($0.element.uppercased()) : $0.element })
        }
    }

    @Test func staticAnswersMatchTheGeneralPathByteForByte() throws {
        var fast = Responder()
        var general = Responder()
        general.usesCompiledAnswers = false
        var compared = 0
        let types: [RRType] = [.a, .aaaa, .ns, .soa, .mx, .txt, .cname, .srv, .caa, .ptr, .ds, .any, RRType(rawValue: 65280)]
        for name in names where state.services[try DNSName(name)] == nil {
            for type in types {
                for (label, edns, flags) in Self.variants() {
                    for transport in [Transport.udp, .tcp] {
                        let qname = Self.cased(name, compared % 3)
                        let query = Self.packet(qname, type, edns: edns, flags: flags, id: UInt16(truncatingIfNeeded: compared))
                        let expected = Self.answer(&general, query, transport: transport, state: state)
                        let got = Self.answer(&fast, query, transport: transport, state: state)
                        #expect(got == expected, "\(qname) \(type) \(label) over \(transport)")
                        compared += 1
                    }
                }
            }
        }
        #expect(compared > 1000)
        // The fast path must really have answered most of them (every name × A/AAAA and its
        // own types, in every variant it accepts), or this compared the general path with itself.
        // Compiled (its own types and A/AAAA) or kept after the first ask: nearly all but the
        // variants that need the general path (NSID here, truncation of the big TXT).
        #expect(fast.compiledAnswers > compared * 3 / 4, "\(fast.compiledAnswers) of \(compared) compiled")
        #expect(general.compiledAnswers == 0)
    }

    /// Service names: the first query of a client is decided by the fast path and answered
    /// from the site's template; the next ones within the same state reuse the decision. Both
    /// must give the general path's bytes (its answer for a kept binding).
    @Test func serviceAnswersFromTheMemoMatchTheGeneralPath() throws {
        var fast = Responder()
        var general = Responder()
        general.usesCompiledAnswers = false
        var fastHits = 0
        for type in [RRType.a, .aaaa, .any, .mx] {
            for (label, edns, flags) in Self.variants() {
                for (index, source) in ["198.51.100.7", "203.0.113.9", "192.0.2.99"].enumerated() {
                    let query = Self.packet(Self.cased("api.svc.example.", index), type, edns: edns, flags: flags, id: 42)
                    let before = fast.compiledAnswers
                    let first = Self.answer(&fast, query, transport: .udp, state: state, source: source)
                    let second = Self.answer(&fast, query, transport: .udp, state: state, source: source)
                    let reference = Self.answer(&general, query, transport: .udp, state: state, source: source)
                    #expect(first == reference, "first \(type) \(label) from \(source)")
                    #expect(second == reference, "second \(type) \(label) from \(source)")
                    fastHits += fast.compiledAnswers - before
                }
            }
        }
        #expect(fastHits > 50, "\(fastHits) service answers from the memo")
        #expect(fast.decidedAnswers >= 3, "each client's first decision made by the fast path: \(fast.decidedAnswers)")
    }

    /// A decision is reused for at most a second, across new load figures, but not after a
    /// site's health changed nor in a newly loaded state.
    @Test func aRememberedDecisionLastsOneSecondAndOneHealth() throws {
        var responder = Responder()
        let query = Self.packet("api.svc.example.", .a, edns: Example.ecs("198.51.100.0/24"), flags: 0, id: 1)
        func ask(_ state: ServingState, at now: Double) -> [UInt8]? {
            query.withUnsafeBytes {
                responder.respond(to: $0, context: RequestContext(transport: .udp, source: IPAddress("192.0.2.1"), now: now),
                                  state: state)
            } ? responder.response : nil
        }
        _ = ask(state, at: 1_000_000)
        #expect(responder.compiledAnswers == 0 && responder.decidedAnswers == 1, "a new binding is decided")
        _ = ask(state, at: 1_000_000.5)
        #expect(responder.compiledAnswers == 1, "and reused")
        _ = ask(state, at: 1_000_001.2)
        #expect(responder.compiledAnswers == 1, "a decision older than a second is made anew")
        _ = ask(state, at: 1_000_001.3)
        #expect(responder.compiledAnswers == 2)

        // New load figures (a report, the directed load of the second) keep the decision.
        var loaded = state.steering
        for index in loaded.loads.indices {
            loaded.loads[index] = SiteLoad(utilization: 0.5, reportedAt: 1_000_001.3)
        }
        loaded.directed = loaded.directed.map { $0 + 10 }
        let reported = state.with(steering: loaded)
        #expect(reported.decisionEpoch == state.decisionEpoch && reported.dataGeneration == state.dataGeneration)
        _ = ask(reported, at: 1_000_001.4)
        #expect(responder.compiledAnswers == 3, "new load figures reach the client within the second")
        #expect(state.affinity.counts.kept == 2, "the reuses at 1.3 and 1.4 s are handed over later, in a batch")
        responder.handOverRenewals()
        #expect(state.affinity.counts.created == 1)
        #expect(state.affinity.counts.kept == 4, "every reuse renews the binding as a kept decision does")

        // A site reporting itself unhealthy, or failing its check, is seen at once.
        var unhealthy = loaded
        unhealthy.loads[0].healthy = false
        var failing = loaded
        failing.checksPassing[0] = false
        var answered = 3
        for (label, steering) in [("unhealthy report", unhealthy), ("failing check", failing)] {
            let next = reported.with(steering: steering)
            #expect(next.decisionEpoch != reported.decisionEpoch, "\(label)")
            #expect(next.dataGeneration == reported.dataGeneration, "static answers stay valid: \(label)")
            _ = ask(next, at: 1_000_001.5)
            #expect(responder.compiledAnswers == answered, "decided anew after \(label)")
            _ = ask(next, at: 1_000_001.6)
            answered += 1
            #expect(responder.compiledAnswers == answered, "\(label)")
        }
        let reloaded = try StateLoader.load(configPath: Example.configPath).get().state
        #expect(reloaded.dataGeneration != state.dataGeneration && reloaded.decisionEpoch != state.decisionEpoch)
    }

    /// A UDP worker adds the fast path's answer counts to the ledger and the answer metrics
    /// once per batch (`defersCounts`, `flushCounts`): nothing before the flush, and after it
    /// what answering one by one gives, in the seconds the answers were given.
    @Test func deferredCountsReachTheLedgerAsAnswersOneByOneDo() throws {
        let direct = try StateLoader.load(configPath: Example.configPath).get().state
        let batched = try StateLoader.load(configPath: Example.configPath).get().state
        var single = Responder()
        var deferring = Responder()
        deferring.defersCounts = true
        let queries = [Self.packet("api.svc.example.", .a, edns: nil, flags: 0, id: 1),
                       Self.packet("api.svc.example.", .aaaa, edns: EDNS(), flags: 0, id: 2),
                       Self.packet("www.svc.example.", .a, edns: nil, flags: 0, id: 3)]
        let sources = ["198.51.100.7", "203.0.113.9", "192.0.2.99", "2001:db8:aa00::1", "100.1.2.3"]
        func ask(_ responder: inout Responder, _ state: ServingState, _ query: [UInt8], from source: String, at now: Double) {
            let answered = query.withUnsafeBytes {
                responder.respond(to: $0, context: RequestContext(transport: .udp, source: IPAddress(source), now: now), state: state)
            }
            #expect(answered)
        }
        func total(_ state: ServingState) -> Int { state.metrics.answerSeries().reduce(0) { $0 + $1.count } }
        var now = 1_000_000.2
        for round in 0..<25 {
            for query in queries {
                for source in sources {
                    ask(&single, direct, query, from: source, at: now)
                    ask(&deferring, batched, query, from: source, at: now)
                }
            }
            // A batch of three rounds, which crosses a second now and then.
            if round % 3 == 2 { deferring.flushCounts(to: batched) }
            now += 0.37
        }
        #expect(deferring.compiledAnswers > 100 && deferring.compiledAnswers == single.compiledAnswers)
        #expect(total(batched) < total(direct), "the last batch waits for its flush")
        deferring.flushCounts(to: batched)
        #expect(total(direct) > 100 && total(batched) == total(direct))
        #expect(batched.metrics.answerSeries().map(\.count) == direct.metrics.answerSeries().map(\.count))
        for site in 0..<direct.ledger.siteCount {
            for second in 1_000_000...Int(now) {
                let at = Double(second) + 0.5
                #expect(batched.ledger.answers(site: site, since: at - 1, now: at) == direct.ledger.answers(site: site, since: at - 1, now: at),
                        "site \(site), second \(second)")
            }
        }
    }

    /// A memo slot is one 64-byte cache line's worth, its key first, so that a lookup in the
    /// memo's megabytes touches as few lines as it can.
    @Test func aMemoSlotIsSixtyFourBytesKeyFirst() {
        #expect(MemoryLayout<DecisionMemo.Slot>.stride == 64)
        #expect(MemoryLayout<DecisionMemo.Slot>.offset(of: \.high) == 0)
        #expect(MemoryLayout<DecisionMemo.Slot>.offset(of: \.isV6)! < 24)
    }

    /// The memo's storage (`HugePageArray`), larger than a huge page or small: its values as
    /// written, and a copy that is written to is a copy (the original keeps its values), as an
    /// array's would be.
    @Test func aHugePageArrayIsAnArrayWithValueSemantics() {
        let count = (2 << 20) / MemoryLayout<DecisionMemo.Slot>.stride + 3   // past one huge page
        var table = HugePageArray(repeating: DecisionMemo.Slot(), count: count)
        #expect(table.count == count && table.indices == 0..<count && !table.isEmpty)
        #expect(HugePageArray<DecisionMemo.Slot>().isEmpty && HugePageArray(repeating: 7, count: 0).isEmpty)
        for index in [0, 1, count / 2, count - 1] { table[index].site = Int32(index) }
        let copy = table
        table[1].site = -1
        table[count - 1].ttl = 99
        #expect(copy[1].site == 1 && copy[count - 1].ttl == 0 && copy[count / 2].site == Int32(count / 2))
        #expect(table[1].site == -1 && table[count - 1].ttl == 99 && table[count / 2].site == Int32(count / 2))
        #expect(table[2].site == 0 && table[2].service == -1)   // as initialised
        var small = HugePageArray(repeating: UInt8(5), count: 3)
        small[2] = 6
        #expect([small[0], small[1], small[2]] == [5, 5, 6])
    }

    /// Clients whose hashes share a set do not evict each other while the set has room; a
    /// client past that takes one slot; a reuse's renewal is held until handed over, and
    /// handed over when its slot is taken.
    @Test func theMemoKeepsASetOfClientsAndTheirRenewals() throws {
        var memo = DecisionMemo(capacity: DecisionMemo.ways)   // one set
        let clients = ["198.51.100.0", "203.0.113.0", "192.0.2.0", "198.51.101.0"].prefix(DecisionMemo.ways).map {
            Client(address: IPAddress($0)!, prefixLength: 24)
        }
        for client in clients {
            let held = memo.remember(epoch: 7, service: 0, client: client, site: 1, ttl: 20, scope: 24, sticky: true, now: 100)
            #expect(held == nil)
        }
        for client in clients {
            let found = try #require(memo.find(epoch: 7, service: 0, client: client, now: 100.5))
            #expect(found.slot.site == 1 && found.slot.scope == 24 && found.slot.ttl == 20)
            memo.reuse(at: found.index, now: 100.5)
            #expect(memo.find(epoch: 8, service: 0, client: client, now: 100.5) == nil, "another epoch")
            #expect(memo.find(epoch: 7, service: 1, client: client, now: 100.5) == nil, "another service")
            #expect(memo.find(epoch: 7, service: 0, client: client, now: 101.01) == nil, "after the lifetime")
        }
        let another = Client(address: IPAddress("100.1.0.0")!, prefixLength: 24)
        let evicted = memo.remember(epoch: 7, service: 0, client: another, site: 2, ttl: 20, scope: 24, sticky: true, now: 100.6)
        let held = try #require(evicted)
        #expect(held.queries == 1 && held.lastSeen == 100.5 && clients.contains(held.client), "the evicted client's renewal")
        #expect(clients.filter { memo.find(epoch: 7, service: 0, client: $0, now: 100.6) != nil }.count == DecisionMemo.ways - 1)
        #expect(memo.find(epoch: 7, service: 0, client: another, now: 100.6)?.slot.site == 2)
        var drained: [DecisionMemo.Renewal] = []
        memo.drainRenewals(in: 0..<memo.slotCount) { drained.append($0) }
        #expect(drained.count == DecisionMemo.ways - 1 && drained.allSatisfy { $0.queries == 1 && $0.client != held.client })
        memo.drainRenewals(in: 0..<memo.slotCount) { _ in Issue.record("renewals are handed over once") }
    }

    /// A UDP worker's memo holds the decisions of the clients of a second: at the 8 MiB a
    /// worker of a small machine has, nearly all of 40 000 clients decided within half a
    /// second are still there (98 %; at 2 MiB, fewer than 32 768 of them could be); on a machine
    /// of many workers the memos share 64 MiB; and the worker allocates it before answering.
    @Test func aWorkersMemoHoldsTheClientsOfASecond() throws {
        #expect(UDPWorkers.memoSlots(workers: 1) == 1 << 17 && UDPWorkers.memoSlots(workers: 8) == 1 << 17)
        #expect(UDPWorkers.memoSlots(workers: 16) == 1 << 16, "64 MiB in all")
        #expect(UDPWorkers.memoSlots(workers: 64) == 1 << 15, "never under 2 MiB")
        func client(_ number: Int) -> Client { Client(address: .v4(0x0B00_0000 + UInt32(number) << 8), prefixLength: 24) }
        func kept(slots: Int) -> Int {
            var memo = DecisionMemo(capacity: slots)
            for number in 0..<40_000 {
                _ = memo.remember(epoch: 1, service: 0, client: client(number), site: 0, ttl: 20, scope: 24, sticky: false,
                                  now: 100 + Double(number) / 80_000)
            }
            return (0..<40_000).filter { memo.find(epoch: 1, service: 0, client: client($0), now: 100.6) != nil }.count
        }
        let large = kept(slots: UDPWorkers.memoSlots(workers: 2))
        let small = kept(slots: 1 << 15)
        #expect(large >= 36_000, "\(large) of 40 000 in 8 MiB")
        #expect(small < 32_768 && small < large, "\(small) of 40 000 in 2 MiB")

        var worker = Responder(memoCapacity: UDPWorkers.memoSlots(workers: 2))
        #expect(worker.memo.slotCount == 0)
        worker.allocateMemo()
        #expect(worker.memo.slotCount == 1 << 17)
        var connection = Responder(memoCapacity: 0)
        connection.allocateMemo()
        #expect(connection.memo.slotCount == 0, "a TCP connection's responder remembers nothing")
    }

    /// The periodic hand-over takes only the renewals of expired decisions: an active client's
    /// go with its next decision (`takeRenewal`), once.
    @Test func renewalsGoWithTheNextDecisionOrAfterExpiry() throws {
        var memo = DecisionMemo(capacity: 1 << 10)
        let clients = (0..<8).map { Client(address: .v4(0xC633_6400 + UInt32($0) << 8), prefixLength: 24) }
        for client in clients {
            _ = memo.remember(epoch: 1, service: 0, client: client, site: 0, ttl: 20, scope: 24, sticky: true, now: 100)
            let found = try #require(memo.find(epoch: 1, service: 0, client: client, now: 100.2))
            memo.reuse(at: found.index, now: 100.2)
            memo.reuse(at: found.index, now: 100.3)
        }
        var drained: [DecisionMemo.Renewal] = []
        memo.drainRenewals(in: 0..<memo.slotCount, expiredBy: 100.5) { drained.append($0) }
        #expect(drained.isEmpty, "no decision has expired at 100.5 s")
        // The first client decides again: its reuses go with the decision, once.
        let first = memo.takeRenewal(service: 0, client: clients[0])
        let taken = try #require(first)
        #expect(taken.queries == 2 && taken.lastSeen == 100.3 && taken.client == clients[0])
        let again = memo.takeRenewal(service: 0, client: clients[0])
        #expect(again == nil)
        let other = memo.takeRenewal(service: 1, client: clients[1])
        #expect(other == nil, "another service's slot")
        // The others have stopped asking: after their decisions expired, the sweep takes theirs.
        memo.drainRenewals(in: 0..<memo.slotCount, expiredBy: 101.01) { drained.append($0) }
        #expect(drained.count == 7 && drained.allSatisfy { $0.queries == 2 && $0.client != clients[0] })
    }

    /// A client's set is the client's alone, whatever the service (so `prefetch` can fetch it
    /// before the name is looked up): its decisions for `ways` services share one set of a
    /// large memo, and one more service evicts one of them.
    @Test func aClientsDecisionsForEveryServiceShareItsSet() throws {
        var memo = DecisionMemo(capacity: 1 << 12)
        let client = Client(address: IPAddress("198.51.100.0")!, prefixLength: 24)
        memo.prefetch(client: client)   // before anything is remembered: nothing to fetch, no fault
        for service in 0..<DecisionMemo.ways {
            #expect(memo.remember(epoch: 1, service: service, client: client, site: service, ttl: 20, scope: 24,
                                  sticky: false, now: 100 + Double(service) / 100) == nil)
        }
        memo.prefetch(client: client)
        for service in 0..<DecisionMemo.ways {
            #expect(memo.find(epoch: 1, service: service, client: client, now: 100.5)?.slot.site == Int32(service))
        }
        _ = memo.remember(epoch: 1, service: 9, client: client, site: 9, ttl: 20, scope: 24, sticky: false, now: 100.5)
        let kept = (0..<DecisionMemo.ways).filter { memo.find(epoch: 1, service: $0, client: client, now: 100.5) != nil }
        #expect(kept.count == DecisionMemo.ways - 1, "one more service's decision took one of the client's slots")
        #expect(memo.find(epoch: 1, service: 9, client: client, now: 100.5)?.slot.site == 9)
    }

    /// A decision the fast path makes but cannot answer from one site's template (two
    /// addresses, the all-down answer) is rendered by the general path: the same bytes as a
    /// general-path decision, and one decision, not two.
    @Test func aDecisionNoTemplateHoldsIsRenderedOnce() throws {
        let cases: [(String, (inout SteeringSnapshot) -> Void)] = [
            ("two answers", { $0.services[0].answers = 2 }),
            ("all sites down", { steering in
                for index in steering.loads.indices { steering.loads[index] = SiteLoad(utilization: 0.1, healthy: false, reportedAt: 999_999) }
            }),
        ]
        for (label, change) in cases {
            let loaded = try StateLoader.load(configPath: Example.configPath).get().state   // bindings of its own
            var steering = loaded.steering
            #expect(steering.services[0].name == "api.svc.example.")
            change(&steering)
            let changed = loaded.with(steering: steering)
            var fast = Responder()
            var general = Responder()
            general.usesCompiledAnswers = false
            let query = Self.packet("api.svc.example.", .a, edns: Example.ecs("198.51.100.0/24"), flags: 0, id: 9)
            let first = Self.answer(&fast, query, transport: .udp, state: changed)
            #expect(fast.decidedAnswers == 0 && fast.compiledAnswers == 0, "\(label): rendered by the general path")
            let counts = changed.affinity.counts
            #expect(counts.created == 1 && counts.kept == 0 && counts.movedTotal == 0, "\(label): decided once")
            let reference = Self.answer(&general, query, transport: .udp, state: changed)
            #expect(first == reference, "\(label)")
            let records = first.map { Int($0[6]) << 8 | Int($0[7]) }
            #expect(records == (label == "two answers" ? 2 : 1), "\(label): \(records.map(String.init) ?? "no answer") records")
        }
    }

    /// The fast path writes the same bytes into a datagram's buffer (a UDP worker) as into
    /// the responder's writer (TCP, and any caller without a buffer of its own).
    @Test func theFastPathWritesTheSameIntoABufferAsIntoTheWriter() throws {
        var batch = Responder()
        var writing = Responder()
        let queries = [
            Self.packet("www.svc.example.", .a, edns: nil, flags: 0x0100, id: 1),
            Self.packet("www.svc.example.", .aaaa, edns: EDNS(dnssecOK: true), flags: 0, id: 2),
            Self.packet("api.svc.example.", .a, edns: Example.ecs("198.51.100.0/24"), flags: 0x0010, id: 3),
            Self.packet("API.svc.example.", .aaaa, edns: Example.ecs("2001:db8:aa00::/56"), flags: 0, id: 4),
            Self.packet("api.svc.example.", .a, edns: Example.ecs("198.51.100.0/24"), flags: 0, id: 5),
        ]
        for (index, query) in queries.enumerated() {
            let context = RequestContext(transport: .udp, source: IPAddress("192.0.2.77"), now: 1_000_000)
            let viaWriter = query.withUnsafeBytes { writing.respond(to: $0, context: context, state: state) }
            let viaBuffer = Self.answer(&batch, query, transport: .udp, state: state, source: "192.0.2.77")
            #expect(viaWriter && viaBuffer == writing.response, "query \(index)")
        }
        #expect(batch.compiledAnswers + batch.decidedAnswers == queries.count, "all answered by the fast path")
        #expect(writing.compiledAnswers + writing.decidedAnswers == queries.count)
    }

    /// The name hash and comparison lower eight bytes at a time as `asciiLower` does one:
    /// every byte value in every position, and names of every length around a word's.
    @Test func namesAreLoweredAndComparedAWordAtATime() {
        for position in 0..<8 {
            for value in 0...255 {
                let word = UInt64(0x41) << 56 | UInt64(value) << (8 * position)   // an 'A' beside it, unless replaced
                var expected: UInt64 = 0
                for index in 0..<8 { expected |= UInt64(asciiLower(UInt8(truncatingIfNeeded: word >> (8 * index)))) << (8 * index) }
                #expect(AnswerTable.lowered(word) == expected, "byte \(value) at \(position)")
            }
        }
        for length in 1...20 {
            let lower = (0..<length).map { UInt8(ascii: "a") + UInt8($0 % 26) }
            let mixed = lower.enumerated().map { $0.offset % 2 == 0 ? $0.element - 0x20 : $0.element }
            var other = lower
            other[length - 1] ^= 0x01
            (lower + [0x61, 0x62]).withUnsafeBytes { longer in
                mixed.withUnsafeBytes { #expect(AnswerTable.matches($0, lowered: longer), "length \(length), stored with more after it") }
            }
            lower.withUnsafeBytes { stored in
                mixed.withUnsafeBytes { #expect(AnswerTable.matches($0, lowered: stored), "length \(length)") }
                mixed.withUnsafeBytes {
                    #expect(!AnswerTable.matches($0, lowered: UnsafeRawBufferPointer(rebasing: stored.dropLast())), "stored shorter")
                }
                other.withUnsafeBytes { #expect(!AnswerTable.matches($0, lowered: stored), "length \(length), last byte differs") }
                mixed.withUnsafeBytes { name in
                    lower.withUnsafeBytes { #expect(AnswerTable.hash(name, type: 1) == AnswerTable.hash($0, type: 1)) }
                    #expect(AnswerTable.hash(name, type: 1) != AnswerTable.hash(name, type: 28))
                }
            }
        }
    }

    /// A service's site templates are found by site index, among its own sites only.
    @Test func siteTemplatesAreFoundPerServiceAndSite() {
        func templates(_ marker: UInt16) -> AnswerTable.SiteTemplates {
            let compiled = AnswerTable.Compiled(flags: 0, answerCount: marker, authorityCount: 0, additionalCount: 0, rcode: .noError,
                                                start: 0, length: 0, ttlStart: 0, ttlCount: 0)
            return AnswerTable.SiteTemplates(a: compiled, aaaa: compiled)
        }
        var table = AnswerTable()
        let perService: [[Int: AnswerTable.SiteTemplates]] = [
            [5: templates(5), 2: templates(2), 9: templates(9)], [:], [7: templates(7)],
            Dictionary(uniqueKeysWithValues: (0..<100).map { ($0 * 3, templates(UInt16($0 * 3))) }),
        ]
        table.setServices(perService)
        for (service, sites) in perService.enumerated() {
            for site in -1...300 {
                #expect(table.templates(service: service, site: site)?.a.answerCount == sites[site].map { _ in UInt16(site) },
                        "service \(service) site \(site)")
            }
        }
        #expect(table.templates(service: 4, site: 5) == nil)
        #expect(table.templates(service: -1, site: 5) == nil)
    }

    /// The fast path hands over what it must not answer itself.
    @Test func queriesTheFastPathMustNotAnswer() throws {
        var responder = Responder()
        var cookie = EDNS()
        cookie.options = [EDNSOption(code: .cookie, data: [1, 2, 3, 4, 5, 6, 7, 8])]
        let cases: [(String, [UInt8])] = [
            ("cookie", Self.packet("www.svc.example.", .a, edns: cookie, flags: 0, id: 1)),
            ("EDNS version 1", Self.packet("www.svc.example.", .a, edns: EDNS(version: 1), flags: 0, id: 2)),
            ("NXDOMAIN", Self.packet("nope.svc.example.", .a, edns: EDNS(), flags: 0, id: 3)),
            ("wildcard", Self.packet("foo.wild.svc.example.", .a, edns: EDNS(), flags: 0, id: 4)),
            ("outside", Self.packet("example.org.", .a, edns: EDNS(), flags: 0, id: 5)),
            ("CH", Query(header: Header(id: 6), question: Question(name: try DNSName("id.server."), type: .txt, rrClass: .chaos)).wire),
            ("truncated", Array(Self.packet("www.svc.example.", .a, edns: EDNS(), flags: 0, id: 7).dropLast(3))),
            ("big TXT over UDP", Self.packet("big.svc.example.", .txt, edns: EDNS(udpPayloadSize: 512), flags: 0, id: 8)),
        ]
        for (label, packet) in cases {
            let before = responder.compiledAnswers
            _ = Self.answer(&responder, packet, transport: .udp, state: state)
            #expect(responder.compiledAnswers == before, "\(label) must take the general path")
        }
    }
}
