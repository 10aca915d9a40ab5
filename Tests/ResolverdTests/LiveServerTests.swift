import Foundation
import Resolver
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `resolverd serve` over real sockets, queried by real clients.
@Suite(.serialized) struct LiveServerTests {
    @Test func digAndKdigOverUDPAndTCP() throws {
        let server = try LiveServer()
        defer { server.stop() }
        #expect(try server.dig(["www.svc.example.", "A", "+short"]) == "192.0.2.80\n192.0.2.81\n")
        #expect(try server.dig(["www.svc.example.", "AAAA", "+short", "+tcp"]) == "2001:db8::80\n")
        let full = try server.dig(["nope.svc.example.", "A"])
        #expect(full.contains("status: NXDOMAIN") && full.contains("flags: qr aa;"))

        let kdig = try #require(Paths.tool("kdig"), "kdig is not installed (make test installs knot-dnsutils)")
        for transport in ["+notcp", "+tcp"] {
            let out = try run(kdig, ["@127.0.0.1", "-p", "\(server.port)", transport, "+short", "chain.svc.example.", "A"]).stdout
            #expect(out == "alias.svc.example.\nwww.svc.example.\n192.0.2.80\n192.0.2.81\n", "kdig \(transport)")
        }
        let nsid = try run(kdig, ["@127.0.0.1", "-p", "\(server.port)", "+nsid", "svc.example.", "SOA"]).stdout
        #expect(nsid.contains("live-test"))
    }

    @Test func truncatedOverUDPIsCompleteOverTCP() throws {
        let server = try LiveServer()
        defer { server.stop() }
        let udp = try server.dig(["big.svc.example.", "TXT", "+ignore"])
        #expect(udp.contains("flags: qr aa tc;") && udp.contains("ANSWER: 0"))
        let tcp = try server.dig(["big.svc.example.", "TXT", "+tcp"])
        #expect(tcp.contains("ANSWER: 1") && !tcp.contains(" tc;"))
        #expect(tcp.contains("chunk07-"))
        // dig's own fallback: UDP truncated, retried over TCP.
        let fallback = try server.dig(["big.svc.example.", "TXT"])
        #expect(fallback.contains("Truncated, retrying in TCP mode") && fallback.contains("chunk00-"))
    }

    @Test func fivePipelinedTCPQueriesAreAllAnswered() throws {
        let server = try LiveServer()
        defer { server.stop() }
        let names = ["www", "mail", "ns1", "nope", "alias"]
        let queries = names.enumerated().map { RawDNS.query("\($1).svc.example.", .a, id: UInt16(100 + $0)) }
        let responses = try #require(RawDNS.tcpPipelined(port: server.port, queries))
        let messages = try responses.map { try Message($0) }
        #expect(messages.map(\.header.id) == [100, 101, 102, 103, 104])
        #expect(messages.map(\.rcode) == [.noError, .noError, .noError, .nxDomain, .noError])
        #expect(messages[4].answer.count == 3) // CNAME + two A
    }

    @Test func idleTCPConnectionsAreClosed() throws {
        let server = try LiveServer()
        defer { server.stop() }
        let fd = try #require(RawDNS.connectTCP(port: server.port, timeout: 6))
        defer { close(fd) }
        let start = Date()
        var byte: UInt8 = 0
        let received = recv(fd, &byte, 1, 0) // blocks until the server closes (idle timeout 2 s)
        #expect(received == 0)
        #expect(Date().timeIntervalSince(start) < 5.5)
    }

    @Test func tcpConnectionLimit() throws {
        let server = try LiveServer(dnsOptions: ["tcp-max-connections: 3"])
        defer { server.stop() }
        var held: [Int32] = []
        for _ in 0..<3 { held.append(try #require(RawDNS.connectTCP(port: server.port))) }
        // Each held connection still answers.
        for fd in held {
            let query = RawDNS.query("www.svc.example.", .a)
            #expect(RawDNS.sendAll(fd, [0, UInt8(query.count)] + query))
            let prefix = try #require(RawDNS.receiveExactly(fd, 2))
            #expect(RawDNS.receiveExactly(fd, Int(prefix[0]) << 8 | Int(prefix[1])) != nil)
        }
        // The fourth is closed by the server at once (RFC 7766 §6.2.2).
        let extra = try #require(RawDNS.connectTCP(port: server.port))
        var byte: UInt8 = 0
        #expect(recv(extra, &byte, 1, 0) <= 0)
        close(extra)
        for fd in held { close(fd) }
        // Once they are gone, new connections are served again; UDP never stopped.
        #expect(try server.dig(["www.svc.example.", "A", "+short"]) == "192.0.2.80\n192.0.2.81\n")
        try waitFor { try server.dig(["www.svc.example.", "A", "+short", "+tcp"]) == "192.0.2.80\n192.0.2.81\n" }
    }

    @Test func malformedInputNeverStopsTheServer() throws {
        let server = try LiveServer()
        defer { server.stop() }
        // Runts and responses are dropped; bad queries get FORMERR; the server stays up.
        #expect(RawDNS.udp(port: server.port, [1, 2, 3], timeout: 1) == nil)
        var response = RawDNS.query("www.svc.example.", .a)
        response[2] |= 0x80
        #expect(RawDNS.udp(port: server.port, response, timeout: 1) == nil)
        let loop: [UInt8] = [0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 0x0C, 0, 1, 0, 1]
        let formerr = try Message(try #require(RawDNS.udp(port: server.port, loop)))
        #expect(formerr.rcode == .formErr && formerr.header.id == 0x1234)
        var random = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            var packet = RawDNS.query("www.svc.example.", .a)
            for _ in 0..<3 { packet[Int.random(in: 0..<packet.count, using: &random)] = UInt8.random(in: 0...255, using: &random) }
            _ = RawDNS.udp(port: server.port, packet, timeout: 0)
        }
        // Garbage over TCP closes that connection only.
        if let fd = RawDNS.connectTCP(port: server.port) {
            _ = RawDNS.sendAll(fd, [0x00, 0x05, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
            close(fd)
        }
        #expect(try server.dig(["www.svc.example.", "A", "+short"]) == "192.0.2.80\n192.0.2.81\n")
        #expect(server.stop() == 0)
    }

    @Test func sighupReloadsAtomicallyAndKeepsOldStateOnError() throws {
        let zones = try Paths.temporaryDirectory()
        let zonePath = zones + "/svc.example.zone"
        try FileManager.default.copyItem(atPath: Paths.zones + "/svc.example.zone", toPath: zonePath)
        let server = try LiveServer(zones: zones)
        defer { server.stop() }
        #expect(try server.dig(["fresh.svc.example.", "A", "+short"]) == "")

        let original = try String(contentsOfFile: zonePath, encoding: .utf8)
        try (original + "fresh IN A 192.0.2.123\n").write(toFile: zonePath, atomically: true, encoding: .utf8)
        server.signal(SIGHUP)
        try waitFor { try server.dig(["fresh.svc.example.", "A", "+short"]) == "192.0.2.123\n" }

        // A broken zone is rejected as a whole; the previous data keeps being served.
        try (original + "broken IN A 999.1.1.1\n").write(toFile: zonePath, atomically: true, encoding: .utf8)
        server.signal(SIGHUP)
        try waitFor { server.log.contains("reload rejected: svc.example.zone:") }
        #expect(try server.dig(["fresh.svc.example.", "A", "+short"]) == "192.0.2.123\n")
        #expect(try server.dig(["www.svc.example.", "A", "+short"]) == "192.0.2.80\n192.0.2.81\n")
    }

    @Test func noQueryIsLostDuringReloads() throws {
        let server = try LiveServer()
        defer { server.stop() }
        let answered = Counter()
        let done = DispatchSemaphore(value: 0)
        let port = server.port
        DispatchQueue.global().async {
            for index in 0..<400 {
                if let reply = RawDNS.udp(port: port, RawDNS.query("www.svc.example.", .a, id: UInt16(index))),
                   let message = try? Message(reply), message.rcode == .noError, message.answer.count == 2 {
                    answered.increment()
                }
            }
            done.signal()
        }
        for _ in 0..<8 {
            server.signal(SIGHUP)
            usleep(50_000)
        }
        done.wait()
        #expect(answered.value == 400)
        // Signals sent close together may be delivered as one; at least one reload must have
        // happened while the queries were running.
        #expect(server.log.components(separatedBy: "reloaded").count - 1 >= 1)
    }

    @Test func gracefulStopOnSIGTERM() throws {
        let server = try LiveServer()
        #expect(server.stop() == 0)
        #expect(server.log.contains("stopped"))
    }

    @Test func servesIPv6() throws {
        let server = try LiveServer { port in
            "dns:\n  listen: [\"[::1]:\(port)\", \"127.0.0.1:\(port)\"]\nzones: \(Paths.zones)\n"
        }
        defer { server.stop() }
        // What dig printed and what the server logged, should it differ (a CI run once got
        // something else over UDP to ::1, and said no more).
        for transport in ["+notcp", "+tcp"] {
            let printed = try server.dig(["www.svc.example.", "AAAA", "+short", transport], server: "::1")
            #expect(printed == "2001:db8::80\n", "\(transport): dig printed \(printed.debugDescription); server log: \(server.log)")
        }
    }
}

/// `resolverd check`: every error as FILE:LINE: message, exit 1.
@Suite struct CheckCommandTests {
    func check(_ config: String, zones: [String: String]) throws -> (Int32, String, String) {
        let directory = try Paths.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory + "/zones", withIntermediateDirectories: true)
        for (name, text) in zones { try text.write(toFile: "\(directory)/zones/\(name)", atomically: true, encoding: .utf8) }
        try config.write(toFile: directory + "/resolverd.yaml", atomically: true, encoding: .utf8)
        let result = try run(Paths.resolverd, ["check", "--config", directory + "/resolverd.yaml"])
        return (result.status, result.stdout, result.stderr)
    }

    static let soa = "@ IN SOA ns.example. admin.example. 1 7200 3600 1209600 300\n@ IN NS ns.example.\n"

    @Test func acceptsShippedExample() throws {
        let result = try run(Paths.resolverd, ["check", "--config", Paths.root.appendingPathComponent("resolverd.yaml").path])
        #expect(result.status == 0)
        #expect(result.stdout.hasPrefix("ok: 1 zone(s) (svc.example.)"))
    }

    @Test func reportsZoneErrorsWithFileAndLine() throws {
        let (status, _, stderr) = try check("zones: zones\n", zones: [
            "example.zone": Self.soa + "www A 192.0.2.1\nwww CNAME x\nbad A not-an-address\n",
            "nosoa.zone": "www A 192.0.2.1\n",
        ])
        #expect(status == 1)
        let lines = stderr.split(separator: "\n").map(String.init)
        #expect(lines.contains("example.zone:4: CNAME and other data at www.example. (A at line 3, CNAME at line 4)"))
        #expect(lines.contains { $0.hasPrefix("example.zone:5: ") })
        #expect(lines.contains("nosoa.zone:1: zone has no SOA record"))
    }

    @Test func reportsConfigErrorsWithPathAndLine() throws {
        let (status, _, stderr) = try check("""
            dns:
              listen: ["127.0.0.1:5353", "localhost"]
              colour: blue
            zones: zones
            """, zones: ["example.zone": Self.soa])
        #expect(status == 1)
        #expect(stderr.contains("resolverd.yaml:2: dns.listen[1]: \"localhost\" is not an address:port"))
        #expect(stderr.contains("resolverd.yaml:3: dns.colour: unknown key"))
    }

    @Test func reportsYAMLSyntaxErrors() throws {
        let (status, _, stderr) = try check("dns:\n  listen: [\"127.0.0.1:53\"\nzones: zones\n", zones: ["example.zone": Self.soa])
        #expect(status == 1)
        #expect(stderr.contains("resolverd.yaml:"))
    }
}

/// Polls `condition` for up to ten seconds.
func waitFor(_ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(10)
    while Date() < deadline {
        if try condition() { return }
        usleep(100_000)
    }
    Issue.record("condition not met within 10 s")
}

/// A thread-safe count for tests that send from another thread.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
