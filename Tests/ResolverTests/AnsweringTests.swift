import Foundation
import Resolver
import Scoring
import Testing

/// The shipped example zone, loaded once for every in-process test.
enum Fixture {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let zonePath = root.appendingPathComponent("zones/svc.example.zone").path

    static let state: ServingState = {
        let zone = try! ZoneFileLoader.load(path: zonePath).get()
        return ServingState(catalog: Catalog(zones: [zone]), nsid: Array("test-nsid".utf8))
    }()

    static func query(_ name: String, _ type: RRType, rrClass: RRClass = .in, edns: EDNS? = EDNS(),
                      id: UInt16 = 0x1234) -> [UInt8] {
        Query(header: Header(id: id), question: Question(name: try! DNSName(name), type: type, rrClass: rrClass),
              edns: edns).wire
    }

    /// Answers in process, through the same `Responder` the transports use.
    static func ask(_ packet: [UInt8], transport: Transport = .udp, state: ServingState = state) -> [UInt8]? {
        var responder = Responder()
        let answered = packet.withUnsafeBytes {
            responder.respond(to: $0, context: RequestContext(transport: transport, source: IPAddress("192.0.2.1")),
                              state: state)
        }
        return answered ? responder.response : nil
    }

    static func answer(_ name: String, _ type: RRType, edns: EDNS? = EDNS(), transport: Transport = .udp) throws -> Message {
        try Message(try #require(ask(query(name, type, edns: edns), transport: transport)))
    }
}

/// One row of the answering table: what the response to (qname, qtype) must contain.
struct AnswerCase: Sendable, CustomTestStringConvertible {
    var qname: String
    var qtype: RRType
    var rcode: ResponseCode = .noError
    var aa = true
    /// "owner TYPE" of each answer record, in order.
    var answer: [String] = []
    var authority: [String] = []
    var additional: [String] = []

    var testDescription: String { "\(qname) \(qtype)" }
}

@Suite struct AnsweringTests {
    static let apexNS = ["svc.example. NS", "svc.example. NS"]
    static let nsAddresses = ["ns1.svc.example. A", "ns2.svc.example. A", "ns1.svc.example. AAAA"]
    static let negative = ["svc.example. SOA"]

    static let cases: [AnswerCase] = [
        AnswerCase(qname: "www.svc.example.", qtype: .a, answer: ["www.svc.example. A", "www.svc.example. A"],
                   authority: apexNS, additional: nsAddresses),
        AnswerCase(qname: "WWW.Svc.Example.", qtype: .aaaa, answer: ["www.svc.example. AAAA"], authority: apexNS,
                   additional: nsAddresses),
        AnswerCase(qname: "svc.example.", qtype: .soa, answer: ["svc.example. SOA"], authority: apexNS, additional: nsAddresses),
        AnswerCase(qname: "svc.example.", qtype: .ns, answer: apexNS, additional: nsAddresses),
        AnswerCase(qname: "svc.example.", qtype: .mx, answer: ["svc.example. MX"], authority: apexNS,
                   additional: ["mail.svc.example. A"] + nsAddresses),
        AnswerCase(qname: "_https._tcp.svc.example.", qtype: .srv, answer: ["_https._tcp.svc.example. SRV"],
                   authority: apexNS,
                   additional: ["www.svc.example. A", "www.svc.example. A", "ns1.svc.example. A", "ns2.svc.example. A",
                                "www.svc.example. AAAA", "ns1.svc.example. AAAA"]),
        AnswerCase(qname: "www.svc.example.", qtype: .mx, authority: negative),
        AnswerCase(qname: "nope.svc.example.", qtype: .a, rcode: .nxDomain, authority: negative),
        AnswerCase(qname: "ent.path.svc.example.", qtype: .a, authority: negative),
        AnswerCase(qname: "chain.svc.example.", qtype: .a,
                   answer: ["chain.svc.example. CNAME", "alias.svc.example. CNAME", "www.svc.example. A", "www.svc.example. A"],
                   authority: apexNS, additional: nsAddresses),
        AnswerCase(qname: "alias.svc.example.", qtype: .cname, answer: ["alias.svc.example. CNAME"], authority: apexNS,
                   additional: nsAddresses),
        AnswerCase(qname: "outside.svc.example.", qtype: .a, answer: ["outside.svc.example. CNAME"]),
        AnswerCase(qname: "host.wild.svc.example.", qtype: .a, answer: ["host.wild.svc.example. A"], authority: apexNS,
                   additional: nsAddresses),
        AnswerCase(qname: "a.b.wild.svc.example.", qtype: .txt, answer: ["a.b.wild.svc.example. TXT"], authority: apexNS,
                   additional: nsAddresses),
        AnswerCase(qname: "host.wild.svc.example.", qtype: .mx, authority: negative),
        AnswerCase(qname: "sub.svc.example.", qtype: .a, aa: false, authority: ["sub.svc.example. NS", "sub.svc.example. NS"],
                   additional: ["ns.sub.svc.example. A"]),
        AnswerCase(qname: "deep.below.sub.svc.example.", qtype: .aaaa, aa: false,
                   authority: ["sub.svc.example. NS", "sub.svc.example. NS"], additional: ["ns.sub.svc.example. A"]),
        AnswerCase(qname: "ns.sub.svc.example.", qtype: .a, aa: false,
                   authority: ["sub.svc.example. NS", "sub.svc.example. NS"], additional: ["ns.sub.svc.example. A"]),
        AnswerCase(qname: "sub.svc.example.", qtype: .ds, authority: negative),
        AnswerCase(qname: "svc.example.", qtype: .any, answer: ["svc.example. SOA"]),
        AnswerCase(qname: "opaque.svc.example.", qtype: RRType(rawValue: 65400), answer: ["opaque.svc.example. TYPE65400"],
                   authority: apexNS, additional: nsAddresses),
        AnswerCase(qname: "www.example.org.", qtype: .a, rcode: .refused, aa: false),
        AnswerCase(qname: "svc.example.", qtype: .axfr, rcode: .refused, aa: false),
    ]

    static func describe(_ records: [Record]) -> [String] { records.map { "\($0.name.text.lowercased()) \($0.type)" } }

    @Test(arguments: cases)
    func answers(_ row: AnswerCase) throws {
        let message = try Fixture.answer(row.qname, row.qtype)
        #expect(message.rcode == row.rcode)
        #expect(message.header.authoritative == row.aa)
        #expect(!message.header.recursionAvailable && !message.header.truncated)
        #expect(Self.describe(message.answer) == row.answer)
        #expect(Self.describe(message.authority) == row.authority)
        #expect(Self.describe(message.additional) == row.additional)
        #expect(message.questions.first?.name == (try DNSName(row.qname)))
    }

    @Test func responseIsByteIdenticalToNSD() throws {
        #expect(Fixture.ask(Golden.digQuery) == Golden.nsdResponse)
        #expect(Fixture.ask(Golden.digNoEDNSQuery) == Golden.nsdNXDomain)
    }

    @Test func echoesQueryCaseAndWildcardOwner() throws {
        let message = try Fixture.answer("MiXeD.wild.svc.example.", .a)
        #expect(message.answer.first?.name.text == "MiXeD.wild.svc.example.")
        #expect(message.answer.first?.rdata == [192, 0, 2, 99])
    }

    @Test func negativeTTLIsSOAMinimum() throws {
        let message = try Fixture.answer("nope.svc.example.", .a)
        #expect(message.authority.first?.ttl == 300) // min(3600, MINIMUM 300), RFC 2308 §3
    }

    @Test func truncatesOverUDPAndAnswersInFullOverTCP() throws {
        let udp = try Fixture.answer("big.svc.example.", .txt)
        #expect(udp.header.truncated && udp.answer.isEmpty && udp.header.authoritative)
        #expect(udp.edns != nil)
        let noEDNS = try Fixture.answer("big.svc.example.", .txt, edns: nil)
        #expect(noEDNS.header.truncated && noEDNS.edns == nil)
        let tcp = try Fixture.answer("big.svc.example.", .txt, transport: .tcp)
        #expect(!tcp.header.truncated && tcp.answer.count == 1 && tcp.answer[0].rdata.count > 1232)
        // A small client buffer truncates what a larger one carries.
        let small = try Fixture.answer("_https._tcp.svc.example.", .srv, edns: EDNS(udpPayloadSize: 512))
        #expect(!small.header.truncated)
        let limit = Fixture.ask(Fixture.query("_https._tcp.svc.example.", .srv, edns: EDNS(udpPayloadSize: 100)))!
        #expect(limit.count <= 512) // below 512 is treated as 512 (RFC 6891 §6.2.5)
    }

    @Test func dropsResponsesAndRunts() {
        #expect(Fixture.ask([0x12, 0x34, 0x00]) == nil)
        var response = Fixture.query("www.svc.example.", .a)
        response[2] |= 0x80
        #expect(Fixture.ask(response) == nil)
    }

    @Test func notImplementedOpcodeClearsFlags() throws {
        var packet = Fixture.query("svc.example.", .soa)
        packet[2] = 0x20 | 0x05 // NOTIFY with AA and RD
        packet[3] = 0x30 // AD, CD
        let message = try Message(try #require(Fixture.ask(packet)))
        #expect(message.rcode == .notImp && message.header.opcode == .notify)
        #expect(message.header.flags & 0x07F0 == 0)
        #expect(message.questions.isEmpty && message.answer.isEmpty && message.edns == nil)
    }

    @Test func malformedGetsFormErr() throws {
        for hex in WireCodecTests.invalid.map(\.1) where hex.count >= 24 {
            let message = try Message(try #require(Fixture.ask(Golden.bytes(hex)), "\(hex)"))
            #expect(message.rcode == .formErr, "\(hex)")
        }
        let optQuestion = try Message(try #require(Fixture.ask(Fixture.query("svc.example.", .opt))))
        #expect(optQuestion.rcode == .formErr)
    }

    @Test func badVersionGetsBADVERS() throws {
        let message = try Fixture.answer("www.svc.example.", .a,
            edns: EDNS(version: 1, options: [EDNSOption(code: .nsid, data: []), EDNSOption(code: EDNSOptionCode(rawValue: 65001), data: [1])]))
        #expect(message.rcode == .badVers && message.answer.isEmpty)
        #expect(message.edns?.version == 0 && message.edns?.options.isEmpty == true)
    }

    @Test func unknownOptionsAndFlagsIgnored() throws {
        var packet = Fixture.query("www.svc.example.", .a,
            edns: EDNS(options: [EDNSOption(code: EDNSOptionCode(rawValue: 65001), data: [0xab])]))
        packet[packet.count - 9] = 0x7F // unknown EDNS flag bits (RFC 6891 §6.1.4 Z)
        packet[3] |= 0x40 // header Z bit
        let message = try Message(try #require(Fixture.ask(packet)))
        #expect(message.rcode == .noError && message.answer.count == 2)
        #expect(message.edns?.options.isEmpty == true && message.edns?.dnssecOK == false)
        #expect(!message.header.z)
    }

    @Test func echoesECSWithScopeZeroAndNSID() throws {
        let subnet = ClientSubnet(address: IPAddress("198.51.100.0")!, sourcePrefixLength: 24)
        var writer = WireWriter()
        subnet.encodeData(into: &writer)
        let message = try Fixture.answer("www.svc.example.", .a, edns: EDNS(options: [
            EDNSOption(code: .clientSubnet, data: writer.bytes), EDNSOption(code: .nsid, data: [])]))
        #expect(message.edns?.clientSubnet == ClientSubnet(address: IPAddress("198.51.100.0")!, sourcePrefixLength: 24,
                                                           scopePrefixLength: 0))
        #expect(message.edns?.options.first(where: { $0.code == .nsid })?.data == Array("test-nsid".utf8))
        let plain = try Fixture.answer("www.svc.example.", .a)
        #expect(plain.edns?.options.isEmpty == true) // no ECS without ECS, no NSID unasked
    }
}

@Suite struct StateStoreTests {
    /// Concurrent writers through `update` lose nothing: each increment is applied once.
    @Test func concurrentUpdatesAreNotLost() async {
        let store = StateStore(ServingState(catalog: .empty, nsid: [0]))
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for _ in 0..<250 {
                        store.update { ServingState(catalog: $0.catalog, nsid: [$0.nsid![0] &+ 1]) }
                    }
                }
            }
        }
        // 2000 increments of a byte: 2000 mod 256.
        #expect(store.state.nsid == [UInt8(2000 % 256)])
    }
}
