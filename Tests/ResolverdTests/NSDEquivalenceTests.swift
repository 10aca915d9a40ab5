import Foundation
import Resolver
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// NSD from Debian's package, serving the same zone directory on its own loopback port.
final class NSDServer: @unchecked Sendable {
    let port: Int
    let process = Process()
    let directory: String

    init(zonesDirectory: String, zones: [String], host: String = "127.0.0.1", port: Int? = nil, probe: String = "svc.example.") throws {
        let nsd = try #require(Paths.tool("nsd"), "nsd is not installed (make test installs it)")
        self.port = port ?? freePort()
        let port = self.port
        directory = try Paths.temporaryDirectory()
        var config = """
            server:
              ip-address: \(host)@\(port)
              port: \(port)
              username: ""
              zonesdir: "\(zonesDirectory)"
              database: ""
              pidfile: "\(directory)/nsd.pid"
              xfrdfile: "\(directory)/xfrd.state"
              xfrdir: "\(directory)"
              zonelistfile: "\(directory)/zone.list"
              logfile: "\(directory)/nsd.log"
              chroot: ""
              server-count: 1
              verbosity: 1
              hide-version: yes
              minimal-responses: no
            remote-control:
              control-enable: no

            """
        for zone in zones { config += "zone:\n  name: \(zone)\n  zonefile: \(zone.dropLast()).zone\n" }
        try config.write(toFile: directory + "/nsd.conf", atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: nsd)
        process.arguments = ["-d", "-c", directory + "/nsd.conf"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if RawDNS.udp(port: port, RawDNS.query(probe, .soa), host: host, timeout: 1) != nil { return }
            guard process.isRunning else { break }
            usleep(100_000)
        }
        let log = (try? String(contentsOfFile: directory + "/nsd.log", encoding: .utf8)) ?? ""
        stop()
        throw NSDError.notAnswering(log)
    }

    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }

    enum NSDError: Error { case notAnswering(String) }
}

/// One query sent to both servers.
struct EquivalenceCase: Sendable, CustomTestStringConvertible {
    var name: String
    var type: RRType
    var transport: Transport = .udp
    var edns: EDNS? = EDNS()

    var testDescription: String {
        "\(name) \(type) \(transport.rawValue)" + (edns.map { " edns(\($0.udpPayloadSize))" } ?? " noedns")
    }
}

/// The parts of a response that must match NSD: RCODE, AA and TC, and each section as a
/// set of records (owner, type, TTL, RDATA) — order within a section is not significant
/// (RFC 2181 §5).
struct Comparable: Equatable, CustomStringConvertible {
    var rcode: ResponseCode
    var aa: Bool
    var tc: Bool
    var sections: [[String]]
    var hasOPT: Bool

    init(_ message: Message) {
        rcode = message.rcode
        aa = message.header.authoritative
        tc = message.header.truncated
        sections = [message.answer, message.authority, message.additional].map { records in
            records.map { "\($0.name.text.lowercased()) \($0.ttl) \($0.type) \($0.rdata)" }.sorted()
        }
        hasOPT = message.edns != nil
    }

    var description: String {
        "\(rcode) aa=\(aa) tc=\(tc) opt=\(hasOPT)\n  answer: \(sections[0])\n  authority: \(sections[1])\n  additional: \(sections[2])"
    }
}

@Suite(.serialized) struct NSDEquivalenceTests {
    static let names = [
        "svc.example.", "www.svc.example.", "WwW.sVc.ExAmPlE.", "ns1.svc.example.", "mail.svc.example.",
        "alias.svc.example.", "chain.svc.example.", "outside.svc.example.", "dangling.svc.example.",
        "tosub.svc.example.", "host.wild.svc.example.", "a.b.wild.svc.example.", "wild.svc.example.",
        "ent.path.svc.example.", "deep.ent.path.svc.example.", "nope.svc.example.", "no.such.svc.example.",
        "sub.svc.example.", "x.sub.svc.example.", "ns.sub.svc.example.", "_https._tcp.svc.example.",
        "ptr.svc.example.", "opaque.svc.example.", "example.", "www.example.org.",
    ]

    static let cases: [EquivalenceCase] = {
        var cases: [EquivalenceCase] = []
        for name in names {
            for type in [RRType.a, .aaaa, .mx] { cases.append(EquivalenceCase(name: name, type: type)) }
        }
        let specific: [(String, RRType)] = [
            ("svc.example.", .soa), ("svc.example.", .ns), ("svc.example.", .txt), ("svc.example.", .caa),
            ("svc.example.", .any), ("www.svc.example.", .any), ("alias.svc.example.", .cname),
            ("chain.svc.example.", .txt), ("host.wild.svc.example.", .txt), ("sub.svc.example.", .ns),
            ("sub.svc.example.", .ds), ("_https._tcp.svc.example.", .srv), ("ptr.svc.example.", .ptr),
            ("opaque.svc.example.", RRType(rawValue: 65400)), ("big.svc.example.", .txt),
        ]
        for (name, type) in specific { cases.append(EquivalenceCase(name: name, type: type)) }
        // TCP, no EDNS, and small EDNS buffers.
        for (name, type) in [("big.svc.example.", RRType.txt), ("www.svc.example.", .a), ("sub.svc.example.", .a),
                             ("nope.svc.example.", .a), ("_https._tcp.svc.example.", .srv)] {
            cases.append(EquivalenceCase(name: name, type: type, transport: .tcp))
            cases.append(EquivalenceCase(name: name, type: type, edns: nil))
            cases.append(EquivalenceCase(name: name, type: type, edns: EDNS(udpPayloadSize: 512)))
        }
        return cases
    }()

    static func send(_ packet: [UInt8], port: Int, transport: Transport) -> [UInt8]? {
        switch transport {
        case .udp: return RawDNS.udp(port: port, packet)
        case .tcp: return RawDNS.tcpPipelined(port: port, [packet])?.first
        }
    }

    @Test func matchesNSDOnEveryCase() throws {
        #expect(Self.cases.count >= 40)
        let nsd = try NSDServer(zonesDirectory: Paths.zones, zones: ["svc.example."])
        defer { nsd.stop() }
        let server = try LiveServer()
        defer { server.stop() }
        for (index, item) in Self.cases.enumerated() {
            let packet = RawDNS.query(item.name, item.type, id: UInt16(index), edns: item.edns)
            let theirs = try #require(Self.send(packet, port: nsd.port, transport: item.transport), "NSD: \(item.testDescription)")
            let ours = try #require(Self.send(packet, port: server.port, transport: item.transport), "resolverd: \(item.testDescription)")
            let expected = Comparable(try Message(theirs))
            let actual = Comparable(try Message(ours))
            #expect(actual == expected, "\(item.testDescription)\nNSD: \(expected)\nresolverd: \(actual)")
        }
    }

    /// Documented differences (README "Differences from NSD"): each is asserted so that a
    /// change on either side is noticed.
    @Test func documentedDifferences() throws {
        let nsd = try NSDServer(zonesDirectory: Paths.zones, zones: ["svc.example."])
        defer { nsd.stop() }
        let server = try LiveServer()
        defer { server.stop() }
        // 1. NOTIFY and other opcodes: NSD answers REFUSED without an ACL; we answer NOTIMP
        //    (RFC 8906 §3.1.4, as SPEC requires).
        var notify = RawDNS.query("svc.example.", .soa, edns: nil)
        notify[2] = 0x20
        #expect(try Message(try #require(RawDNS.udp(port: nsd.port, notify))).rcode == .refused)
        #expect(try Message(try #require(RawDNS.udp(port: server.port, notify))).rcode == .notImp)
        // 2. ECS: NSD does not implement RFC 7871 and sends no ECS option back; we echo it
        //    with SCOPE 0 for static data (RFC 7871 §7.2.1).
        var writer = WireWriter()
        ClientSubnet(address: .v4(0xC633_6400), sourcePrefixLength: 24).encodeData(into: &writer)
        let ecs = RawDNS.query("www.svc.example.", .a, edns: EDNS(options: [EDNSOption(code: .clientSubnet, data: writer.bytes)]))
        #expect(try Message(try #require(RawDNS.udp(port: nsd.port, ecs))).edns?.clientSubnet == nil)
        let echoed = try Message(try #require(RawDNS.udp(port: server.port, ecs))).edns?.clientSubnet
        #expect(echoed?.sourcePrefixLength == 24 && echoed?.scopePrefixLength == 0)
    }
}
