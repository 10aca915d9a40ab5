import Foundation
import Logging
import Resolver
import Scoring
import Testing
@testable import resolverd
#if canImport(Glibc)
import Glibc
#endif

/// Log lines, as parsers (go-logfmt, `jq`) read them.
@Suite struct StructuredLogTests {
    let time = Date(timeIntervalSince1970: 1_795_000_000.25)

    @Test func logfmtQuotesOnlyWhatNeedsIt() {
        let line = LogFormat.logfmt.line(time: time, level: .warning, message: "reload rejected",
                                         metadata: ["zones": "3", "path": "a b=\"c\"\nd", "empty": ""])
        #expect(line == #"ts=2026-11-18T11:06:40.250Z level=warning msg="reload rejected" empty="" path="a b=\"c\"\nd" zones=3"#)
    }

    @Test func jsonIsOneObjectPerLine() throws {
        let line = LogFormat.json.line(time: time, level: .info, message: "listening",
                                       metadata: ["address": "[::1]:53", "list": .array(["a", "b"]), "ctl": "\u{1}\t"])
        #expect(line == #"{"ts":"2026-11-18T11:06:40.250Z","level":"info","msg":"listening","address":"[::1]:53","ctl":"\u0001\t","list":"a,b"}"#)
        let object = try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
        #expect(object["ctl"] == "\u{1}\t")
    }

    @Test func metadataCannotOverwriteTheFixedFields() {
        let line = LogFormat.logfmt.line(time: time, level: .error, message: "m", metadata: ["msg": "forged", "level": "x"])
        #expect(line == "ts=2026-11-18T11:06:40.250Z level=error msg=m")
    }
}

/// The `dns.chaos` settings.
@Suite struct ChaosConfigurationTests {
    @Test func configurationReadsChaosAndLocatesErrors() throws {
        let directory = try Paths.temporaryDirectory()
        let path = directory + "/resolverd.yaml"
        try "dns:\n  chaos: {id: a, version: b}\nzones: \(Paths.zones)\n".write(toFile: path, atomically: true, encoding: .utf8)
        let config = try Configuration.load(path: path).get()
        #expect(config.chaosID == "a" && config.chaosVersion == "b")
        try "dns:\n  chaos:\n    hostname: a\nzones: \(Paths.zones)\n".write(toFile: path, atomically: true, encoding: .utf8)
        let (_, errors) = Configuration.loadPartial(path: path)
        #expect(errors.map(\.description) == ["resolverd.yaml:3: dns.chaos.hostname: unknown key (expected one of: id, version)"])
    }
}

/// The `steering` tunables of the scoring model.
@Suite struct SteeringConfigurationTests {
    /// Each key: a value it reads, its default, and a value out of its range, which is an
    /// error at its file and line.
    static var keys: [(key: String, field: KeyPath<ScoringParameters, Double>, value: Double, standard: Double, outside: Double)] {
        [
            ("move-standard-errors", \.moveStandardErrors, 2.5, 1, -1),
            ("swing-errors", \.swingErrors, 0, 4, 101),
        ]
    }

    @Test(arguments: keys.indices)
    func configurationReadsTheKeyAndChecksItsRange(_ index: Int) throws {
        let (key, field, value, standard, outside) = Self.keys[index]
        let directory = try Paths.temporaryDirectory()
        let path = directory + "/resolverd.yaml"
        try "steering:\n  \(key): \(value)\nzones: \(Paths.zones)\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try Configuration.load(path: path).get().scoring[keyPath: field] == value)
        try "zones: \(Paths.zones)\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try Configuration.load(path: path).get().scoring[keyPath: field] == standard)
        try "steering:\n  \(key): \(outside)\nzones: \(Paths.zones)\n".write(toFile: path, atomically: true, encoding: .utf8)
        let (_, errors) = Configuration.loadPartial(path: path)
        #expect(errors.count == 1 && errors[0].description.hasPrefix("resolverd.yaml:2: steering.\(key)"),
                "\(errors.map(\.description))")
    }
}

/// What systemd and a supervisor see of the daemon, with the real binary.
@Suite(.serialized) struct DaemonOperationsTests {
    @Test func logLinesAreLogfmtOrJSON() throws {
        let logfmt = try LiveServer()
        logfmt.signal(SIGHUP)
        usleep(300_000)
        logfmt.stop()
        let lines = logfmt.log.split(separator: "\n")
        #expect(lines.count >= 3)
        for line in lines {
            #expect(line.wholeMatch(of: /ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=(trace|debug|info|notice|warning|error|critical) msg=.*/) != nil,
                    "not logfmt: \(line)")
        }
        #expect(lines.contains { $0.contains("msg=reloaded") })

        let json = try LiveServer(dnsOptions: [], extraConfig: "", arguments: ["--log-format", "json"])
        json.stop()
        let objects = try json.log.split(separator: "\n").map {
            try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String], "not JSON: \($0)")
        }
        #expect(objects.contains { $0["msg"] == "listening" && $0["address"] == "127.0.0.1:\(json.port)" })
        #expect(objects.allSatisfy { $0["ts"] != nil && $0["level"] != nil })
    }

    /// The sd_notify exchange of a `Type=notify` unit, against a socket standing in for systemd.
    @Test func notifiesSystemdOfReadinessReloadAndStop() throws {
        let directory = try Paths.temporaryDirectory()
        let path = directory + "/notify.sock"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0)
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        func receive() -> String {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = recv(fd, &buffer, buffer.count, 0)
            return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : ""
        }

        let server = try LiveServer(environment: ["NOTIFY_SOCKET": path])
        let ready = receive()
        #expect(ready.hasPrefix("READY=1\nSTATUS=serving 1 zones"), "\(ready)")
        server.signal(SIGHUP)
        #expect(receive().hasPrefix("RELOADING=1\nMONOTONIC_USEC="))
        #expect(receive().hasPrefix("READY=1"))
        server.signal(SIGTERM)
        #expect(receive() == "STOPPING=1")
        #expect(server.stop() == 0)
    }

    /// The shipped unit, checked by systemd's own parser with the paths pointed at this build.
    @Test func systemdUnitIsValidAndHardened() throws {
        let analyze = try #require(Paths.tool("systemd-analyze"), "systemd-analyze is not installed (make test installs systemd)")
        let unit = try String(contentsOfFile: Paths.root.appendingPathComponent("dist/resolverd.service").path, encoding: .utf8)
        for line in ["Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "DynamicUser=yes",
                     "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "AmbientCapabilities=CAP_NET_BIND_SERVICE",
                     "NoNewPrivileges=yes", "ProtectSystem=strict"] {
            #expect(unit.contains("\n\(line)\n"), "missing \(line)")
        }
        let directory = try Paths.temporaryDirectory()
        let local = unit.replacingOccurrences(of: "/usr/local/bin/resolverd", with: Paths.resolverd)
        try local.write(toFile: directory + "/resolverd.service", atomically: true, encoding: .utf8)
        let verified = try run(analyze, ["verify", directory + "/resolverd.service"])
        #expect(verified.status == 0)
        // verify prints, and still exits 0, for unknown keys and bad values.
        #expect(verified.stderr.split(separator: "\n").filter { $0.contains("resolverd.service") }.isEmpty, "\(verified.stderr)")
        try (local + "\n[Service]\nTypo=1\n").write(toFile: directory + "/resolverd.service", atomically: true, encoding: .utf8)
        #expect(try run(analyze, ["verify", directory + "/resolverd.service"]).stderr.contains("Unknown key"))
    }

    /// Port 53 as an unprivileged user: refused without CAP_NET_BIND_SERVICE, with a message
    /// that says what is missing; served with it (what the unit's AmbientCapabilities gives).
    @Test(.enabled(if: getuid() == 0, "needs root to drop to another user"))
    func port53NeedsOnlyTheBindCapability() throws {
        let setpriv = try #require(Paths.tool("setpriv"))
        let host = "127.\(Int.random(in: 100...199)).\(Int.random(in: 1...254)).53"
        let directory = try Paths.temporaryDirectory()
        chmod(directory, 0o755)
        let config = directory + "/resolverd.yaml"
        try "dns:\n  listen: [\"\(host):53\"]\nzones: \(Paths.zones)\n".write(toFile: config, atomically: true, encoding: .utf8)
        let asNobody = ["--reuid=65534", "--regid=65534", "--clear-groups", "--no-new-privs"]

        let refused = try run(setpriv, asNobody + ["--inh-caps=-all", "--bounding-set=-all", Paths.resolverd, "serve", "--config", config],
                              timeout: 20)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("cannot listen on \(host):53") && refused.stderr.contains("CAP_NET_BIND_SERVICE"), "\(refused.stderr)")

        let process = Process()
        process.executableURL = URL(fileURLWithPath: setpriv)
        process.arguments = asNobody + ["--inh-caps=+net_bind_service", "--ambient-caps=+net_bind_service",
                                        "--bounding-set=-all,+net_bind_service", Paths.resolverd, "serve", "--config", config]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        var answer: [UInt8]? = nil
        let deadline = Date().addingTimeInterval(20)
        while answer == nil && Date() < deadline && process.isRunning {
            answer = RawDNS.udp(port: 53, RawDNS.query("svc.example.", .soa), host: host, timeout: 1)
        }
        let message = try Message(try #require(answer, "no answer on \(host):53"))
        #expect(message.rcode == .noError && message.answer.first?.type == .soa)
    }
}

/// The steering writer applies what is queued at once and coalesces a burst, and an idle
/// writer does nothing at all: it waits for a submit, not for a timer.
@Suite struct SteeringWriterTests {
    @Test func appliesReportsAtOnceAndSleepsWhenIdle() async throws {
        let initial = try StateLoader.load(configPath: Example.configPath).get().state
        let store = StateStore(initial)
        let writer = SteeringWriter(store: store, interval: .milliseconds(50))
        let site = initial.steering.sites[0].id
        let running = Task { try await writer.run() }
        defer { running.cancel() }
        // Generous: while the other suites' live servers run, they can hold every thread of
        // the concurrency pool for tens of seconds, and the writer runs on that pool.
        func waitFor(_ condition: () -> Bool) async throws {
            let deadline = ContinuousClock.now + .seconds(120)
            while !condition() && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        }

        try await Task.sleep(for: .milliseconds(200))
        #expect(writer.wakeUps.load(ordering: .relaxed) == 0, "nothing queued: the writer did not wake")
        #expect(writer.swaps.load(ordering: .relaxed) == 0)
        #expect(store.state === initial)

        writer.submit(load: SiteLoad(utilization: 0.25, reportedAt: 1_000), site: site)
        try await waitFor { store.state.steering.loads[0].reportedAt == 1_000 && writer.swaps.load(ordering: .relaxed) == 1 }
        #expect(store.state.steering.loads[0].reportedAt == 1_000, "the report is applied")
        #expect(writer.swaps.load(ordering: .relaxed) == 1)

        // A burst queued within one interval: the first swap may already be under way, the
        // rest joins the next one.
        for second in 1...20 {
            writer.submit(load: SiteLoad(utilization: 0.5, reportedAt: 1_000 + Double(second)), site: site)
        }
        try await waitFor { store.state.steering.loads[0].reportedAt == 1_020 }
        #expect(store.state.steering.loads[0].reportedAt == 1_020, "the last of the burst wins")
        try await Task.sleep(for: .milliseconds(200))
        let swaps = writer.swaps.load(ordering: .relaxed)
        #expect(swaps >= 2 && swaps <= 4, "\(swaps) swaps for one report and a burst of twenty")
    }
}
