import Foundation
import NIOCore
import Resolver
import Scoring
import Simulation
import Testing
@testable import resolverd
#if canImport(Glibc)
import Glibc
#endif

/// Hostile input against a live server over raw sockets: RFC 8906 behaviour, ECS validation
/// (RFC 7871 §7) and cookies (RFC 7873), each case sent over UDP and TCP exactly as written
/// and followed by a query that must still be answered.
@Suite(.serialized) struct ProtocolConformanceTests {
    enum Expect: Sendable {
        case dropped
        /// The RCODE, and a check returning what is wrong with the response (nil: nothing).
        case response(ResponseCode, @Sendable (Message) -> String?)
    }

    struct Case: CustomStringConvertible, Sendable {
        var description: String
        var packet: [UInt8]
        var expect: Expect
    }

    static func query(_ name: String = "www.svc.example.", _ type: RRType = .a, id: UInt16 = 0x5151,
                      options: [EDNSOption] = [], edns: Bool = true) -> [UInt8] {
        RawDNS.query(name, type, id: id, edns: edns ? EDNS(options: options) : nil)
    }

    static func withFlags(_ packet: [UInt8], high: UInt8, low: UInt8) -> [UInt8] {
        var bytes = packet
        bytes[2] = high
        bytes[3] = low
        return bytes
    }

    static func ecs(_ hex: String) -> [EDNSOption] { [EDNSOption(code: .clientSubnet, data: Golden.bytes(hex))] }

    static let question = "0377777703737663076578616d706c650000010001" // www.svc.example. A IN
    static let opt = "0000290200000000000000"                           // root OPT, size 512, no options

    static func answered(count: Int) -> @Sendable (Message) -> String? {
        { $0.answer.count == count ? nil : "expected \(count) answers, got \($0.answer.count)" }
    }

    @Sendable static func noRecords(_ message: Message) -> String? {
        message.answer.isEmpty && message.authority.isEmpty && message.additional.isEmpty ? nil : "records in the response"
    }

    static func scope(_ expected: UInt8) -> @Sendable (Message) -> String? {
        { message in
            guard let subnet = message.edns?.clientSubnet else { return "no ECS option in the response" }
            return subnet.scopePrefixLength == expected ? nil : "scope /\(subnet.scopePrefixLength), expected /\(expected)"
        }
    }

    static let clientCookie = Golden.bytes("0123456789abcdef")

    static let cases: [Case] = [
        // RFC 8906 §3.1.4 / §8.1: unknown opcode → NOTIMP, flags other than QR/opcode cleared, no records.
        Case(description: "opcode 14 with RD, Z, AD, CD", packet: withFlags(query(), high: 14 << 3 | 0x01, low: 0x70),
             expect: .response(.notImp) { message in
                 let flags = message.header.flags
                 if flags != 0x8000 | 14 << 11 | 4 { return "flags \(String(flags, radix: 16))" }
                 return message.questions.isEmpty ? noRecords(message) : "question echoed"
             }),
        Case(description: "opcode NOTIFY", packet: withFlags(query(), high: 4 << 3, low: 0),
             expect: .response(.notImp, noRecords)),
        // RFC 8906 §8.2.2: Z must be ignored and cleared; AD cleared by a non-validating authority.
        Case(description: "Z bit set", packet: withFlags(query(), high: 0, low: 0x40),
             expect: .response(.noError) { $0.header.z ? "Z set in the response" : answered(count: 2)($0) }),
        Case(description: "AD bit set", packet: withFlags(query(), high: 0, low: 0x20),
             expect: .response(.noError) { $0.header.authenticData ? "AD set in the response" : answered(count: 2)($0) }),
        // RFC 8906 §8.2.3, RFC 6891 §6.1.2: unknown options and flags are ignored, not echoed.
        Case(description: "unknown EDNS option", packet: query(options: [EDNSOption(code: EDNSOptionCode(rawValue: 65001), data: [1, 2])]),
             expect: .response(.noError) { message in
                 message.edns?.options.isEmpty == true ? answered(count: 2)(message) : "an option came back"
             }),
        Case(description: "unknown EDNS flag with DO",
             packet: Golden.bytes("515100000001000000000001" + question + "00" + "0029" + "1000" + "0000" + "c000" + "0000"),
             expect: .response(.noError) { message in
                 guard let edns = message.edns else { return "no OPT" }
                 return edns.dnssecOK ? answered(count: 2)(message) : "DO not echoed"
             }),
        // RFC 6891 §6.1.3, RFC 8906 §8.2.4: version 1 → BADVERS, version 0, nothing echoed.
        Case(description: "EDNS version 1 with an unknown flag and option",
             packet: Golden.bytes("515100000001000000000001" + question + "00002910000001" + "4000" + "0008" + "fde90004deadbeef"),
             expect: .response(.badVers) { message in
                 guard let edns = message.edns else { return "no OPT" }
                 if edns.version != 0 || edns.dnssecOK || !edns.options.isEmpty { return "OPT echoes the query: \(edns)" }
                 return message.answer.isEmpty ? nil : "answered"
             }),
        // RFC 6891 §6.1.1: more than one OPT, or OPT elsewhere than the additional section.
        Case(description: "two OPT records", packet: Golden.bytes("515100000001000000000002" + question + opt + opt),
             expect: .response(.formErr, noRecords)),
        Case(description: "OPT owner not the root",
             packet: Golden.bytes("515100000001000000000001" + question + "0161" + String(opt.dropFirst(2))),
             expect: .response(.formErr, noRecords)),
        Case(description: "OPT in the answer section", packet: Golden.bytes("515100000001000100000000" + question + opt),
             expect: .response(.formErr, noRecords)),
        // RFC 8906 §3.1: a response is never answered; neither is less than a header.
        Case(description: "QR=1", packet: withFlags(query(), high: 0x80, low: 0), expect: .dropped),
        Case(description: "11 bytes", packet: Array(query().prefix(11)), expect: .dropped),
        Case(description: "QDCOUNT 0", packet: Golden.bytes("515100000000000000000000"), expect: .response(.formErr, noRecords)),
        Case(description: "QDCOUNT 2", packet: Golden.bytes("515100000002000000000000" + question + question),
             expect: .response(.formErr, noRecords)),
        // RFC 7871 §7.1.1: malformed ECS → FORMERR.
        Case(description: "ECS /24 with 4 address octets", packet: query(options: ecs("00011800c6336401")),
             expect: .response(.formErr, noRecords)),
        Case(description: "ECS bits beyond the source prefix", packet: query(options: ecs("00011700c63365")),
             expect: .response(.formErr, noRecords)),
        Case(description: "ECS IPv4 /33", packet: query(options: ecs("00012100c6336401" + "00")),
             expect: .response(.formErr, noRecords)),
        Case(description: "ECS IPv6 /129", packet: query(options: ecs("00028100" + String(repeating: "20", count: 17))),
             expect: .response(.formErr, noRecords)),
        Case(description: "ECS family 3", packet: query(options: ecs("00031800c63364")),
             expect: .response(.formErr, noRecords)),
        // RFC 7871 §7.1.2, §7.4, §10.
        Case(description: "ECS source /0", packet: query("api.svc.example.", options: ecs("00010000")),
             expect: .response(.noError) { answered(count: 1)($0) ?? scope(0)($0) }),
        Case(description: "ECS from a private network", packet: query("api.svc.example.", options: ecs("00011800" + "0a0102")),
             expect: .response(.noError) { answered(count: 1)($0) ?? scope(0)($0) }),
        Case(description: "ECS on an NXDOMAIN", packet: query("nothere.svc.example.", options: ecs("00011800c63364")),
             expect: .response(.nxDomain, scope(0))),
        Case(description: "ECS on a NODATA", packet: query("www.svc.example.", .mx, options: ecs("00011800c63364")),
             expect: .response(.noError, scope(0))),
        Case(description: "ECS on a referral", packet: query("host.sub.svc.example.", options: ecs("00011800c63364")),
             expect: .response(.noError) { message in
                 message.header.authoritative || message.authority.first?.type != .ns ? "not a referral" : scope(0)(message)
             }),
        Case(description: "ECS on a service answer", packet: query("api.svc.example.", options: ecs("00011800c63364")),
             expect: .response(.noError) { answered(count: 1)($0) ?? scope(24)($0) }),
        // RFC 7873 §5.2.
        Case(description: "client cookie only", packet: query(options: [EDNSOption(code: .cookie, data: clientCookie)]),
             expect: .response(.noError) { message in
                 guard let cookie = message.edns?.options.first(where: { $0.code == .cookie })?.data else { return "no cookie" }
                 if cookie.count != 24 || !cookie.starts(with: clientCookie) || cookie[8] != 1 { return "cookie \(cookie)" }
                 return answered(count: 2)(message)
             }),
        Case(description: "client cookie with a server cookie we did not make",
             packet: query(options: [EDNSOption(code: .cookie, data: clientCookie + Array(repeating: 0xAB, count: 16))]),
             expect: .response(.noError) { message in
                 guard let cookie = message.edns?.options.first(where: { $0.code == .cookie })?.data else { return "no cookie" }
                 return cookie.count == 24 && cookie[8] == 1 && cookie.starts(with: clientCookie) ? nil : "cookie \(cookie)"
             }),
        // RFC 7873 §5.4: no question, only a client cookie → NOERROR with our server cookie.
        Case(description: "QDCOUNT 0 with only a client cookie",
             packet: Golden.bytes("515100000000000000000001" + "00" + "0029" + "1000" + "00000000" + "000c" + "000a0008" + "0123456789abcdef"),
             expect: .response(.noError) { message in
                 guard let cookie = message.edns?.options.first(where: { $0.code == .cookie })?.data else { return "no cookie" }
                 if cookie.count != 24 || !cookie.starts(with: clientCookie) { return "cookie \(cookie)" }
                 return message.questions.isEmpty ? noRecords(message) : "a question in the response"
             }),
        Case(description: "cookie of 5 bytes", packet: query(options: [EDNSOption(code: .cookie, data: [1, 2, 3, 4, 5])]),
             expect: .response(.formErr, noRecords)),
        Case(description: "cookie of 9 bytes", packet: query(options: [EDNSOption(code: .cookie, data: Array(repeating: 1, count: 9))]),
             expect: .response(.formErr, noRecords)),
        Case(description: "cookie of 41 bytes", packet: query(options: [EDNSOption(code: .cookie, data: Array(repeating: 1, count: 41))]),
             expect: .response(.formErr, noRecords)),
    ]

    /// An IPv4 client of a dual-stack socket (::ffff:a.b.c.d) is that IPv4 address.
    @Test func mappedAddressesAreIPv4() throws {
        #expect(IPAddress(try SocketAddress(ipAddress: "::ffff:192.0.2.1", port: 53)) == .v4(0xC000_0201))
        #expect(IPAddress(try SocketAddress(ipAddress: "2001:db8::1", port: 53)) == IPAddress("2001:db8::1"))
    }

    static func exchange(_ packet: [UInt8], port: Int, transport: Transport) -> [UInt8]? {
        switch transport {
        case .udp:
            return RawDNS.udp(port: port, packet, timeout: 1)
        case .tcp:
            guard let fd = RawDNS.connectTCP(port: port, timeout: 1) else { return nil }
            defer { close(fd) }
            guard RawDNS.sendAll(fd, [UInt8(packet.count >> 8), UInt8(packet.count & 0xFF)] + packet),
                  let prefix = RawDNS.receiveExactly(fd, 2) else { return nil }
            return RawDNS.receiveExactly(fd, Int(prefix[0]) << 8 | Int(prefix[1]))
        }
    }

    @Test func everyCaseOverUDPAndTCP() throws {
        let server = try LiveServer(dnsOptions: ["cookies: {secret: 000102030405060708090a0b0c0d0e0f}"],
                                    extraConfig: ServiceConfig.block)
        defer { server.stop() }
        for transport in [Transport.udp, .tcp] {
            for item in Self.cases {
                let label = "\(item) over \(transport)"
                let reply = Self.exchange(item.packet, port: server.port, transport: transport)
                switch item.expect {
                case .dropped:
                    #expect(reply == nil, "\(label): expected no response")
                case .response(let rcode, let check):
                    guard let reply else { Issue.record("\(label): no response"); continue }
                    guard let message = try? Message(reply) else { Issue.record("\(label): undecodable response"); continue }
                    #expect(message.header.id == 0x5151 && message.header.isResponse, "\(label)")
                    #expect(message.rcode == rcode, "\(label): rcode \(message.rcode)")
                    if let problem = check(message) { Issue.record("\(label): \(problem)") }
                }
                try Liveness.check(server, "after \(label)")
            }
        }
    }
}

/// The example service (three sites, latency file) for live servers that need a service name.
enum ServiceConfig {
    static var block: String {
        """
        sites:
          fra1: {addresses: [192.0.2.10, "2001:db8:1::10"], capacity: 800}
          ams1: {addresses: [192.0.2.20, "2001:db8:2::20"], capacity: 600}
          par1: {addresses: [192.0.2.30], capacity: 400}
        services:
          api.svc.example.: {sites: [fra1, ams1, par1], ttl: 20}
        latency:
          file: \(Paths.root.appendingPathComponent("latency.csv").path)
        """
    }
}

/// The query every hostile case is followed by: the server must still answer it, over UDP
/// and over TCP.
enum Liveness {
    static let packet = RawDNS.query("www.svc.example.", .a, id: 0x4C4C)

    static func check(_ server: LiveServer, _ context: String) throws {
        #expect(server.process.isRunning, "server exited \(context)")
        var udp: [UInt8]?
        for _ in 0..<3 where udp == nil { udp = RawDNS.udp(port: server.port, packet, timeout: 1) }
        let tcp = RawDNS.tcpPipelined(port: server.port, [packet])?.first
        for (transport, reply) in [("udp", udp), ("tcp", tcp)] {
            let message = try #require(try reply.map { try Message($0) }, "no \(transport) liveness answer \(context)")
            #expect(message.rcode == .noError && message.answer.count == 2, "\(transport) liveness \(context)")
        }
    }
}

/// Memory of a running process, from /proc.
func residentKilobytes(_ pid: Int32) -> Int {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
    return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
}

/// Valid queries of every kind the server handles, and random damage to them.
enum Mutation {
    static let bases: [[UInt8]] = {
        let ecs = ProtocolConformanceTests.ecs
        let cookie = [EDNSOption(code: .cookie, data: ProtocolConformanceTests.clientCookie)]
        let nsid = [EDNSOption(code: .nsid, data: [])]
        return [
            ProtocolConformanceTests.query(),
            ProtocolConformanceTests.query("api.svc.example.", options: ecs("00011800c63364")),
            ProtocolConformanceTests.query("api.svc.example.", .aaaa, options: ecs("00023800" + "20010db8000100")),
            ProtocolConformanceTests.query("big.svc.example.", .txt, edns: false),
            ProtocolConformanceTests.query("host.sub.svc.example.", .a, options: cookie + nsid),
            ProtocolConformanceTests.query("chain.svc.example.", .a),
            ProtocolConformanceTests.query("x.wild.svc.example.", .any),
            ProtocolConformanceTests.query("svc.example.", .soa, options: nsid),
            Golden.bytes("515100000001000000000001" + ProtocolConformanceTests.question + "00002910000001" + "0000" + "0000"),
        ]
    }()

    static func mutate(_ base: [UInt8], using random: inout SimulationRandom) -> [UInt8] {
        var bytes = base
        switch Int.random(in: 0..<6, using: &random) {
        case 0: // flip a few bytes
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
        case 1: // cut short
            bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &random)))
        case 2: // trailing garbage
            bytes += (0..<Int.random(in: 1...64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        case 3: // section counts
            for offset in [4, 6, 8, 10] where Bool.random(using: &random) {
                bytes[offset] = UInt8.random(in: 0...255, using: &random)
                bytes[offset + 1] = UInt8.random(in: 0...255, using: &random)
            }
        case 4: // a compression pointer somewhere
            let at = Int.random(in: 12..<bytes.count, using: &random)
            bytes[at] = 0xC0 | UInt8.random(in: 0...0x3F, using: &random)
            if at + 1 < bytes.count { bytes[at + 1] = UInt8.random(in: 0...255, using: &random) }
        default: // a random insertion
            let at = Int.random(in: 0...bytes.count, using: &random)
            bytes.insert(contentsOf: (0..<Int.random(in: 1...8, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) },
                         at: at)
        }
        return bytes
    }
}

@Suite(.serialized) struct AbuseTests {
    /// The storm's queries answered in process first: every response decodes as a response
    /// to its query, over both transports' size limits.
    @Test func mutatedQueriesInProcess() throws {
        let state = try StateLoader.load(configPath: Example.configPath).get().state
        var responder = Responder()
        var random = SimulationRandom(seed: 8906)
        for index in 0..<100_000 {
            let packet = Mutation.mutate(Mutation.bases.randomElement(using: &random)!, using: &random)
            let transport: Transport = index % 10 == 0 ? .tcp : .udp
            let answered = packet.withUnsafeBytes {
                responder.respond(to: $0, context: RequestContext(transport: transport, source: IPAddress("192.0.2.1"), now: 1000),
                                  state: state)
            }
            guard answered else { continue }
            let message = try? Message(responder.response)
            if message?.header.isResponse != true || message?.header.id != UInt16(packet[0]) << 8 | UInt16(packet[1]) {
                Issue.record("bad response to \(packet.map { String(format: "%02x", $0) }.joined())")
                return
            }
            if transport == .udp && responder.response.count > 1232 {
                Issue.record("UDP response of \(responder.response.count) bytes")
            }
        }
    }

    /// 100 000 mutated queries over UDP in batches of 1 000 and 1 000 over TCP in batches of
    /// 100: after each batch the server answers; every response it sends decodes; its memory
    /// stays within 64 MB of where it started.
    @Test func mutationStorm() throws {
        let server = try LiveServer(extraConfig: ServiceConfig.block)
        defer { server.stop() }
        try Liveness.check(server, "before the storm")
        let startKB = residentKilobytes(server.process.processIdentifier)
        var random = SimulationRandom(seed: 8906)

        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var buffer = 4 << 20
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, socklen_t(MemoryLayout<Int>.size))
        var received = 0
        var undecodable = 0
        var reply = [UInt8](repeating: 0, count: 65_535)
        func drain(waitMilliseconds: Int32) {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            while poll(&poller, 1, waitMilliseconds) > 0 {
                let count = reply.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                guard count > 0 else { break }
                received += 1
                let message = try? Message(Array(reply[0..<count]))
                if message == nil || message?.header.isResponse != true { undecodable += 1 }
            }
        }
        for batch in 0..<100 {
            for _ in 0..<1000 {
                let packet = Mutation.mutate(Mutation.bases.randomElement(using: &random)!, using: &random)
                _ = packet.withUnsafeBytes { bytes in
                    withLoopback(port: server.port) { sendto(fd, bytes.baseAddress, bytes.count, 0, $0, $1) }
                }
                drain(waitMilliseconds: 0)
            }
            drain(waitMilliseconds: 50)
            try Liveness.check(server, "after UDP batch \(batch)")
        }
        #expect(undecodable == 0, "\(undecodable) of \(received) responses did not decode")
        #expect(received > 20_000, "only \(received) responses to 100 000 queries")

        for batch in 0..<10 {
            if let tcp = RawDNS.connectTCP(port: server.port, timeout: 1) {
                var stream: [UInt8] = []
                for _ in 0..<100 {
                    let packet = Mutation.mutate(Mutation.bases.randomElement(using: &random)!, using: &random)
                    stream += [UInt8(packet.count >> 8), UInt8(packet.count & 0xFF)] + packet
                }
                // Sometimes a length prefix that promises more than is sent.
                if batch % 3 == 0 { stream += [0x40, 0x00, 1, 2, 3] }
                _ = RawDNS.sendAll(tcp, stream)
                usleep(100_000)
                close(tcp)
            }
            try Liveness.check(server, "after TCP batch \(batch)")
        }
        let endKB = residentKilobytes(server.process.processIdentifier)
        #expect(endKB - startKB < 64 * 1024, "RSS grew from \(startKB) kB to \(endKB) kB")
        print("mutation storm: \(received) UDP responses, RSS \(startKB) → \(endKB) kB")
    }

    /// RRL with rate 5, slip 2: 300 identical queries at 20 a second from one client get 5 a
    /// second answered, the rest alternately truncated (TC=1, empty) and dropped; the same
    /// over TCP, and with a valid server cookie over UDP, are all answered; the counters add up.
    @Test func responseRateLimiting() throws {
        let http = freePort()
        let server = try LiveServer(dnsOptions: ["rrl: {rate: 5, slip: 2, window: 1}"],
                                    extraConfig: "http:\n  listen: \"127.0.0.1:\(http)\"")
        defer { server.stop() }
        let query = RawDNS.query("www.svc.example.", .a, id: 0x2020)
        var full = 0, truncated = 0, dropped = 0
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var reply = [UInt8](repeating: 0, count: 4096)
        let start = Date()
        for index in 0..<300 {
            let due = start.addingTimeInterval(Double(index) * 0.05)
            let wait = due.timeIntervalSinceNow
            if wait > 0 { usleep(UInt32(wait * 1_000_000)) }
            _ = query.withUnsafeBytes { bytes in
                withLoopback(port: server.port) { sendto(fd, bytes.baseAddress, bytes.count, 0, $0, $1) }
            }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 40) > 0 else { dropped += 1; continue }
            let count = reply.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            let message = try Message(Array(reply[0..<count]))
            if message.header.truncated {
                #expect(message.answer.isEmpty && message.authority.isEmpty)
                truncated += 1
            } else {
                #expect(message.answer.count == 2)
                full += 1
            }
        }
        print("rrl: \(full) full, \(truncated) truncated, \(dropped) dropped of 300 in \(Date().timeIntervalSince(start)) s")
        // 5 from the full bucket, then 5 a second for 15 s; the rest split evenly.
        #expect((70...90).contains(full), "\(full) full answers")
        #expect(abs(truncated - dropped) <= 10 && truncated + dropped == 300 - full, "\(truncated) TC, \(dropped) dropped")

        // TCP: the same 300 at once, all answered.
        let tcp = try #require(RawDNS.tcpPipelined(port: server.port, Array(repeating: query, count: 300)))
        #expect(tcp.count == 300)
        #expect(try tcp.allSatisfy { try Message($0).answer.count == 2 })

        // A client with a valid server cookie is not limited.
        let first = try #require(RawDNS.udp(port: server.port, RawDNS.query("mail.svc.example.", .a,
            edns: EDNS(options: [EDNSOption(code: .cookie, data: ProtocolConformanceTests.clientCookie)]))))
        let cookie = try #require(try Message(first).edns?.options.first { $0.code == .cookie }?.data)
        let withCookie = RawDNS.query("mail.svc.example.", .a, edns: EDNS(options: [EDNSOption(code: .cookie, data: cookie)]))
        let answered = (0..<50).filter { _ in
            (try? RawDNS.udp(port: server.port, withCookie).map { try Message($0) })??.answer.count == 1
        }.count
        #expect(answered == 50)

        let metrics = try run("/usr/bin/curl", ["-s", "http://127.0.0.1:\(http)/metrics"]).stdout
        func counter(_ action: String) -> Int {
            let prefix = "resolverd_rrl_responses_total{action=\"\(action)\",class=\"answer\"} "
            return metrics.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Int($0.dropFirst(prefix.count)) } ?? -1
        }
        #expect(counter("slipped") == truncated && counter("dropped") == dropped, "\(metrics.split(separator: "\n").filter { $0.contains("rrl") })")
    }

    /// Connections per client, the deadline for a message that trickles in, and a peer that
    /// pipelines queries without reading the responses.
    @Test func tcpLimits() throws {
        let server = try LiveServer(dnsOptions: ["tcp-max-connections-per-client: 3", "tcp-read-timeout: 1"],
                                    extraConfig: ServiceConfig.block)
        defer { server.stop() }
        let query = RawDNS.query("www.svc.example.", .a)
        let framed = [UInt8(query.count >> 8), UInt8(query.count & 0xFF)] + query

        // Three connections from 127.0.0.1 are served; a fourth is closed; 127.0.0.2 is served.
        let held = (0..<3).compactMap { _ in RawDNS.connectTCP(port: server.port) }
        defer { held.forEach { close($0) } }
        #expect(held.count == 3)
        for fd in held {
            let prefix = RawDNS.sendAll(fd, framed) ? RawDNS.receiveExactly(fd, 2) : nil
            #expect(prefix.flatMap { RawDNS.receiveExactly(fd, Int($0[0]) << 8 | Int($0[1])) } != nil)
        }
        let fourth = try #require(RawDNS.connectTCP(port: server.port))
        _ = RawDNS.sendAll(fourth, framed)
        #expect(RawDNS.receiveExactly(fourth, 2) == nil, "a fourth connection from one client was served")
        close(fourth)
        let other = try #require(connectTCP(from: "127.0.0.2", port: server.port))
        #expect(RawDNS.sendAll(other, framed) && RawDNS.receiveExactly(other, 2) != nil, "another client was refused")
        close(other)

        // A message sent one byte every 300 ms is cut off after the 1 s read timeout, although
        // bytes keep arriving (the idle timeout alone would never fire).
        let slow = try #require(connectTCP(from: "127.0.0.3", port: server.port))
        let start = Date()
        var closedAfter: Double?
        for byte in framed {
            guard RawDNS.sendAll(slow, [byte]) else { closedAfter = Date().timeIntervalSince(start); break }
            var poller = pollfd(fd: slow, events: Int16(POLLIN), revents: 0)
            if poll(&poller, 1, 300) > 0 {
                var scratch = [UInt8](repeating: 0, count: 16)
                if scratch.withUnsafeMutableBytes({ recv(slow, $0.baseAddress, $0.count, 0) }) <= 0 {
                    closedAfter = Date().timeIntervalSince(start)
                    break
                }
            }
        }
        close(slow)
        let after = try #require(closedAfter, "a trickled message kept its connection open")
        #expect(after > 0.8 && after < 3, "closed after \(after) s")

        // A peer that sends 20 000 queries for a 2 kB answer without reading: the server stops
        // reading it rather than buffering 40 MB, stays small, serves others, and answers all
        // 20 000 in order once the peer reads. (Without the limit, RSS grew by 15 MB here.)
        let greedy = try #require(connectTCP(from: "127.0.0.4", port: server.port))
        let before = residentKilobytes(server.process.processIdentifier)
        var stream: [UInt8] = []
        let total = 20_000
        for index in 0..<total {
            let big = RawDNS.query("big.svc.example.", .txt, id: UInt16(index))
            stream += [UInt8(big.count >> 8), UInt8(big.count & 0xFF)] + big
        }
        let queries = stream
        let sent = DispatchSemaphore(value: 0)
        let sendResult = Counter()
        DispatchQueue.global().async {
            if RawDNS.sendAll(greedy, queries) { sendResult.increment() }
            sent.signal()
        }
        sleep(1)
        let during = residentKilobytes(server.process.processIdentifier)
        try Liveness.check(server, "while a peer does not read")
        var ids: [UInt16] = []
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(greedy, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        for _ in 0..<total {
            guard let prefix = RawDNS.receiveExactly(greedy, 2),
                  let body = RawDNS.receiveExactly(greedy, Int(prefix[0]) << 8 | Int(prefix[1])) else { break }
            ids.append(UInt16(body[0]) << 8 | UInt16(body[1]))
        }
        sent.wait()
        close(greedy)
        #expect(sendResult.value == 1, "the queries could not all be sent")
        #expect(ids == (0..<total).map { UInt16($0) }, "\(ids.count) of \(total) answered in order")
        #expect(during - before < 6 * 1024, "RSS grew from \(before) kB to \(during) kB")
        print("tcp in-flight: RSS \(before) → \(during) kB while 20 000 × 2 kB answers were asked for and not read")
    }

    func drainAvailable(_ fd: Int32) {
        var scratch = [UInt8](repeating: 0, count: 4096)
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while poll(&poller, 1, 100) > 0 {
            if scratch.withUnsafeMutableBytes({ recv(fd, $0.baseAddress, $0.count, 0) }) <= 0 { break }
        }
    }

    /// A TCP connection from a chosen loopback address (all of 127/8 is local on Linux).
    func connectTCP(from source: String, port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard withLoopback(port: 0, host: source, { bind(fd, $0, $1) }) == 0,
              withLoopback(port: port, { connect(fd, $0, $1) }) == 0 else { close(fd); return nil }
        return fd
    }
}
