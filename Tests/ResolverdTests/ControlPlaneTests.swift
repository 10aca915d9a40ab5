import AsyncHTTPClient
import Foundation
import NIOCore
import Testing
@testable import resolverd
#if canImport(Glibc)
import Glibc
#endif

/// A live server with the HTTP API, three sites and tokens, configured per test.
struct ControlServer {
    let dns: LiveServer
    let httpPort: Int
    var base: String { "http://127.0.0.1:\(httpPort)" }

    static let tokens = """
        "fra1-token-0123456789": {site: fra1}
        "par1-token-0123456789": {site: par1}
        "measure-token-0123456789": {role: measurement}
        "admin-token-0123456789": {role: admin}
        """

    /// `sites` replaces the default site block (e.g. to add a health check).
    /// `serviceOptions` are added to the service's settings (e.g. `affinity: {…}`).
    /// `httpPort` picks the API's port (a free one by default); `waitForAPI: false` starts
    /// without waiting for the API to answer.
    init(steering: String = "", sites: String? = nil, extra: String = "", serviceOptions: String = "",
         files: [String: String] = [:], httpPort: Int? = nil, waitForAPI: Bool = true, httpOptions: String = "") throws {
        let http = httpPort ?? freePort()
        self.httpPort = http
        var allFiles = files
        allFiles["tokens.yaml"] = Self.tokens
        allFiles["latency.csv"] = try String(contentsOfFile: Paths.root.appendingPathComponent("latency.csv").path, encoding: .utf8)
        let siteBlock = sites ?? """
            sites:
              fra1: {addresses: [192.0.2.10], capacity: 800}
              ams1: {addresses: [192.0.2.20], capacity: 600}
              par1: {addresses: [192.0.2.30], capacity: 400}
            """
        dns = try LiveServer(files: allFiles) { port in
            """
            dns:
              listen: ["127.0.0.1:\(port)"]
            http:
              listen: "127.0.0.1:\(http)"
              tokens: tokens.yaml
            \(httpOptions.isEmpty ? "" : "  " + httpOptions)
            zones: \(Paths.zones)
            \(siteBlock)
            services:
              api.svc.example.: {sites: [fra1, ams1, par1], ttl: 20\(serviceOptions.isEmpty ? "" : ", " + serviceOptions)}
            latency:
              file: latency.csv
            \(steering)
            \(extra)
            """
        }
        if waitForAPI { try waitForHTTP() }
    }

    func waitForHTTP() throws {
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if (try? run("/usr/bin/curl", ["-s", "-o", "/dev/null", base + "/v1/sites"], timeout: 2))?.status == 0 { return }
            usleep(100_000)
        }
        throw LiveServer.LiveError.notAnswering(dns.log)
    }

    func request(_ method: String, _ path: String, token: String? = nil, body: String? = nil) async throws -> (Int, String) {
        var request = HTTPClientRequest(url: base + path)
        request.method = .init(rawValue: method)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let data = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), String(buffer: data))
    }

    func sites() async throws -> [[String: Any]] {
        let (_, body) = try await request("GET", "/v1/sites")
        let root = try JSONSerialization.jsonObject(with: Data(body.utf8)) as! [String: Any]
        return root["sites"] as! [[String: Any]]
    }

    func site(_ id: String) async throws -> [String: Any] {
        try await sites().first { $0["site"] as? String == id }!
    }

    /// The site `api.svc.example.` is answered with for a French /24 (par1 is nearest).
    func frenchAnswer() throws -> String {
        try dns.dig(["api.svc.example.", "A", "+short", "+subnet=203.0.113.0/24"])
    }
}

/// Polls an async condition for up to `seconds`.
func eventually(_ seconds: Double = 10, _ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(100))
    }
    Issue.record("condition not met within \(seconds) s")
}

@Suite(.serialized) struct ControlPlaneTests {
    @Test func everyStatusCodeAndNothingInvalidReachesTheState() async throws {
        let server = try ControlServer()
        defer { server.dns.stop() }
        let load = "/v1/sites/par1/load"
        let cases: [(String, String, String?, String?, Int)] = [
            ("PUT", load, nil, #"{"utilization":0.9}"#, 401),                          // no token
            ("PUT", load, "forged-token-0123456789", #"{"utilization":0.9}"#, 401),      // unknown token
            ("PUT", load, "fra1-token-0123456789", #"{"utilization":0.9}"#, 403),        // another site's token
            ("PUT", load, "measure-token-0123456789", #"{"utilization":0.9}"#, 403),     // wrong role
            ("PUT", "/v1/sites/par9/load", "par1-token-0123456789", #"{"utilization":0.9}"#, 403), // no probing of names
            ("PUT", "/v1/sites/par9/load", "admin-token-0123456789", #"{"utilization":0.9}"#, 404),
            ("PUT", load, "par1-token-0123456789", #"{"utilization":"high"}"#, 400),
            ("PUT", load, "par1-token-0123456789", #"{"utilization":11}"#, 400),
            ("PUT", load, "par1-token-0123456789", #"{"utilization":-1}"#, 400),
            ("PUT", load, "par1-token-0123456789", #"{"utilization":NaN}"#, 400),
            ("PUT", load, "par1-token-0123456789", #"{"utilization":0.9,"extra":1}"#, 400),
            ("PUT", load, "par1-token-0123456789", #"{"utilization":0.9,"healthy":"yes"}"#, 400),
            ("PUT", load, "par1-token-0123456789", "{\"utilization\":0.9,\"pad\":\"" + String(repeating: "x", count: 70_000) + "\"}", 400),
            ("PUT", "/v1/latency", "par1-token-0123456789", #"[{"prefix":"203.0.113.0/24","site":"par1","rtt_ms":1}]"#, 403),
            ("PUT", "/v1/latency", "measure-token-0123456789", #"[{"prefix":"203.0.113.0/24","site":"par1","rtt_ms":-1}]"#, 400),
            ("POST", "/v1/reload", "par1-token-0123456789", nil, 403),
            ("POST", "/v1/reload", nil, nil, 401),
            // Many sites' reports at once: the same rules, for every site, before any is taken.
            ("PUT", "/v1/loads", nil, #"{"par1":{"utilization":0.9}}"#, 401),
            ("PUT", "/v1/loads", "measure-token-0123456789", #"{"par1":{"utilization":0.9}}"#, 403),
            ("PUT", "/v1/loads", "par1-token-0123456789", #"{"par1":{"utilization":0.9},"fra1":{"utilization":0.9}}"#, 403),
            ("PUT", "/v1/loads", "par1-token-0123456789", #"{"par9":{"utilization":0.9}}"#, 403),
            ("PUT", "/v1/loads", "admin-token-0123456789", #"{"par1":{"utilization":0.9},"par9":{"utilization":0.9}}"#, 404),
            ("PUT", "/v1/loads", "admin-token-0123456789", #"{"par1":{"utilization":0.9},"fra1":{"utilization":11}}"#, 400),
            ("PUT", "/v1/loads", "admin-token-0123456789", #"{}"#, 400),
            ("PUT", "/v1/loads", "admin-token-0123456789", #"[{"utilization":0.9}]"#, 400),
        ]
        for (method, path, token, body, expected) in cases {
            let (status, response) = try await server.request(method, path, token: token, body: body)
            #expect(status == expected, "\(method) \(path) \(body?.prefix(60) ?? "")")
            #expect(response.contains("\"error\""), "JSON reason for \(status)")
        }
        // Nothing of the above reached the state.
        let par1 = try await server.site("par1")
        #expect(par1["utilization"] == nil && par1["report_state"] as? String == "never")
        #expect(try server.frenchAnswer() == "192.0.2.30\n")
        #expect(!server.dns.log.contains("0123456789")) // rejections are logged without the token

        // The good paths.
        #expect(try await server.request("PUT", load, token: "par1-token-0123456789",
                                         body: #"{"utilization":0.4,"capacity":500,"service_ms":8,"queue":3,"healthy":true}"#).0 == 204)
        #expect(try await server.request("PUT", load, token: "admin-token-0123456789", body: #"{"level":2,"score":0.5}"#).0 == 204)
        #expect(try await server.request("PUT", "/v1/latency", token: "measure-token-0123456789",
                                         body: #"[{"prefix":"203.0.113.0/24","site":"par1","rtt_ms":5}]"#).0 == 204)
        #expect(try await server.request("POST", "/v1/reload", token: "admin-token-0123456789").0 == 200)
        try await eventually { try await server.site("par1")["utilization"] as? Double == 0.5 }
        #expect(try await server.request("PUT", "/v1/loads", token: "admin-token-0123456789",
                                         body: #"{"par1":{"level":2,"score":0.6},"fra1":{"utilization":0.3,"healthy":true}}"#).0 == 204)
        #expect(try await server.request("PUT", "/v1/loads", token: "par1-token-0123456789",
                                         body: #"{"par1":{"utilization":0.65}}"#).0 == 204)
        try await eventually { try await server.site("par1")["utilization"] as? Double == 0.65 }
        #expect(try await server.site("fra1")["utilization"] as? Double == 0.3)
        let metrics = try await server.request("GET", "/metrics").1
        #expect(metrics.contains(#"resolverd_http_rejected_total{status="401"} 4"#))
        #expect(metrics.contains(#"resolverd_http_rejected_total{status="403"} 8"#))
        #expect(metrics.contains(#"resolverd_site_utilization{site="par1"} 0.65"#))
        #expect(metrics.contains("resolverd_dns_queries_total{transport=\"udp\",rcode=\"NOERROR\"}"))
    }

    /// The per-site gauges follow the configuration: a site a reload removes is no longer
    /// exported (they are written from the snapshot at each scrape, not kept in the registry).
    @Test func siteGaugesFollowAReload() async throws {
        let server = try ControlServer()
        defer { server.dns.stop() }
        func siteLines() async throws -> [Substring] {
            try await server.request("GET", "/metrics").1.split(separator: "\n").filter { $0.hasPrefix("resolverd_site_") }
        }
        let before = try await siteLines()
        for family in ["utilization", "directed_rps", "healthy", "report_age_seconds"] {
            for site in ["fra1", "ams1", "par1"] {
                #expect(before.contains { $0.hasPrefix("resolverd_site_\(family){site=\"\(site)\"} ") }, "\(family) \(site)")
            }
        }
        #expect(before.contains(#"resolverd_site_report_age_seconds{site="par1"} -1.0"#))
        #expect(try await server.request("PUT", "/v1/sites/par1/load", token: "par1-token-0123456789",
                                         body: #"{"utilization":0.25}"#).0 == 204)
        let directory = server.dns.directory
        let config = try String(contentsOfFile: server.dns.configPath, encoding: .utf8)
        try config.replacingOccurrences(of: "  ams1: {addresses: [192.0.2.20], capacity: 600}\n", with: "")
            .replacingOccurrences(of: "[fra1, ams1, par1]", with: "[fra1, par1]")
            .write(toFile: server.dns.configPath, atomically: true, encoding: .utf8)
        let latency = try String(contentsOfFile: directory + "/latency.csv", encoding: .utf8)
        try latency.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.contains(",ams1,") }
            .joined(separator: "\n").write(toFile: directory + "/latency.csv", atomically: true, encoding: .utf8)
        #expect(try await server.request("POST", "/v1/reload", token: "admin-token-0123456789").0 == 200)
        try await eventually { try await server.sites().count == 2 }
        let after = try await siteLines()
        #expect(!after.isEmpty && !after.contains { $0.contains(#"site="ams1""#) }, "\(after)")
        #expect(after.contains(#"resolverd_site_utilization{site="par1"} 0.25"#))
        #expect(after.filter { $0.hasPrefix("resolverd_site_utilization{") }.count == 2)
    }

    /// The query counters count every answer once, from both answering paths, over UDP (where
    /// a worker adds a batch's counts after sending it) and TCP: NOERROR, NXDOMAIN and REFUSED,
    /// the ECS queries, the fast path's answers.
    @Test func queryCountersCountEveryAnswerOnce() async throws {
        let server = try ControlServer()
        defer { server.dns.stop() }
        func counters() async throws -> [String: Int] {
            var values: [String: Int] = [:]
            for line in try await server.request("GET", "/metrics").1.split(separator: "\n") where line.hasPrefix("resolverd_") {
                let parts = line.split(separator: " ")
                if parts.count == 2, let value = Double(parts[1]) { values[String(parts[0])] = Int(value) }
            }
            return values
        }
        func udp(_ rcode: String) -> String { #"resolverd_dns_queries_total{transport="udp",rcode="\#(rcode)"}"# }
        let tcpNoError = #"resolverd_dns_queries_total{transport="tcp",rcode="NOERROR"}"#
        let ecs = "resolverd_dns_ecs_queries_total", compiled = "resolverd_dns_compiled_answers_total"
        let before = try await counters()

        for _ in 0..<3 { _ = try server.dns.dig(["www.svc.example.", "A", "+nocookie"]) }   // compiled
        for _ in 0..<2 { _ = try server.dns.dig(["nope.svc.example.", "A", "+nocookie"]) }  // general, then kept
        for _ in 0..<2 { _ = try server.dns.dig(["api.svc.example.", "A", "+nocookie", "+subnet=203.0.113.0/24"]) }
        _ = try server.dns.dig(["example.com.", "A", "+nocookie"])                            // REFUSED
        _ = try server.dns.dig(["www.svc.example.", "A", "+tcp"])

        let expected = [udp("NOERROR"): 5, udp("NXDOMAIN"): 2, udp("REFUSED"): 1, tcpNoError: 1, ecs: 2]
        var after: [String: Int] = [:]
        try await eventually {
            after = try await counters()
            return expected.allSatisfy { after[$0.key, default: 0] - before[$0.key, default: 0] >= $0.value }
        }
        for (name, count) in expected {
            #expect(after[name, default: 0] - before[name, default: 0] == count, "\(name)")
        }
        #expect(after[compiled, default: 0] - before[compiled, default: 0] >= 5, "www ×3, the kept NXDOMAIN, the reused api decision")
    }

    /// Load reports are answered from their bytes (`ReportFastPath`) until the first other
    /// request, the rest by the router: on one connection with pipelined requests of both
    /// kinds, every answer comes back in the order of the requests.
    @Test func pipelinedReportsAndOtherRequestsAreAnsweredInOrder() throws {
        let control = try ControlServer()
        defer { control.dns.stop() }
        func put(_ path: String, _ token: String, _ body: String) -> String {
            "PUT \(path) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        }
        let requests = [
            put("/v1/sites/par1/load", "par1-token-0123456789", #"{"utilization":0.5}"#),
            "GET /v1/sites HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin-token-0123456789\r\n\r\n",
            put("/v1/sites/fra1/load", "par1-token-0123456789", #"{"utilization":0.5}"#),
            put("/v1/sites/par1/load?from=test", "par1-token-0123456789", #"{"utilization":0.6}"#),
            put("/v1/sites/par1/load", "par1-token-0123456789", #"{"utilization":"high"}"#),
            "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n",
            put("/v1/sites/par1/load", "par1-token-0123456789", #"{"utilization":0.4}"#),
        ]
        let fd = try #require(RawDNS.connectTCP(port: control.httpPort))
        defer { close(fd) }
        #expect(RawDNS.sendAll(fd, Array(requests.joined().utf8)))
        var text = ""
        let deadline = Date().addingTimeInterval(10)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while text.components(separatedBy: "HTTP/1.1 ").count - 1 < requests.count, Date() < deadline {
            let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard received > 0 else { break }
            text += String(decoding: buffer[0..<received], as: UTF8.self)
        }
        let statuses = text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }
        #expect(statuses == ["204", "200", "403", "204", "400", "404", "204"], "\(text)")
    }

    /// Reports on one connection as an agent sends them: many in one write, one cut into single
    /// bytes, then one asking to close. Each is answered 204 with a Date, in order, and applied;
    /// the connection then closes.
    @Test func reportsFromTheirBytesAreAnsweredInOrderAndApplied() async throws {
        let control = try ControlServer()
        defer { control.dns.stop() }
        func put(_ utilization: String, _ extra: String = "") -> [UInt8] {
            let body = #"{"utilization":\#(utilization)}"#
            return Array("PUT /v1/sites/par1/load HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer par1-token-0123456789\r\n\(extra)Content-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
        }
        let fd = try #require(RawDNS.connectTCP(port: control.httpPort))
        defer { close(fd) }
        #expect(RawDNS.sendAll(fd, (1...20).flatMap { put("0.\($0 + 10)") }))
        for byte in put("0.42") {
            #expect(RawDNS.sendAll(fd, [byte]))
            usleep(200)
        }
        #expect(RawDNS.sendAll(fd, put("0.43", "Connection: close\r\n")))
        var text = ""
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {   // to the close (or the 3 s receive timeout, which fails below)
            let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard received > 0 else { break }
            text += String(decoding: buffer[0..<received], as: UTF8.self)
        }
        let answers = text.components(separatedBy: "HTTP/1.1 ").dropFirst()
        #expect(answers.count == 22, "\(text)")
        #expect(answers.allSatisfy { $0.hasPrefix("204 No Content\r\n") && $0.contains("\r\ndate: ") }, "\(text)")
        #expect(answers.last?.contains("connection: close") == true)
        try await eventually { try await control.site("par1")["utilization"] as? Double == 0.43 }
    }

    /// The API's one event loop is named and runs at `http.nice` (10), the UDP workers at 0.
    @Test func theAPIThreadYieldsToTheDNSWorkers() throws {
        let control = try ControlServer()
        defer { control.dns.stop() }
        let threads = control.dns.threads()
        let http = threads.filter { $0.name == "resolverd-http" }
        let udp = threads.filter { $0.name == "resolverd-udp" }
        #expect(http.count == 1 && http.allSatisfy { $0.nice == 10 }, "\(threads)")
        #expect(!udp.isEmpty && udp.allSatisfy { $0.nice == 0 }, "\(threads)")
    }

    /// `dns.udp-threads` unset: one UDP worker per core the process may run on. Pinned to
    /// one core (`taskset -c 0`), the server starts one, not one per core of the machine.
    @Test func pinnedToOneCoreItStartsOneUDPWorker() throws {
        let taskset = "/usr/bin/taskset"
        try #require(FileManager.default.isExecutableFile(atPath: taskset), "util-linux's taskset (make test installs it)")
        let server = try LiveServer(launcher: [taskset, "-c", "0"]) { port in
            """
            dns:
              listen: ["127.0.0.1:\(port)"]
            zones: \(Paths.zones)
            """
        }
        defer { server.stop() }
        let udp = server.threads().filter { $0.name == "resolverd-udp" }
        #expect(udp.count == 1, "\(server.threads())")
    }

    /// The API paces its reads (`http.coalesce-ms`, 50 ms here) only while more than one
    /// connection is sending: a lone client asking one request at a time is answered at once
    /// each time, while two clients taking turns wait out the interval between turns. (Only
    /// the paced case has a time bound that matters, and it is a lower one: sleeps are never
    /// shorter than asked.)
    @Test func readsArePacedOnlyWhileConnectionsShareTheLoop() throws {
        let control = try ControlServer(httpOptions: "coalesce-ms: 50")
        defer { control.dns.stop() }
        let request = Array(("PUT /v1/sites/par1/load HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer par1-token-0123456789\r\n"
            + "Content-Length: 19\r\n\r\n{\"utilization\":0.5}").utf8)
        func ask(_ fd: Int32) -> Bool {
            guard RawDNS.sendAll(fd, request) else { return false }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            return received > 0 && String(decoding: buffer[0..<received], as: UTF8.self).hasPrefix("HTTP/1.1 204")
        }
        let one = try #require(RawDNS.connectTCP(port: control.httpPort))
        let two = try #require(RawDNS.connectTCP(port: control.httpPort))
        defer { close(one); close(two) }
        var start = Date()
        for _ in 0..<40 { #expect(ask(one)) }
        let alone = Date().timeIntervalSince(start)
        start = Date()
        for turn in 0..<40 { #expect(ask(turn % 2 == 0 ? one : two)) }
        let sharing = Date().timeIntervalSince(start)
        // A turn's answer is written before the loop sleeps, so it is the turn after that
        // waits: 38 intervals at least between the first shared turn and the last.
        #expect(sharing >= 38 * 0.05 * 0.99, "40 turns of two connections took \(sharing) s")
        #expect(alone < sharing / 4, "alone \(alone) s, sharing \(sharing) s")
    }

    /// A report the fast path does not take (a chunked body) goes to the router, and so does
    /// the rest of that connection; the answers are still those of `acceptLoad`.
    @Test func anUnusualReportIsTheRoutersAndSoIsTheRestOfItsConnection() async throws {
        let control = try ControlServer()
        defer { control.dns.stop() }
        let chunked = "PUT /v1/sites/par1/load HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer par1-token-0123456789\r\n"
            + "Transfer-Encoding: chunked\r\n\r\n14\r\n{\"utilization\":0.61}\r\n0\r\n\r\n"
        let plain = "PUT /v1/sites/par1/load HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nobody-0123456789\r\n"
            + "Content-Length: 19\r\n\r\n{\"utilization\":0.5}"
        let fd = try #require(RawDNS.connectTCP(port: control.httpPort))
        defer { close(fd) }
        #expect(RawDNS.sendAll(fd, Array((chunked + plain).utf8)))
        var text = ""
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = Date().addingTimeInterval(10)
        while text.components(separatedBy: "HTTP/1.1 ").count - 1 < 2, Date() < deadline {
            let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard received > 0 else { break }
            text += String(decoding: buffer[0..<received], as: UTF8.self)
        }
        let statuses = text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }
        #expect(statuses == ["204", "401"], "\(text)")
        try await eventually { try await control.site("par1")["utilization"] as? Double == 0.61 }
    }

    @Test func aReportChangesTheAnswerAndExplainShowsIt() async throws {
        // A 2 s hold-down: the client moved away returns once it has passed (FaultTests
        // shows what the hold-down is for).
        let server = try ControlServer(serviceOptions: "affinity: {hold-down: 2}")
        defer { server.dns.stop() }
        #expect(try server.frenchAnswer() == "192.0.2.30\n")
        #expect(try await server.request("PUT", "/v1/sites/par1/load", token: "par1-token-0123456789",
                                         body: #"{"utilization":0.97,"service_ms":10}"#).0 == 204)
        // par1 is 4 servers (400 requests/s of 10 ms) at 97 %: 10 ms + a 78 ms wait = 88 ms
        // (Queueing), and, a first report taken over 10 s (σ = 0.022), a 9 % chance that it is
        // at capacity, where requests meet the 1 000 ms cap: 167 ms (Candidate.model). ams1
        // (10 ms away, unknown load) is now better.
        try await eventually { try server.frenchAnswer() == "192.0.2.20\n" }
        let explain = try run(Paths.resolverd, ["explain", "--server", server.base, "api.svc.example.", "203.0.113.0/24"])
        #expect(explain.status == 0)
        #expect(explain.stdout.contains("choice: ams1 (192.0.2.20)"))
        #expect(explain.stdout.contains("par1    3.0      measured 203.0.113.0/24       0.97   167.0"))
        // Recovery moves it back, after the hold-down. (This report comes some 50 ms after the
        // last: taken as a measurement of at least a second, not of 50 ms, whose error would
        // make the 0.97 → 0.1 swing a large risk; `SiteLoad.utilizationError`.)
        #expect(try await server.request("PUT", "/v1/sites/par1/load", token: "par1-token-0123456789",
                                         body: #"{"utilization":0.1}"#).0 == 204)
        try await eventually { try server.frenchAnswer() == "192.0.2.30\n" }
        let page = try await server.request("GET", "/").1
        for site in ["fra1", "ams1", "par1"] { #expect(page.contains("<td class=\"site\">\(site)</td>")) }
    }

    @Test func aStaleSiteIsExcludedAfterTheLimit() async throws {
        let server = try ControlServer(steering: "steering: {fresh-for: 0.5, stale-after: 2}")
        defer { server.dns.stop() }
        #expect(try await server.request("PUT", "/v1/sites/par1/load", token: "par1-token-0123456789",
                                         body: #"{"utilization":0.2}"#).0 == 204)
        try await eventually { try await server.site("par1")["report_state"] as? String == "fresh" }
        #expect(try server.frenchAnswer() == "192.0.2.30\n")
        try await eventually(6) { try await server.site("par1")["report_state"] as? String == "stale" }
        #expect(try server.frenchAnswer() == "192.0.2.20\n")
        let explain = try run(Paths.resolverd, ["explain", "--server", server.base, "api.svc.example.", "203.0.113.0/24"])
        #expect(explain.stdout.contains("stale"))
    }

    @Test func aFailingTCPHealthCheckMovesTheAnswer() async throws {
        // par1's check targets a real listener on loopback, which the test then closes.
        let listener = try TCPListener()
        let server = try ControlServer(sites: """
            sites:
              fra1: {addresses: [192.0.2.10], capacity: 800}
              ams1: {addresses: [192.0.2.20], capacity: 600}
              par1: {addresses: [127.0.0.1], capacity: 400, check: {tcp: \(listener.port)}}
            """)
        defer { server.dns.stop() }
        #expect(try server.frenchAnswer() == "127.0.0.1\n")
        #expect(try await server.site("par1")["check"] as? String == "passing")
        listener.close()
        try await eventually(10) { try server.frenchAnswer() == "192.0.2.20\n" }
        #expect(try await server.site("par1")["check"] as? String == "failing")
        let metrics = try await server.request("GET", "/metrics").1
        #expect(metrics.contains(#"resolverd_site_check_passing{site="par1"} 0"#))
    }

    @Test func pullsLoadFromARealPrometheus() async throws {
        guard let prometheus = Paths.tool("prometheus") else {
            Issue.record("prometheus is not installed: make test installs Debian's prometheus package")
            return
        }
        // A scrape target: a static metrics file served over HTTP.
        let targetDirectory = try Paths.temporaryDirectory()
        try "# TYPE site_utilization gauge\nsite_utilization{site=\"par1\"} 0.97\n"
            .write(toFile: targetDirectory + "/metrics", atomically: true, encoding: .utf8)
        let targetPort = freePort()
        let target = Process()
        // The system python, not a version-manager shim (a shell script would not pass SIGTERM on).
        target.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        target.arguments = ["-m", "http.server", "\(targetPort)", "--bind", "127.0.0.1", "--directory", targetDirectory]
        target.standardOutput = FileHandle.nullDevice
        target.standardError = FileHandle.nullDevice
        try target.run()
        // SIGKILL: the test runner ignores SIGTERM, and python inherits that.
        defer { kill(target.processIdentifier, SIGKILL); target.waitUntilExit() }

        let promPort = freePort()
        let promDirectory = try Paths.temporaryDirectory()
        try """
            global: {scrape_interval: 1s, evaluation_interval: 1s}
            scrape_configs:
              - job_name: sites
                static_configs: [{targets: ["127.0.0.1:\(targetPort)"]}]
            """.write(toFile: promDirectory + "/prometheus.yml", atomically: true, encoding: .utf8)
        let prom = Process()
        prom.executableURL = URL(fileURLWithPath: prometheus)
        prom.arguments = ["--config.file=\(promDirectory)/prometheus.yml", "--storage.tsdb.path=\(promDirectory)/data",
                          "--web.listen-address=127.0.0.1:\(promPort)"]
        prom.standardOutput = FileHandle.nullDevice
        prom.standardError = FileHandle.nullDevice
        try prom.run()
        defer { kill(prom.processIdentifier, SIGTERM); prom.waitUntilExit() }

        let server = try ControlServer(extra: """
            pull:
              prometheus: "http://127.0.0.1:\(promPort)"
              interval: 1
              queries:
                par1: 'site_utilization{site="par1"} + 0'   # '+' must survive URL encoding
            """)
        defer { server.dns.stop() }
        try await eventually(40) { try await server.site("par1")["utilization"] as? Double == 0.97 }
        try await eventually { try server.frenchAnswer() == "192.0.2.20\n" }
    }
}

/// A TCP listener on a free loopback port that accepts and closes connections.
final class TCPListener: @unchecked Sendable {
    let fd: Int32
    let port: Int

    init() throws {
        port = freePort()
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withLoopback(port: port) { bind(fd, $0, $1) }
        guard bound == 0, listen(fd, 64) == 0 else { throw LiveServer.LiveError.notAnswering("cannot listen on \(port)") }
    }

    func close() { _ = Glibc.close(fd) }
}
