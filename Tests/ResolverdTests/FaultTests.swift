import Foundation
import Resolver
import Scoring
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Faults around the DNS path: the HTTP API failing or flooded, a full disk, a flapping site,
/// a broken reload. DNS answering must go on through all of them.
@Suite(.serialized) struct FaultTests {
    static func serviceQuery(_ subnet: String) -> [UInt8] {
        let parts = subnet.split(separator: "/")
        var writer = WireWriter()
        ClientSubnet(address: IPAddress(parts[0])!, sourcePrefixLength: UInt8(parts[1])!).encodeData(into: &writer)
        return RawDNS.query("api.svc.example.", .a, edns: EDNS(options: [EDNSOption(code: .clientSubnet, data: writer.bytes)]))
    }

    /// The first address answered for `subnet`, or nil.
    static func answer(_ port: Int, _ subnet: String) -> String? {
        guard let reply = RawDNS.udp(port: port, serviceQuery(subnet), timeout: 1),
              let message = try? Message(reply), let rdata = message.answer.first?.rdata, rdata.count == 4 else { return nil }
        return rdata.map(String.init).joined(separator: ".")
    }

    /// The API's port is taken: the API cannot start, the daemon says so and answers DNS.
    @Test func apiThatCannotStartLeavesDNSAnswering() throws {
        let squatter = try TCPListener()
        defer { squatter.close() }
        let control = try ControlServer(httpPort: squatter.port, waitForAPI: false)
        let server = control.dns
        defer { server.stop() }
        try waitFor { server.log.contains("http api stopped; DNS keeps answering") }
        try Liveness.check(server, "with the API down")
        #expect(Self.answer(server.port, "203.0.113.0/24") == "192.0.2.30")
        #expect(server.process.isRunning)
    }

    /// 300 slow HTTP clients holding connections open and a flood of reports from 8 clients:
    /// every DNS query in the meantime is answered, and the API still works afterwards.
    /// (The flood comes from curl processes, so it does not depend on this process's threads.)
    @Test func apiFloodDoesNotStopDNS() throws {
        let control = try ControlServer()
        let server = control.dns
        let http = control.httpPort
        defer { server.stop() }

        // Slow clients: a request head promising a body that never comes.
        var slow: [Int32] = []
        for _ in 0..<300 {
            guard let fd = RawDNS.connectTCP(port: http) else { continue }
            _ = RawDNS.sendAll(fd, Array("PUT /v1/sites/par1/load HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{".utf8))
            slow.append(fd)
        }
        defer { slow.forEach { close($0) } }
        #expect(slow.count == 300)

        let url = "http://127.0.0.1:\(http)/v1/sites/par1/load"
        let floods = try (0..<8).map { _ in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            process.arguments = ["-s", "-w", "%{http_code}\n", "-X", "PUT", "-H", "Authorization: Bearer par1-token-0123456789",
                                 "--data", #"{"utilization":0.3}"#, "--max-time", "20"] + Array(repeating: url, count: 400)
            let output = Pipe()
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            return (process, output)
        }
        var latencies: [Double] = []
        var unanswered = 0
        let deadline = Date().addingTimeInterval(30)
        while floods.contains(where: { $0.0.isRunning }) && Date() < deadline {
            let start = Date()
            if Self.answer(server.port, "203.0.113.0/24") == nil { unanswered += 1 }
            latencies.append(Date().timeIntervalSince(start))
        }
        var accepted = 0
        for (process, output) in floods {
            if process.isRunning { process.terminate() }
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            accepted += text.split(separator: "\n").filter { $0 == "204" }.count
        }
        latencies.sort()
        let p99 = latencies.isEmpty ? 0 : latencies[latencies.count * 99 / 100] * 1000
        print("api flood: \(accepted) of 3200 reports accepted, \(latencies.count) DNS queries meanwhile, \(unanswered) unanswered, p99 \(p99) ms")
        #expect(unanswered == 0)
        #expect(!latencies.isEmpty)
        #expect(accepted == 3200, "the API accepted \(accepted) of 3200 reports")
        #expect(try run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(http)/v1/sites"]).stdout == "200")
    }

    /// The state directory's disk fills up: the binding snapshot keeps its previous contents,
    /// the daemon says why, and no temporary file is left behind.
    @Test func fullDiskKeepsThePreviousSnapshot() throws {
        let mountPoint = try Paths.temporaryDirectory()
        let mounted = try run("/bin/mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", mountPoint])
        try #require(mounted.status == 0, "cannot mount a tmpfs (the test needs root): \(mounted.stderr)")
        defer { _ = try? run("/bin/umount", ["-l", mountPoint]) }
        let state = mountPoint + "/state"
        let first = try ControlServer(extra: "state: \(state)").dns
        let early = (1...12).map { "198.19.\($0).0/24" }
        for subnet in early { #expect(Self.answer(first.port, subnet) != nil) }
        #expect(first.stop() == 0)
        let snapshot = state + "/bindings.json"
        let saved = try #require(FileManager.default.contents(atPath: snapshot))
        #expect(try JSONSerialization.jsonObject(with: saved) as? [Any] != nil)

        // Fill the disk.
        let filler = FileHandle(forWritingAtPath: { FileManager.default.createFile(atPath: mountPoint + "/filler", contents: nil); return mountPoint + "/filler" }())!
        let chunk = Data(repeating: 0x55, count: 4096)
        while (try? filler.write(contentsOf: chunk)) != nil {}
        try? filler.close()

        let second = try ControlServer(extra: "state: \(state)").dns
        for subnet in (13...40).map({ "198.19.\($0).0/24" }) { #expect(Self.answer(second.port, subnet) != nil) }
        #expect(second.stop() == 0)
        #expect(second.log.contains("cannot write binding snapshot; keeping the previous one"), "\(second.log)")
        #expect(FileManager.default.contents(atPath: snapshot) == saved, "the snapshot changed")
        #expect(!FileManager.default.fileExists(atPath: snapshot + ".tmp"), "a partial snapshot was left behind")
    }

    /// par1 reported down and up again every 250 ms for 4 s. Its clients move away once and,
    /// with the hold-down (30 s by default), stay where they went; clients of other sites never
    /// move. Without a hold-down the same flapping moves them back and forth.
    @Test func aFlappingSiteDoesNotMakeAnswersFlap() throws {
        let subnets = ["203.0.113.0/24", "198.51.100.0/24"] + (1...20).map { "198.19.\($0).0/24" }
        func changes(holdDown: Int?) throws -> (onPar1: [Int], others: [Int]) {
            let control = try ControlServer(serviceOptions: holdDown.map { "affinity: {hold-down: \($0)}" } ?? "")
            let server = control.dns
            let http = control.httpPort
            defer { server.stop() }
            let initial = subnets.map { Self.answer(server.port, $0) }
            #expect(initial[0] == "192.0.2.30" && initial[1] == "192.0.2.10")
            let done = DispatchSemaphore(value: 0)
            DispatchQueue.global().async {
                for index in 0..<16 {
                    _ = try? run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-X", "PUT", "-H", "Authorization: Bearer par1-token-0123456789",
                                                   "--data", #"{"utilization":0.2,"healthy":\#(index % 2 == 1)}"#,
                                                   "http://127.0.0.1:\(http)/v1/sites/par1/load"])
                    usleep(250_000)
                }
                done.signal()
            }
            var history = initial.map { [$0] }
            while done.wait(timeout: .now()) == .timedOut {
                for (index, subnet) in subnets.enumerated() {
                    let answer = Self.answer(server.port, subnet)
                    if answer != history[index].last { history[index].append(answer) }
                }
            }
            let moves = history.map { $0.count - 1 }
            let par1 = subnets.indices.filter { initial[$0] == "192.0.2.30" }
            return (par1.map { moves[$0] }, subnets.indices.filter { !par1.contains($0) }.map { moves[$0] })
        }
        let held = try changes(holdDown: nil)
        #expect(!held.onPar1.isEmpty)
        #expect(held.onPar1.allSatisfy { $0 == 1 }, "answer changes of par1's clients: \(held.onPar1)")
        #expect(held.others.allSatisfy { $0 == 0 }, "answer changes of other clients: \(held.others)")
        let unheld = try changes(holdDown: 0)
        #expect(unheld.onPar1.contains { $0 >= 4 }, "without a hold-down: \(unheld.onPar1)")
        print("flapping par1 ×16: changes per par1 client \(held.onPar1) with hold-down, \(unheld.onPar1) without")
    }

    /// SIGHUP with a configuration that is not YAML, or names an unknown setting, or a zone
    /// that does not parse: nothing changes, and the log says which file and line.
    @Test func brokenReloadsChangeNothing() throws {
        let zones = try Paths.temporaryDirectory()
        try FileManager.default.copyItem(atPath: Paths.zones + "/svc.example.zone", toPath: zones + "/svc.example.zone")
        let server = try LiveServer(zones: zones)
        defer { server.stop() }
        let original = try String(contentsOfFile: server.configPath, encoding: .utf8)
        let nsidQuery = RawDNS.query("www.svc.example.", .a, edns: EDNS(options: [EDNSOption(code: .nsid, data: [])]))
        func nsid() throws -> String {
            let reply = try #require(RawDNS.udp(port: server.port, nsidQuery))
            return String(decoding: try Message(reply).edns?.options.first { $0.code == .nsid }?.data ?? [], as: UTF8.self)
        }
        #expect(try nsid() == "live-test")
        let broken: [(String, String)] = [
            (original.replacingOccurrences(of: "nsid: live-test", with: "nsid: changed\n  listen: [unclosed"), "resolverd.yaml:"),
            (original.replacingOccurrences(of: "nsid: live-test", with: "nsid: changed\n  bogus: 1"), "resolverd.yaml:4: dns.bogus: unknown key"),
            (original.replacingOccurrences(of: "nsid: live-test", with: "nsid: changed\n  rrl: {rate: 0}"), "resolverd.yaml:4: dns.rrl.rate"),
            (original.replacingOccurrences(of: "nsid: live-test", with: "nsid: changed\n  cookies: {secret: abc}"), "resolverd.yaml:4: dns.cookies.secret"),
        ]
        for (index, (text, reason)) in broken.enumerated() {
            try text.write(toFile: server.configPath, atomically: true, encoding: .utf8)
            server.signal(SIGHUP)
            try waitFor { server.log.components(separatedBy: "reload failed").count - 1 == index + 1 }
            #expect(server.log.contains("reload rejected: \(reason)"), "case \(index): \(server.log.suffix(600))")
            #expect(try nsid() == "live-test")
            try Liveness.check(server, "after broken reload \(index)")
        }
        // A broken zone file, with the configuration fixed.
        try original.replacingOccurrences(of: "nsid: live-test", with: "nsid: changed")
            .write(toFile: server.configPath, atomically: true, encoding: .utf8)
        let zone = try String(contentsOfFile: zones + "/svc.example.zone", encoding: .utf8)
        try (zone + "bad IN A 300.1.1.1\n").write(toFile: zones + "/svc.example.zone", atomically: true, encoding: .utf8)
        server.signal(SIGHUP)
        try waitFor { server.log.components(separatedBy: "reload failed").count - 1 == broken.count + 1 }
        #expect(server.log.contains("reload rejected: svc.example.zone:"))
        #expect(try nsid() == "live-test")
        // Fixed: the new configuration is taken.
        try zone.write(toFile: zones + "/svc.example.zone", atomically: true, encoding: .utf8)
        server.signal(SIGHUP)
        try waitFor { try nsid() == "changed" }
    }
}
