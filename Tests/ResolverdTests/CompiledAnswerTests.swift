import Foundation
import Resolver
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

    static func answer(_ responder: inout Responder, _ packet: [UInt8], transport: Transport, state: ServingState,
                       source: String = "198.51.100.7") -> [UInt8]? {
        let answered = packet.withUnsafeBytes {
            responder.respond(to: $0, context: RequestContext(transport: transport, source: IPAddress(source), now: 1_000_000),
                              state: state)
        }
        return answered ? responder.response : nil
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

    /// Service names: the first query of a client is decided by the general path; the next
    /// ones within the same state reuse the decision and must give the same bytes (the
    /// general path's answer for a kept binding).
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
    }

    /// A decision is not reused in another state (a report or reload) nor after its second.
    @Test func aRememberedDecisionLastsOneStateAndOneSecond() throws {
        var responder = Responder()
        let query = Self.packet("api.svc.example.", .a, edns: Example.ecs("198.51.100.0/24"), flags: 0, id: 1)
        func ask(_ state: ServingState, at now: Double) -> [UInt8]? {
            query.withUnsafeBytes {
                responder.respond(to: $0, context: RequestContext(transport: .udp, source: IPAddress("192.0.2.1"), now: now),
                                  state: state)
            } ? responder.response : nil
        }
        _ = ask(state, at: 1_000_000)
        #expect(responder.compiledAnswers == 0, "a new binding is decided")
        _ = ask(state, at: 1_000_000.5)
        #expect(responder.compiledAnswers == 1, "and reused")
        _ = ask(state, at: 1_000_001.2)
        #expect(responder.compiledAnswers == 1, "a decision older than a second is made anew")
        _ = ask(state, at: 1_000_001.3)
        #expect(responder.compiledAnswers == 2)
        let next = state.with(steering: state.steering)
        _ = ask(next, at: 1_000_001.4)
        #expect(responder.compiledAnswers == 2, "another state decides anew")
        _ = ask(next, at: 1_000_001.5)
        #expect(responder.compiledAnswers == 3)
        #expect(state.affinity.counts.created == 1)
        #expect(state.affinity.counts.kept == 5, "every reuse renews the binding as a kept decision does")
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
