import Foundation
import Logging
import Resolver
import Scoring
import Testing
@testable import resolverd

/// The shipped example configuration (three sites, latency.csv) answered in process through
/// the same loader and `Responder` that `serve` uses.
enum Example {
    static let configPath = Paths.root.appendingPathComponent("resolverd.yaml").path

    static func ecs(_ prefix: String) -> EDNS {
        let parts = prefix.split(separator: "/")
        let subnet = ClientSubnet(address: IPAddress(parts[0])!, sourcePrefixLength: UInt8(parts[1])!)
        var writer = WireWriter()
        subnet.encodeData(into: &writer)
        return EDNS(options: [EDNSOption(code: .clientSubnet, data: writer.bytes)])
    }

    static func ask(_ name: String, _ type: RRType, edns: EDNS? = EDNS(), source: String = "192.0.2.1",
                    state: ServingState) throws -> Message {
        var responder = Responder()
        let packet = Query(header: Header(id: 7), question: Question(name: try DNSName(name), type: type), edns: edns).wire
        let answered = packet.withUnsafeBytes {
            responder.respond(to: $0, context: RequestContext(transport: .udp, source: IPAddress(source), now: 1_000_000),
                              state: state)
        }
        #expect(answered)
        return try Message(responder.response)
    }
}

@Suite struct ServiceAnswerTests {
    let state: ServingState

    init() throws {
        state = try StateLoader.load(configPath: Example.configPath).get().state
    }

    /// (ECS prefix, qtype) → (address or nil for NODATA, ECS scope). The service has affinity
    /// (hold 300, margin 0.2): a clear best site wins outright; sites within the margin of the
    /// best are split by the rendezvous hash of the client's /24 or /56, which the scope covers.
    static let table: [(String, RRType, String?, UInt8)] = [
        ("198.51.100.0/24", .a, "192.0.2.10", 24),     // German network → fra1
        ("203.0.113.0/24", .a, "192.0.2.30", 24),      // French network → par1
        ("203.0.113.0/24", .aaaa, nil, 0),             // par1 has no IPv6 → NODATA, scope 0 (RFC 7871 §7.4)
        ("2001:db8:100::/56", .aaaa, "2001:db8:2::20", 56), // Dutch IPv6 → ams1; the binding is per /56
        ("198.18.7.0/24", .a, "192.0.2.30", 24),       // London: ams1 and par1 within the margin (fra1 just out); the hash picks par1
        ("0.0.0.0/0", .a, "192.0.2.20", 0),            // ECS /0: the source address decides, scope 0
        ("10.1.2.0/24", .a, "192.0.2.20", 0),          // private ECS: ignored for the source (RFC 7871 §10)
        ("127.0.0.0/24", .a, "192.0.2.20", 0),         // loopback ECS: likewise
        ("fd00:1::/56", .aaaa, "2001:db8:2::20", 0),   // unique-local IPv6 ECS: likewise
    ]

    @Test(arguments: table.indices)
    func answersFromTheDecision(_ index: Int) throws {
        let (prefix, type, address, scope) = Self.table[index]
        let message = try Example.ask("api.svc.example.", type, edns: Example.ecs(prefix), state: state)
        #expect(message.rcode == .noError && message.header.authoritative)
        if let address {
            #expect(message.answer.count == 1)
            #expect(message.answer.first?.rdata == IPAddress(address)!.bytes, "\(prefix)")
            // The service TTL, or shorter when another site is almost as good (adaptive TTL).
            #expect((5...20).contains(message.answer.first?.ttl ?? 0))
        } else {
            #expect(message.answer.isEmpty && message.authority.first?.type == .soa)
        }
        let echoed = try #require(message.edns?.clientSubnet)
        #expect(echoed.sourcePrefixLength == UInt8(prefix.split(separator: "/")[1])!)
        #expect(echoed.scopePrefixLength == scope, "\(prefix)")
    }

    @Test func withoutECSTheSourceAddressIsTheClient() throws {
        let french = try Example.ask("api.svc.example.", .a, source: "203.0.113.77", state: state)
        #expect(french.answer.first?.rdata == [192, 0, 2, 30])
        #expect(french.edns?.clientSubnet == nil) // no ECS back without ECS (RFC 7871 §7.2.2)
        let german = try Example.ask("API.svc.example.", .a, source: "198.51.100.200", state: state)
        #expect(german.answer.first?.rdata == [192, 0, 2, 10])
        #expect(german.answer.first?.name.text == "API.svc.example.")
    }

    /// A private ECS address is set aside for the packet's source, whatever network it names.
    @Test func privateECSFollowsTheSourceAddress() throws {
        let french = try Example.ask("api.svc.example.", .a, edns: Example.ecs("10.9.8.0/24"), source: "203.0.113.77", state: state)
        #expect(french.answer.first?.rdata == [192, 0, 2, 30])
        #expect(french.edns?.clientSubnet?.scopePrefixLength == 0)
        let german = try Example.ask("api.svc.example.", .a, edns: Example.ecs("192.168.1.0/24"), source: "198.51.100.200", state: state)
        #expect(german.answer.first?.rdata == [192, 0, 2, 10])
    }

    /// NXDOMAIN, NODATA and referrals are the same for every client: scope 0 (RFC 7871 §7.4).
    @Test func negativeAnswersAndReferralsHaveScopeZero() throws {
        for (name, rcode) in [("nothere.svc.example.", ResponseCode.nxDomain), ("www.svc.example.", .noError),
                              ("host.sub.svc.example.", .noError)] {
            let message = try Example.ask(name, .mx, edns: Example.ecs("198.51.100.0/24"), state: state)
            #expect(message.rcode == rcode && message.answer.isEmpty, "\(name)")
            #expect(message.edns?.clientSubnet?.scopePrefixLength == 0, "\(name)")
        }
    }

    /// Rate limiting decides before steering: of 40 queries with rate 2 (slip 0), 2 are
    /// answered, and only those 2 count on the client's binding (the load sent to its site).
    @Test func rateLimitedServiceAnswersAreNotSteered() throws {
        let limited = ServingState(catalog: state.catalog, steering: state.steering, services: state.services,
                                   rateLimiter: ResponseRateLimiter(RateLimitConfiguration(rate: 2, window: 1, slip: 0)))
        var responder = Responder()
        let packet = Query(header: Header(id: 9), question: Question(name: try DNSName("api.svc.example."), type: .a),
                           edns: Example.ecs("203.0.113.0/24")).wire
        let answered = (0..<40).filter { _ in
            packet.withUnsafeBytes {
                responder.respond(to: $0, context: RequestContext(transport: .udp, source: IPAddress("192.0.2.1"), now: 1_000_000),
                                  state: limited)
            }
        }.count
        #expect(answered == 2)
        #expect(limited.affinity.entries().map(\.1.queries) == [2])
    }

    @Test func otherTypesAreNoData() throws {
        for type in [RRType.txt, .mx, .ns, .soa] {
            let message = try Example.ask("api.svc.example.", type, edns: Example.ecs("198.51.100.0/24"), state: state)
            #expect(message.rcode == .noError && message.answer.isEmpty)
            #expect(message.authority.map(\.type) == [.soa])
            #expect(message.edns?.clientSubnet?.scopePrefixLength == 0)
        }
    }
}

@Suite struct SteeringConfigTests {
    func check(_ config: String, files: [String: String] = [:]) throws -> (Int32, String) {
        let directory = try Paths.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory + "/zones", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Paths.zones + "/svc.example.zone", toPath: directory + "/zones/svc.example.zone")
        for (name, text) in files { try text.write(toFile: "\(directory)/\(name)", atomically: true, encoding: .utf8) }
        try config.write(toFile: directory + "/resolverd.yaml", atomically: true, encoding: .utf8)
        let result = try run(Paths.resolverd, ["check", "--config", directory + "/resolverd.yaml"])
        return (result.status, result.stderr)
    }

    static let sites = """
        zones: zones
        sites:
          fra1: {addresses: [192.0.2.10], capacity: 800}
          ams1: {addresses: [192.0.2.20], capacity: 600}

        """

    @Test func rejectsBadServices() throws {
        let (status, stderr) = try check(Self.sites + """
            services:
              api.svc.example.:
                sites: [fra1, par9]
              www.svc.example.:
                sites: [fra1]
              api.other.example.:
                sites: [fra1]
              x.sub.svc.example.:
                sites: [ams1]
              API.svc.example.:
                sites: [ams1]
                policy: fastest
            """)
        #expect(status == 1)
        let lines = stderr.split(separator: "\n").map(String.init)
        #expect(lines.contains("resolverd.yaml:7: services.api.svc.example..sites[1]: unknown site \"par9\""))
        #expect(lines.contains("resolverd.yaml:8: services.www.svc.example.: the name has static data in svc.example.zone"))
        #expect(lines.contains("resolverd.yaml:10: services.api.other.example.: not inside any served zone"))
        #expect(lines.contains("resolverd.yaml:12: services.x.sub.svc.example.: below the delegation sub.svc.example."))
        #expect(lines.contains { $0.hasPrefix("resolverd.yaml:16: services.API.svc.example..policy: unknown policy \"fastest\"") })
    }

    @Test func rejectsDuplicateServiceNames() throws {
        let (status, stderr) = try check(Self.sites + """
            services:
              api.svc.example.: {sites: [fra1]}
              API.SVC.example.: {sites: [ams1]}
            """)
        #expect(status == 1)
        #expect(stderr.contains("resolverd.yaml:7: services.API.SVC.example.: duplicate service name"))
    }

    @Test func rejectsMalformedLatencyFile() throws {
        let (status, stderr) = try check(Self.sites + """
            services:
              api.svc.example.: {sites: [fra1, ams1]}
            latency:
              file: rtt.csv
            """, files: ["rtt.csv": "prefix,site,rtt_ms\n203.0.113.0/24,fra1,5\n203.0.113.0/24,ams1,nan\nbogus,fra1,3\n"])
        #expect(status == 1)
        #expect(stderr.contains("rtt.csv:3: rtt_ms \"nan\" is not a finite number"))
        #expect(stderr.contains("rtt.csv:4: \"bogus\" is not a prefix"))
    }

    @Test func rejectsBadSites() throws {
        let (status, stderr) = try check("""
            zones: zones
            sites:
              fra1: {addresses: [192.0.2.300], capacity: -5, location: [95, 8]}
              ams1: {addresses: [192.0.2.20]}
            """)
        #expect(status == 1)
        #expect(stderr.contains("resolverd.yaml:3: sites.fra1.addresses[0]: \"192.0.2.300\" is not an IPv4 or IPv6 address"))
        #expect(stderr.contains("resolverd.yaml:3: sites.fra1.capacity: -5.0 is out of range"))
        #expect(stderr.contains("resolverd.yaml:3: sites.fra1.location"))
        #expect(stderr.contains("resolverd.yaml:4: sites.ams1: capacity (requests/s at full utilisation) is required"))
    }

    @Test func rejectsBadControlAPIPacing() throws {
        let (status, stderr) = try check("""
            zones: zones
            http:
              listen: "127.0.0.1:8053"
              coalesce-ms: 500
              nice: -5
            sites:
              fra1: {addresses: [192.0.2.10], capacity: 800}
            """)
        #expect(status == 1)
        #expect(stderr.contains("resolverd.yaml:4: http.coalesce-ms: 500.0 is out of range 0.0...100.0"), "\(stderr)")
        #expect(stderr.contains("resolverd.yaml:5: http.nice"), "\(stderr)")
    }

    @Test func explainPrintsEveryCandidate() throws {
        let result = try run(Paths.resolverd, ["explain", "--config", Example.configPath, "api.svc.example.", "198.51.100.0/24"])
        #expect(result.status == 0)
        let out = result.stdout
        for site in ["fra1", "ams1", "par1"] { #expect(out.contains("\n\(site) ")) }
        #expect(out.contains("measured 198.51.100.0/24"))
        #expect(out.contains("choice: fra1 (192.0.2.10, 2001:db8:1::10)"))
        #expect(out.contains("ttl: 20  ecs scope: /24"))
        let unknown = try run(Paths.resolverd, ["explain", "--config", Example.configPath, "nope.svc.example.", "198.51.100.1"])
        #expect(unknown.status != 0 && unknown.stderr.contains("not a configured service"))
    }
}

@Suite(.serialized) struct LiveSteeringTests {
    @Test func digWithSubnetGetsTheRightSiteAndScope() throws {
        var files: [String: String] = [:]
        for file in ["latency.csv", "locations.csv", "tokens.yaml"] {
            files[file] = try String(contentsOfFile: Paths.root.appendingPathComponent(file).path, encoding: .utf8)
        }
        let example = try String(contentsOfFile: Example.configPath, encoding: .utf8)
        let server = try LiveServer(files: files) { port in
            example.replacingOccurrences(of: "listen: [\"127.0.0.1:5353\", \"[::1]:5353\"]", with: "listen: [\"127.0.0.1:\(port)\"]")
                .replacingOccurrences(of: "listen: \"127.0.0.1:8053\"", with: "listen: \"127.0.0.1:\(freePort())\"")
                .replacingOccurrences(of: "zones: zones", with: "zones: \(Paths.zones)")
        }
        defer { server.stop() }
        let german = try server.dig(["api.svc.example.", "A", "+subnet=198.51.100.0/24"])
        // Just started, no site has reported load: the first TTL's answers carry 5 s
        // (`AffinityTable.decide`), so that placements made blind are soon looked at again.
        #expect(german.contains("api.svc.example.\t5\tIN\tA\t192.0.2.10"))
        #expect(german.contains("CLIENT-SUBNET: 198.51.100.0/24/24"))
        let french = try server.dig(["api.svc.example.", "A", "+subnet=203.0.113.0/24"])
        #expect(french.contains("IN\tA\t192.0.2.30") && french.contains("CLIENT-SUBNET: 203.0.113.0/24/24"))
        let dutch = try server.dig(["api.svc.example.", "AAAA", "+subnet=2001:db8:100::/56"])
        #expect(dutch.contains("IN\tAAAA\t2001:db8:2::20") && dutch.contains("CLIENT-SUBNET: 2001:db8:100::/56/56"))
        let plain = try server.dig(["api.svc.example.", "A"])
        #expect(plain.contains("IN\tA\t192.0.2.") && !plain.contains("CLIENT-SUBNET"))
    }
}

/// Bindings survive a restart through the state directory.
@Suite(.serialized) struct AffinityRestartTests {
    static func config(state: String) -> (Int) -> String {
        { port in
            """
            dns:
              listen: ["127.0.0.1:\(port)"]
            zones: \(Paths.zones)
            state: \(state)
            sites:
              fra1: {addresses: [192.0.2.10], capacity: 800}
              ams1: {addresses: [192.0.2.20], capacity: 600}
              par1: {addresses: [192.0.2.30], capacity: 400}
            services:
              api.svc.example.: {sites: [fra1, ams1, par1], ttl: 20, affinity: {hold: 300, margin: 0.5}}
            """
        }
    }

    static let subnets = (1...12).map { "198.51.\($0).0/24" }

    func answers(_ server: LiveServer) throws -> [String] {
        try Self.subnets.map { try server.dig(["api.svc.example.", "A", "+short", "+subnet=\($0)"]) }
    }

    @Test func aRestartKeepsExistingClientsOnTheirSites() throws {
        let state = try Paths.temporaryDirectory() + "/state"
        let first = try LiveServer(makeConfig: Self.config(state: state))
        let before = try answers(first)
        #expect(Set(before).count > 1) // the clients are spread over several sites
        #expect(first.stop() == 0)
        let snapshot = try String(contentsOfFile: state + "/bindings.json", encoding: .utf8)
        for subnet in Self.subnets { #expect(snapshot.contains("\"\(subnet)\"")) }

        // Rewrite the snapshot so every client is bound to par1: after the restart the answers
        // must follow the restored bindings, not a fresh choice.
        let rebound = snapshot.replacingOccurrences(of: "\"fra1\"", with: "\"par1\"").replacingOccurrences(of: "\"ams1\"", with: "\"par1\"")
        try rebound.write(toFile: state + "/bindings.json", atomically: true, encoding: .utf8)
        let second = try LiveServer(makeConfig: Self.config(state: state))
        defer { second.stop() }
        #expect(second.log.contains("bindings restored"))
        #expect(try answers(second) == Array(repeating: "192.0.2.30\n", count: Self.subnets.count))
    }

    /// A snapshot keeps every field of a binding, the query count and the site moved from
    /// included: a restart must not make a busy prefix of hours look idle to the load
    /// estimates. A snapshot from before those fields were kept still loads.
    @Test func aSnapshotKeepsEveryFieldOfABinding() throws {
        let state = try Paths.temporaryDirectory() + "/state"
        func persister(_ table: AffinityTable) -> BindingPersister {
            BindingPersister(directory: state, store: StateStore(ServingState(catalog: .empty, nsid: [0], affinity: table)),
                             logger: Logger(label: "test"))
        }
        let bindings: [(AffinityTable.Key, Binding)] = [
            (.init(service: "api.svc.example.", prefix: IPPrefix("198.51.1.0/24")!),
             Binding(site: "par1", boundAt: 1_000, lastSeen: 4_000, queries: 150, previous: "fra1", viaResolver: false)),
            (.init(service: "api.svc.example.", prefix: IPPrefix("2001:db8::/56")!),
             Binding(site: "ams1", boundAt: 2_000, lastSeen: 2_500, queries: 9, previous: nil, viaResolver: true)),
        ]
        let written = AffinityTable()
        written.restore(bindings)
        persister(written).save()
        let read = AffinityTable()
        #expect(persister(read).restore() == 2)
        for (key, binding) in bindings { #expect(read.binding(for: key) == binding) }

        try #"[{"service":"api.svc.example.","prefix":"198.51.2.0/24","site":"fra1","boundAt":5,"lastSeen":6}]"#
            .write(toFile: state + "/bindings.json", atomically: true, encoding: .utf8)
        let old = AffinityTable()
        #expect(persister(old).restore() == 1)
        #expect(old.binding(for: .init(service: "api.svc.example.", prefix: IPPrefix("198.51.2.0/24")!))
                == Binding(site: "fra1", boundAt: 5, lastSeen: 6, queries: 1, previous: nil, viaResolver: false))
    }

    @Test func aCorruptSnapshotIsReportedAndIgnored() throws {
        let state = try Paths.temporaryDirectory() + "/state"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        try "{not json".write(toFile: state + "/bindings.json", atomically: true, encoding: .utf8)
        let server = try LiveServer(makeConfig: Self.config(state: state))
        defer { server.stop() }
        #expect(server.log.contains("binding snapshot is corrupt"))
        #expect(try server.dig(["api.svc.example.", "A", "+short", "+subnet=198.51.1.0/24"]).hasPrefix("192.0.2."))
    }
}
