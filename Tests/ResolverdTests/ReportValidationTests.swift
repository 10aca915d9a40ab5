import Foundation
import Scoring
import Testing
@testable import resolverd

/// Load and latency bodies: what is accepted, what is refused and why.
@Suite struct ReportValidationTests {
    static func parse(_ json: String) -> Result<LoadReport, ReportError> {
        do throws(ReportError) { return .success(try LoadReport.parse(Array(json.utf8))) } catch { return .failure(error) }
    }

    static let accepted: [(String, LoadReport)] = [
        (#"{"utilization":0.42}"#, LoadReport(utilization: 0.42, healthy: true)),
        (#"{"utilization":0.42,"capacity":900,"service_ms":8.5,"queue":12,"healthy":false}"#,
         LoadReport(utilization: 0.42, capacity: 900, serviceMs: 8.5, queue: 12, healthy: false)),
        (#"{"utilization":10}"#, LoadReport(utilization: 10, healthy: true)),
        // CATS L0: a measured delay of 20 ms at 0.5, turned into a service time by `siteLoad`.
        (#"{"level":0,"cpu_utilization":0.5,"compute_delay_ms":20}"#,
         LoadReport(utilization: 0.5, healthy: true, computeDelayMs: 20)),
        (#"{"level":1,"compute":0.3,"network":0.9}"#, LoadReport(utilization: 0.3, healthy: true)),
        (#"{"level":2,"score":0.8,"capacity":100}"#, LoadReport(utilization: 0.8, capacity: 100, healthy: true)),
    ]

    static let refused: [(String, String)] = [
        (#"{}"#, "utilization is required"),
        (#"{"utilization":-0.1}"#, "utilization must be between 0.0 and 10.0"),
        (#"{"utilization":10.5}"#, "utilization must be between 0.0 and 10.0"),
        (#"{"utilization":NaN}"#, "body is not valid JSON"),
        (#"{"utilization":"0.5"}"#, "utilization must be a number"),
        (#"{"utilization":true}"#, "utilization must be a number"),
        (#"{"utilization":0.5,"healthy":1}"#, "healthy must be true or false"),
        (#"{"utilization":0.5,"colour":"red"}"#, "unknown field \"colour\""),
        (#"{"utilization":0.5,"queue":1.5}"#, "queue must be a whole number"),
        (#"{"utilization":0.5,"capacity":0}"#, "capacity must be between 0.001 and 1000000000.0"),
        (#"{"utilization":0.5,"service_ms":-1}"#, "service_ms must be between 0.0 and 600000.0"),
        (#"[0.5]"#, "body must be a JSON object"),
        (#"utilization=0.5"#, "body is not valid JSON"),
        (#"{"level":3,"score":0.5}"#, "level must be 0, 1 or 2 (CATS metric levels)"),
        (#"{"level":2,"score":1.5}"#, "score must be between 0.0 and 1.0"),
        (#"{"level":1,"utilization":0.5}"#, "unknown field \"utilization\""),
    ]

    /// A level-0 delay becomes the service time the queueing model gives it back with, at the
    /// report's load and the site's servers: 10 ms for a site of one server (20 ms = 10 / (1 −
    /// 0.5)), nearly all of the 20 ms for a site of many, which hardly queues at 0.5.
    @Test func aMeasuredDelayBecomesAServiceTime() throws {
        let report = try LoadReport.parse(Array(#"{"level":0,"cpu_utilization":0.5,"compute_delay_ms":20}"#.utf8))
        let single = report.siteLoad(at: 0, configuredCapacity: 1).serviceMs!
        #expect(abs(single - 10) < 1e-6)
        for capacity in [1.0, 100, 800, 10_000] {
            let serviceMs = report.siteLoad(at: 0, configuredCapacity: capacity).serviceMs!
            let back = Queueing.responseTime(serviceMs: serviceMs, utilization: 0.5,
                                             servers: Queueing.servers(capacity: capacity, serviceMs: serviceMs), cap: 1000)
            #expect(abs(back - 20) < 1e-6, "capacity \(capacity): \(serviceMs) ms gives \(back)")
        }
        #expect(report.siteLoad(at: 0, configuredCapacity: 10_000).serviceMs! > 19)
        var own = report
        own.capacity = 1   // the report's own capacity wins over the configured one
        #expect(abs(own.siteLoad(at: 0, configuredCapacity: 10_000).serviceMs! - 10) < 1e-6)
    }

    @Test(arguments: accepted.indices)
    func accepts(_ index: Int) {
        let (json, expected) = Self.accepted[index]
        #expect(Self.parse(json) == .success(expected), "\(json)")
    }

    @Test(arguments: refused.indices)
    func refuses(_ index: Int) {
        let (json, reason) = Self.refused[index]
        #expect(Self.parse(json) == .failure(ReportError(reason)), "\(json)")
    }

    /// `PUT /v1/loads` bodies: every report valid or none taken, the reason naming the site.
    @Test func batchesAreAllOrNothing() throws {
        func parse(_ json: String) -> Result<[String], ReportError> {
            do throws(ReportError) { return .success(try LoadReport.parseBatch(Array(json.utf8)).map(\.site)) } catch {
                return .failure(error)
            }
        }
        #expect(parse(#"{"b":{"utilization":0.2},"a":{"level":2,"score":0.5}}"#) == .success(["a", "b"]))
        let batch = try LoadReport.parseBatch(Array(#"{"fra1":{"utilization":0.42,"queue":3,"healthy":false}}"#.utf8))
        #expect(batch.first?.report == LoadReport(utilization: 0.42, queue: 3, healthy: false))
        #expect(parse(#"{"a":{"utilization":0.2},"b":{"utilization":12}}"#)
                == .failure(ReportError("b: utilization must be between 0.0 and 10.0")))
        #expect(parse(#"{"a":0.5}"#) == .failure(ReportError("a: body must be a JSON object")))
        #expect(parse(#"{}"#) == .failure(ReportError("no reports")))
        #expect(parse(#"[{"utilization":0.2}]"#) == .failure(ReportError("body must be a JSON object of site IDs to reports")))
    }

    /// A flat body is read straight into its fields (`ReportFields(flat:)`) and anything else
    /// as JSON first; the two must accept and refuse alike. Bodies built from every field name,
    /// unknown and escaped names, every kind of value, whitespace and cuts, each parsed both
    /// ways.
    @Test func flatBodiesAreReadAsAnyOtherIs() {
        func general(_ body: [UInt8]) -> Result<LoadReport, ReportError> {
            do throws(ReportError) { return .success(try LoadReport.parse(JSONValue.parse(body))) } catch { return .failure(error) }
        }
        func flat(_ body: [UInt8]) -> Bool { body.withUnsafeBytes { ReportFields(flat: $0) != nil } }
        // The usual forms take the flat way.
        for (json, _) in Self.accepted { #expect(flat(Array(json.utf8)), "\(json)") }
        for json in [#"{"utilization":0.5,"healthy":1}"#, #"{"utilization":0.5,"healthy":true}"#, #" { "level" : 2 , "score":0.1 } "#,
                     #"{"utilization":0.5,"queue":1.5}"#, #"{"level":1,"utilization":0.5}"#, "{}"] {
            #expect(flat(Array(json.utf8)), "\(json)")
        }
        for json in [#"{"utilization":"0.5"}"#, #"{"colour":1}"#, #"{"utiliz\u0061tion":0.5}"#, #"{"utilization":null}"#,
                     #"{"utilization":0.5}x"#, #"{"utilization":0.5,}"#, "[]", #"{"utilization":01}"#] {
            #expect(!flat(Array(json.utf8)), "\(json)")
        }
        let names = ["level", "utilization", "service_ms", "cpu_utilization", "compute_delay_ms", "compute", "network", "score",
                     "capacity", "queue", "healthy", "colour", "Utilization", "utilizatio", "utilization\\u0020", ""]
        let values = ["0", "1", "2", "3", "0.5", "-0", "-0.25", "1e3", "2.5E-1", "10", "10.5", "1e400", "1000000001", "0.0001",
                      "7", "3.0", "true", "false", "null", #""x""#, "[]", "{}", "01", "1.", "+1", "tru"]
        var generator = SystemRandomNumberGenerator()
        let spaces = ["", " ", "\n", "\t "]
        var checked = 0
        // Half the bodies are one of the four forms with plausible values, so that most of
        // those are accepted; the rest any names and values.
        let forms = [["utilization", "service_ms"], ["level", "cpu_utilization", "compute_delay_ms"],
                     ["level", "compute", "network"], ["level", "score"]]
        let plausible = ["0", "1", "0.5", "0.25", "1e-1", "0.0001", "2", "true", "false"]
        var accepted = 0
        for round in 0..<20_000 {
            var fields: [(String, String)]
            if round % 2 == 0 {
                let form = Int.random(in: 0..<4, using: &generator)
                fields = (forms[form] + ["capacity", "queue", "healthy"]).compactMap { name in
                    if name == "level" { return (name, String(form - 1)) }
                    guard name == forms[form][form == 0 ? 0 : 1] || Bool.random(using: &generator) else { return nil }
                    return (name, plausible.randomElement(using: &generator)!)
                }
                fields.shuffle(using: &generator)
            } else {
                fields = (0..<Int.random(in: 0...5, using: &generator)).map { _ in
                    (names.randomElement(using: &generator)!, values.randomElement(using: &generator)!)
                }
            }
            var body = spaces.randomElement(using: &generator)! + "{"
            body += fields.map { name, value in
                let space = spaces.randomElement(using: &generator)!
                return "\(space)\"\(name)\"\(space):\(space)\(value)\(space)"
            }.joined(separator: ",")
            body += "}" + spaces.randomElement(using: &generator)!
            var bytes = Array(body.utf8)
            if Int.random(in: 0..<8, using: &generator) == 0, !bytes.isEmpty {   // a cut or a stray byte
                if Bool.random(using: &generator) { bytes.removeLast(Int.random(in: 1...bytes.count, using: &generator)) }
                else { bytes.insert(UInt8.random(in: 0x20...0x7E, using: &generator), at: Int.random(in: 0...bytes.count, using: &generator)) }
            }
            let parsed = Self.parse(String(decoding: bytes, as: UTF8.self))
            #expect(parsed == general(bytes), "\(String(decoding: bytes, as: UTF8.self))")
            if flat(bytes) { checked += 1 }
            if case .success = parsed { accepted += 1 }
        }
        #expect(checked > 5_000 && accepted > 1_000, "the flat way was taken \(checked) times, \(accepted) accepted")
    }

    /// A `PUT /v1/loads` body of flat reports is read straight into their fields
    /// (`ReportFields.flatBatch`); it must accept and refuse as the general way does: random
    /// batches of known, repeated, escaped and non-ASCII site IDs and of reports flat or not.
    @Test func flatBatchesAreReadAsAnyOtherIs() {
        func outcome(_ parse: () throws(ReportError) -> [(site: String, report: LoadReport)]) -> String {
            do throws(ReportError) { return try parse().map { "\($0.site)=\($0.report)" }.joined(separator: ";") } catch {
                return "refused: \(error.reason)"
            }
        }
        let sites = [#""fra1""#, #""ams1""#, #""par1""#, #""fra1""#, #""zü""#, #""a\u0062""#, #""""#, "fra1", "1"]
        let reports = [#"{"utilization":0.5}"#, #"{"utilization":0.25,"healthy":false,"queue":3}"#, #"{"level":2,"score":0.7}"#,
                       #"{ "utilization" : 1e-1 }"#, "{}", #"{"utilization":11}"#, #"{"utilization":"0.5"}"#,
                       #"{"colour":1}"#, #"{"utilization":0.5,"healthy":1}"#, "0.5", "[]", "null", #"{"a":{"b":1}}"#]
        var generator = SystemRandomNumberGenerator()
        var flat = 0
        var accepted = 0
        for _ in 0..<5_000 {
            let count = Int.random(in: 0...4, using: &generator)
            var body = "{" + (0..<count).map { _ in
                "\(sites.randomElement(using: &generator)!):\(reports.randomElement(using: &generator)!)"
            }.joined(separator: Bool.random(using: &generator) ? "," : " , ") + "}"
            if Int.random(in: 0..<10, using: &generator) == 0 { body.removeLast() }
            let bytes = Array(body.utf8)
            let general = outcome { () throws(ReportError) in try LoadReport.parseBatch(JSONValue.parse(bytes)) }
            let either = outcome { () throws(ReportError) in try LoadReport.parseBatch(bytes) }
            #expect(either == general, "\(body)")
            if bytes.withUnsafeBytes({ ReportFields.flatBatch($0) }) != nil { flat += 1 }
            if !either.hasPrefix("refused") { accepted += 1 }
        }
        #expect(flat > 500 && accepted > 100, "the flat way was taken \(flat) times, \(accepted) accepted")
    }

    /// Short decimals are converted without the standard library (`JSONParser.shortDecimal`),
    /// to the same double it gives.
    @Test func shortDecimalsConvertAsTheStandardLibraryDoes() {
        var generator = SystemRandomNumberGenerator()
        var fast = 0
        for round in 0..<200_000 {
            var text = Bool.random(using: &generator) ? "-" : ""
            let whole = String(UInt64.random(in: 0...UInt64.max, using: &generator) >> UInt64.random(in: 0...63, using: &generator))
            text += round % 3 == 0 ? "0" : whole
            if Bool.random(using: &generator) {
                text += "." + String(repeating: "0", count: Int.random(in: 0...4, using: &generator))
                    + String(UInt64.random(in: 0...UInt64.max, using: &generator) >> UInt64.random(in: 0...63, using: &generator))
            }
            if Int.random(in: 0..<3, using: &generator) == 0 {
                text += ["e", "E"].randomElement(using: &generator)! + ["", "+", "-"].randomElement(using: &generator)!
                    + String(Int.random(in: 0...30, using: &generator))
            }
            let expected = Double(text)!
            guard let converted = Array(text.utf8).withUnsafeBytes({ JSONParser.shortDecimal($0) }) else { continue }
            fast += 1
            #expect(converted.bitPattern == expected.bitPattern, "\(text): \(converted) against \(expected)")
        }
        #expect(fast > 20_000, "converted the short way \(fast) times")
        for text in ["0.45", "-0", "1e22", "9.99999999999999e-7", "123456789012345"] {
            #expect(Array(text.utf8).withUnsafeBytes { JSONParser.shortDecimal($0) }?.bitPattern == Double(text)!.bitPattern, "\(text)")
        }
    }

    /// The JSON reader itself (RFC 8259): what it reads, to what, and what it refuses.
    @Test func jsonIsReadAsRFC8259Says() throws {
        func read(_ text: String) -> JSONValue? { try? JSONValue.parse(Array(text.utf8)) }
        let valid: [(String, JSONValue)] = [
            (" {\n\t\"a\" : [1, -0.5, 2e3, 1E-2, 0, -0, true, false, null] }\r\n",
             .object(["a": .array([.number(1), .number(-0.5), .number(2000), .number(0.01), .number(0), .number(-0),
                                   .bool(true), .bool(false), .null])])),
            (#""a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00é""#, .string("a\"b\\c/d\u{08}\u{0C}\n\r\té😀é")),
            (#"{"x":{"y":{}},"z":[[]]}"#, .object(["x": .object(["y": .object([:])]), "z": .array([.array([])])])),
            (#"{"k":1,"k":2}"#, .object(["k": .number(2)])),
            ("1e400", .number(.infinity)),
            (String(repeating: "[", count: 32) + String(repeating: "]", count: 32),
             (0..<31).reduce(JSONValue.array([])) { inner, _ in .array([inner]) }),
        ]
        for (text, value) in valid { #expect(read(text) == value, "\(text)") }
        let invalid = ["", " ", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "'a'", "01", "1.", ".5", "-", "+1", "1e",
                       "0x10", "NaN", "Infinity", "tru", "nul", "[1 2]", "{\"a\":1}x", "\"a", "\"\\x\"", "\"\\u12\"",
                       "\"\u{01}\"", "\"\\ud83d\"", "\"\\ude00\"", "\"\\ud83d\\u0041\"",
                       String(repeating: "[", count: 34) + String(repeating: "]", count: 34)]
        for text in invalid { #expect(read(text) == nil, "\(text.debugDescription) must be refused") }
        #expect((try? JSONValue.parse([0x22, 0xFF, 0x22])) == nil, "invalid UTF-8 in a string")
    }

    @Test func latencyBodiesAreAllOrNothing() throws {
        let index: (String) -> Int? = { ["fra1": 0, "ams1": 1][$0] }
        let good = try LatencyReport.parse(Array(#"[{"prefix":"203.0.113.0/24","site":"ams1","rtt_ms":12.5}]"#.utf8), siteIndex: index)
        #expect(good.count == 1 && good[0].site == 1 && good[0].rtt == 12.5)
        for (json, reason) in [
            (#"[{"prefix":"203.0.113.0/24","site":"fra1","rtt_ms":1},{"prefix":"203.0.113.0/24","site":"par9","rtt_ms":1}]"#, "[1].site: unknown site"),
            (#"[{"prefix":"203.0.113.7/24","site":"fra1","rtt_ms":1}]"#, "[0].prefix: expected a prefix such as 203.0.113.0/24"),
            (#"[{"prefix":"203.0.113.0/24","site":"fra1","rtt_ms":-3}]"#, "[0].rtt_ms: expected a finite number of milliseconds ≥ 0"),
            (#"[{"prefix":"203.0.113.0/24","site":"fra1","rtt":3}]"#, "[0]: unknown field \"rtt\""),
            (#"{"prefix":"203.0.113.0/24"}"#, "body must be a JSON array"),
        ] {
            #expect(throws: ReportError(reason), "\(json)") { try LatencyReport.parse(Array(json.utf8), siteIndex: index) }
        }
    }

    @Test func tokensAreHashedAndBound() throws {
        let directory = try Paths.temporaryDirectory()
        let hash = TokenStore.hash("admin-token-0123456789").map { String(format: "%02x", $0) }.joined()
        try """
            "fra1-token-0123456789": {site: fra1}
            "sha256:\(hash)": {role: admin}
            "measure-token-0123456789": {role: measurement}
            """.write(toFile: directory + "/tokens.yaml", atomically: true, encoding: .utf8)
        let store = try TokenStore.load(path: directory + "/tokens.yaml", siteIDs: ["fra1"]).get()
        #expect(store.authenticate(authorization: "Bearer fra1-token-0123456789") == .site("fra1"))
        #expect(store.authenticate(authorization: "Bearer admin-token-0123456789") == .admin)
        #expect(store.authenticate(authorization: "Bearer measure-token-0123456789") == .measurement)
        #expect(store.authenticate(authorization: "Bearer sha256:\(hash)") == nil) // the hash is not the token
        #expect(store.authenticate(authorization: "Bearer fra1-token-012345678") == nil)
        #expect(store.authenticate(authorization: "fra1-token-0123456789") == nil)
        #expect(store.authenticate(authorization: nil) == nil)
        #expect(store.authenticate(authorization: "bearer fra1-token-0123456789") == .site("fra1")) // scheme is case-insensitive
        #expect(store.authenticate(authorization: "Bearer ") == nil)

        try """
            "short": {site: fra1}
            "another-token-0123456789": {site: par9}
            "third-token-0123456789": {role: root}
            "sha256:abcd": {role: admin}
            """.write(toFile: directory + "/bad.yaml", atomically: true, encoding: .utf8)
        guard case .failure(let error) = TokenStore.load(path: directory + "/bad.yaml", siteIDs: ["fra1"]) else {
            Issue.record("expected errors"); return
        }
        let lines = error.errors.map(\.description)
        #expect(lines.contains("bad.yaml:1: tokens[1]: token shorter than 16 characters"))
        #expect(lines.contains("bad.yaml:2: tokens[2].site: unknown site \"par9\""))
        #expect(lines.contains("bad.yaml:3: tokens[3].role: role must be admin or measurement"))
        #expect(lines.contains("bad.yaml:4: tokens[4]: sha256: needs 64 hex digits"))
        #expect(!lines.joined().contains("another-token")) // secrets never appear in messages

        // A YAML syntax error must not quote the line (it may hold a token in the clear).
        try "\"fra1-token-0123456789\": {site: fra1}\n\"secret-token-0123456789: [unclosed\n"
            .write(toFile: directory + "/broken.yaml", atomically: true, encoding: .utf8)
        guard case .failure(let broken) = TokenStore.load(path: directory + "/broken.yaml", siteIDs: ["fra1"]) else {
            Issue.record("expected a YAML error"); return
        }
        #expect(broken.errors.count == 1 && broken.errors[0].description.hasPrefix("broken.yaml:"))
        #expect(!broken.errors[0].description.contains("secret-token") && !broken.errors[0].description.contains("fra1-token"))

        let sameHash = TokenStore.hash("same-token-0123456789").map { String(format: "%02x", $0) }.joined()
        try "\"same-token-0123456789\": {site: fra1}\n\"sha256:\(sameHash)\": {role: admin}\n"
            .write(toFile: directory + "/twice.yaml", atomically: true, encoding: .utf8)
        guard case .failure(let twice) = TokenStore.load(path: directory + "/twice.yaml", siteIDs: ["fra1"]) else {
            Issue.record("expected a duplicate error"); return
        }
        #expect(twice.errors.map(\.description).contains { $0.contains("listed twice") })
    }
}

@Suite struct ScenarioFileTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Every shipped scenario loads.
    @Test func shippedScenariosLoad() throws {
        let folder = Self.root.appendingPathComponent("scenarios")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".yaml") }
        #expect(files.count >= 9)
        for file in files {
            let result = ScenarioReader.load(path: folder.appendingPathComponent(file).path)
            if case .failure(let error) = result { Issue.record("\(file): \(error.errors)") }
        }
    }

    /// Errors name the file and line, all in one pass.
    @Test func errorsAreLocated() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(getpid()).yaml").path
        try """
        name: bad
        duration: 5
        sites:
          - {id: a, location: [48, 11], servers: 2, service-ms: 20}
          - {id: b, location: [48, 11]}
        regions:
          - {name: r, location: [48, 11], prefixes: 10}
        events:
          - {at: 100, fail: nowhere}
        sweep: {ttl: [5, 30]}
        colour: blue
        """.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        guard case .failure(let error) = ScenarioReader.load(path: path) else {
            Issue.record("a bad scenario loaded")
            return
        }
        let lines = error.errors.map(\.description)
        #expect(lines.contains { $0.hasPrefix("bad-\(getpid()).yaml:2: duration") })
        #expect(lines.contains { $0.hasPrefix("bad-\(getpid()).yaml:5: sites[1]") })
        #expect(lines.contains { $0.contains(":9: events[0]: unknown site \"nowhere\"") })
        #expect(lines.contains { $0.contains(":11: colour: unknown key") })
    }
}
