import Foundation
import Resolver
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The deployment an operator builds (README "Deploying"), with the real programs on
/// loopback: NSD serves the parent zone `example.` and delegates `svc.example.` to two
/// resolverd instances (NS + glue); Unbound, with its subnetcache module, resolves from the
/// root of that delegation and sends ECS to both instances.
///
/// Delegations carry no port, so the authoritative servers listen on port 53 of addresses of
/// their own in 127.0.0.0/8 (every one of them is local on Linux); that needs root or
/// CAP_NET_BIND_SERVICE, which `make test` has.
@Suite(.serialized, .enabled(if: getuid() == 0, "binds port 53 on loopback addresses"))
final class DelegationEndToEndTests {
    /// 127.A.B.0/24, picked at random so that parallel runs do not collide.
    let unboundAddress: String
    let instanceAddresses: [String]
    let parentAddress: String

    let nsd: NSDServer
    let instances: [(dns: LiveServer, http: Int)]
    let unbound: UnboundServer

    static let siteToken = "fra1-report-token-0123456789"

    init() throws {
        let net = "127.\(Int.random(in: 100...199)).\(Int.random(in: 1...254))"
        let (unboundAddress, instanceAddresses, parentAddress) = ("\(net).1", ["\(net).2", "\(net).3"], "\(net).4")
        self.unboundAddress = unboundAddress
        self.instanceAddresses = instanceAddresses
        self.parentAddress = parentAddress
        let parentDirectory = try Paths.temporaryDirectory()
        try """
            $ORIGIN example.
            $TTL 3600
            @        SOA ns.example. hostmaster.example. 1 7200 3600 1209600 300
            @        NS  ns
            ns       A   \(parentAddress)
            ; The delegation an operator adds to the parent: NS and glue for each instance.
            svc      NS  ns1.svc
            svc      NS  ns2.svc
            ns1.svc  A   \(instanceAddresses[0])
            ns2.svc  A   \(instanceAddresses[1])
            """.write(toFile: parentDirectory + "/example.zone", atomically: true, encoding: .utf8)
        nsd = try NSDServer(zonesDirectory: parentDirectory, zones: ["example."], host: parentAddress, port: 53, probe: "example.")

        // Both instances get the same zone, sites, services and latency; only their
        // addresses and names differ.
        let zone = """
            $ORIGIN svc.example.
            $TTL 3600
            @    SOA ns1 hostmaster 1 7200 3600 1209600 300
            @    NS  ns1
            @    NS  ns2
            ns1  A   \(instanceAddresses[0])
            ns2  A   \(instanceAddresses[1])
            www  A   192.0.2.80
            """
        let latency = """
            prefix,site,rtt_ms
            # German access networks: Frankfurt is closest.
            198.51.0.0/16,fra1,4
            198.51.0.0/16,ams1,11
            198.51.0.0/16,par1,13
            # A French access network: Paris is closest.
            203.0.113.0/24,fra1,12
            203.0.113.0/24,ams1,10
            203.0.113.0/24,par1,3
            """
        var instances: [(LiveServer, Int)] = []
        for (index, address) in instanceAddresses.enumerated() {
            let http = freePort()
            let name = "resolverd-\(index == 0 ? "a" : "b")"
            let server = try LiveServer(
                files: ["svc.example.zone": zone, "latency.csv": latency,
                        "tokens.yaml": "\"\(Self.siteToken)\": {site: fra1}\n"],
                host: address, port: 53) { port in
                """
                dns:
                  listen: ["\(address):\(port)"]
                  nsid: \(name)
                  chaos: {id: \(name), version: "resolverd e2e"}
                http:
                  listen: "127.0.0.1:\(http)"
                  tokens: tokens.yaml
                zones: .
                sites:
                  fra1: {addresses: [192.0.2.10], capacity: 800}
                  ams1: {addresses: [192.0.2.20], capacity: 600}
                  par1: {addresses: [192.0.2.30], capacity: 400}
                services:
                  api.svc.example.: {sites: [fra1, ams1, par1], ttl: 60}
                latency:
                  file: latency.csv
                """
            }
            instances.append((server, http))
        }
        self.instances = instances.map { (dns: $0.0, http: $0.1) }
        unbound = try UnboundServer(address: unboundAddress, parent: parentAddress, ecsTo: instanceAddresses)
    }

    deinit {
        unbound.stop()
        for instance in instances { instance.dns.stop() }
        nsd.stop()
    }

    /// `dig` through Unbound with a client subnet: the answer addresses and the ECS scope
    /// Unbound passed back.
    func resolve(_ subnet: String, name: String = "api.svc.example.") throws -> (addresses: [String], scope: Int?) {
        let dig = try #require(Paths.tool("dig"))
        let output = try run(dig, ["@\(unboundAddress)", "-p", "\(unbound.port)", name, "A", "+subnet=\(subnet)",
                                   "+time=5", "+tries=1"]).stdout
        let addresses = output.split(separator: "\n").filter { !$0.hasPrefix(";") && $0.contains("\tA\t") }
            .compactMap { $0.split(separator: "\t").last.map(String.init) }.sorted()
        // "; CLIENT-SUBNET: 198.51.100.0/24/24"
        let scope = output.split(separator: "\n").first { $0.contains("CLIENT-SUBNET:") }
            .flatMap { $0.split(separator: "/").last }.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        return (addresses, scope)
    }

    /// Service answers both instances have given, from their metrics.
    func answersGiven() throws -> Int {
        var total = 0.0
        for instance in instances {
            let text = try run("/usr/bin/curl", ["-s", "http://127.0.0.1:\(instance.http)/metrics"], timeout: 5).stdout
            for line in text.split(separator: "\n") where line.hasPrefix("resolverd_answers_total{")
                && line.contains("service=\"api.svc.example.\"") {
                total += Double(line.split(separator: " ").last ?? "0") ?? 0
            }
        }
        return Int(total)
    }

    /// fra1's health as the instance's steering state has it (its metrics), nil if not shown.
    func fra1Healthy(_ instance: Int) throws -> Bool? {
        let text = try run("/usr/bin/curl", ["-s", "http://127.0.0.1:\(instances[instance].http)/metrics"], timeout: 5).stdout
        let line = text.split(separator: "\n").first { $0.hasPrefix("resolverd_site_healthy{") && $0.contains("site=\"fra1\"") }
        return line.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }.map { $0 > 0 }
    }

    func direct(_ instance: Int, _ subnet: String) throws -> String {
        try instances[instance].dns.dig(["api.svc.example.", "A", "+short", "+subnet=\(subnet)"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func delegationThroughUnboundSteersPerSubnetAndCachesByScope() throws {
        // The parent refers to the instances; Unbound follows the referral and sends ECS.
        let german = try resolve("198.51.100.0/24")
        #expect(german.addresses == ["192.0.2.10"], "German /24 → fra1")
        #expect(german.scope == 24, "resolverd's scope reaches the client through Unbound")
        let french = try resolve("203.0.113.0/24")
        #expect(french.addresses == ["192.0.2.30"], "French /24 → par1")
        let asked = try answersGiven()
        #expect(asked == 2)

        // Another client inside the cached scope (Unbound truncates ECS to /24): from cache.
        let sameScope = try resolve("198.51.100.77/32")
        #expect(sameScope.addresses == ["192.0.2.10"])
        #expect(try answersGiven() == asked, "a client in the same /24 must be served from Unbound's cache")
        // A client outside it: Unbound must ask again.
        let otherScope = try resolve("198.51.101.0/24")
        #expect(otherScope.addresses == ["192.0.2.10"])
        #expect(try answersGiven() == asked + 1, "a client outside the scope must not be served from cache")

        // Static data is the same for everyone: scope 0, so one answer serves every subnet.
        #expect(try resolve("198.51.100.0/24", name: "www.svc.example.").addresses == ["192.0.2.80"])
        let before = try resolve("203.0.113.0/24", name: "www.svc.example.")
        #expect(before.addresses == ["192.0.2.80"])
        #expect(before.scope == 0)
    }

    @Test func instancesFedTheSameReportsGiveTheSameAnswers() throws {
        // Each instance says who it is: NSID and id.server.
        for (index, instance) in instances.enumerated() {
            let name = index == 0 ? "resolverd-a" : "resolverd-b"
            #expect(try instance.dns.dig(["id.server.", "CH", "TXT", "+short"]).contains("\"\(name)\""))
            #expect(try instance.dns.dig(["svc.example.", "SOA", "+nsid"]).contains("NSID: \(name.utf8.map { String(format: "%02x ", $0) }.joined())"))
        }

        // fra1 reports itself down to both instances with one command (the fan-out client).
        let apis = instances.flatMap { ["--api", "http://127.0.0.1:\($0.http)"] }
        let report = try run(Paths.resolverd, ["report"] + apis + ["--site", "fra1", "--token", Self.siteToken,
                                                                    "--utilization", "0", "--healthy", "false"])
        #expect(report.status == 0, "\(report.stdout)\(report.stderr)")
        #expect(report.stdout.split(separator: "\n").count == 2 && report.stdout.split(separator: "\n").allSatisfy { $0.hasSuffix(": 204") })
        // A 204 means queued: the steering state takes it at its next flush (within 20 ms).
        // Both instances must have it before they are asked in step.
        let deadline = Date().addingTimeInterval(10)
        while try !(0..<2).allSatisfy({ try fra1Healthy($0) == false }), Date() < deadline { usleep(20_000) }

        // Fresh German subnets, each asked of both instances: identical answers (placed by
        // rendezvous hashing among ams1 and par1), and none of them on fra1. Each instance
        // also counts the load its own recent answers will bring (anti-herding), which is
        // local state, so they are asked in step.
        var answers: [[String]] = [[], []]
        for third in 10..<40 {
            for instance in 0..<2 { answers[instance].append(try direct(instance, "198.51.\(third).0/24")) }
        }
        #expect(answers[0] == answers[1])
        #expect(Set(answers[0]) == ["192.0.2.20", "192.0.2.30"], "spread over the two remaining sites")

        // A report that reaches only one instance is the failure the fan-out prevents: the
        // instances then disagree (here fra1 recovers on instance a only).
        let partial = try run(Paths.resolverd, ["report", "--api", "http://127.0.0.1:\(instances[0].http)",
                                                "--site", "fra1", "--token", Self.siteToken, "--utilization", "0.1",
                                                "--healthy", "true"])
        #expect(partial.status == 0)
        let recovered = Date().addingTimeInterval(10)
        while try fra1Healthy(0) != true, Date() < recovered { usleep(20_000) }
        let a = try direct(0, "198.51.77.0/24")
        let b = try direct(1, "198.51.77.0/24")
        #expect(a == "192.0.2.10" && b != "192.0.2.10")

        // An instance that cannot be reached makes the command fail and say which.
        let down = try run(Paths.resolverd, ["report", "--api", "http://127.0.0.1:\(instances[0].http)",
                                             "--api", "http://127.0.0.1:\(freePort())",
                                             "--site", "fra1", "--token", Self.siteToken, "--utilization", "0.2"])
        #expect(down.status == 1)
        #expect(down.stdout.contains("\(instances[0].http): 204"))
    }
}

/// `unbound -d` as a recursive resolver on loopback: the subnetcache module, ECS sent to the
/// given authoritative addresses, and `example.` reached through a stub to the parent
/// server (standing in for the root and TLD servers).
final class UnboundServer: @unchecked Sendable {
    let port = freePort()
    let process = Process()
    let directory: String

    init(address: String, parent: String, ecsTo: [String]) throws {
        let unbound = try #require(Paths.tool("unbound"), "unbound is not installed (make test installs it)")
        directory = try Paths.temporaryDirectory()
        let config = """
            server:
              interface: \(address)
              port: \(port)
              directory: "\(directory)"
              chroot: ""
              username: ""
              pidfile: "\(directory)/unbound.pid"
              logfile: "\(directory)/unbound.log"
              use-syslog: no
              verbosity: 1
              num-threads: 1
              do-ip6: no
              do-not-query-localhost: no
              access-control: 127.0.0.0/8 allow
              qname-minimisation: no
              module-config: "subnetcache iterator"
            \(ecsTo.map { "  send-client-subnet: \($0)" }.joined(separator: "\n"))
              max-client-subnet-ipv4: 24
            remote-control:
              control-enable: no
            stub-zone:
              name: "example."
              stub-addr: \(parent)@53
            """
        try config.write(toFile: directory + "/unbound.conf", atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: unbound)
        process.arguments = ["-d", "-c", directory + "/unbound.conf"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if RawDNS.udp(port: port, RawDNS.query("example.", .soa), host: address, timeout: 1) != nil { return }
            guard process.isRunning else { break }
            usleep(100_000)
        }
        let log = (try? String(contentsOfFile: directory + "/unbound.log", encoding: .utf8)) ?? ""
        stop()
        throw UnboundError.notAnswering(log)
    }

    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit { stop() }

    enum UnboundError: Error { case notAnswering(String) }
}
