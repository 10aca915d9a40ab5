import Foundation
import Resolver
import Testing

/// Writes zone files into a fresh temporary directory.
struct TempZones {
    let directory: String

    init(_ files: [String: String]) throws {
        directory = NSTemporaryDirectory() + "resolverd-zones-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (name, text) in files {
            let path = (directory as NSString).appendingPathComponent(name)
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        }
    }

    func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    /// Removes the directory and its files (a test's last step, so that runs leave no trace).
    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

@Suite struct ZoneLoadingTests {
    static let soa = "@ 3600 IN SOA ns.example. admin.example. 1 7200 3600 1209600 300\n@ NS ns.example.\n"

    func load(_ text: String, name: String = "example.zone", extra: [String: String] = [:]) throws -> Result<Zone, ZoneLoadError> {
        var files = extra
        files[name] = text
        let zones = try TempZones(files)
        defer { zones.remove() }
        return ZoneFileLoader.load(path: zones.path(name))
    }

    func errors(_ text: String) throws -> [String] {
        guard case .failure(let error) = try load(text) else { return [] }
        return error.errors.map(\.description)
    }

    @Test func splitterJoinsParenthesesAndStripsComments() {
        let text = "a 1 IN TXT \"x;y\" ; comment\n\nb IN SOA ( ns ; c\n  host\n 1 2 3 4 5 )\n c A 192.0.2.1\n"
        let (entries, errors) = MasterFileSplitter.split(Array(text.utf8), file: "t.zone")
        #expect(errors.isEmpty)
        #expect(entries.map(\.line) == [1, 3, 6])
        #expect(entries[0].text.hasPrefix("a 1 IN TXT \"x;y\""))
        #expect(!entries[1].text.contains("\n") && entries[1].text.contains("host"))
        #expect(entries[2].text.hasPrefix(" c")) // leading blank keeps "previous owner" meaning
    }

    @Test func splitterReportsUnbalancedParentheses() {
        let (_, errors) = MasterFileSplitter.split(Array("a SOA ( x\ny\n".utf8), file: "t.zone")
        #expect(errors.map(\.description) == ["t.zone:1: '(' is never closed"])
    }

    @Test func loadsDirectivesUnitsAndUnknownTypes() throws {
        let zone = try load("""
            $TTL 1h
            \(Self.soa)www A 192.0.2.1
                AAAA 2001:db8::1
            $ORIGIN sub.example.
            host 60 A 192.0.2.2
            $INCLUDE inc/extra.inc deeper.sub.example.
            after A 192.0.2.3
            x TYPE65400 \\# 3 010203
            e\\.dot TXT "a" "b c"
            """, extra: ["inc/extra.inc": "inc A 192.0.2.9\n"]).get()
        #expect(zone.origin.text == "example.")
        // $INCLUDE's origin applies inside the included file only (RFC 1035 §5.1).
        #expect(zone.nodes[try DNSName("inc.deeper.sub.example.")] != nil)
        let www = try #require(zone.nodes[try DNSName("www.example.")])
        #expect(www.rrset(.a)?.ttl == 3600 && www.rrset(.aaaa) != nil)
        #expect(zone.nodes[try DNSName("host.sub.example.")]?.rrset(.a)?.ttl == 60)
        #expect(zone.nodes[try DNSName("after.sub.example.")] != nil)
        #expect(zone.nodes[try DNSName("x.sub.example.")]?.rrset(RRType(rawValue: 65400))?.rdatas == [[1, 2, 3]])
        #expect(zone.nodes[try DNSName("e\\.dot.sub.example.")]?.rrset(.txt)?.rdatas == [[1, 97, 3, 98, 32, 99]])
        #expect(zone.nodes[try DNSName("sub.example.")]?.rrsets.isEmpty == true) // empty non-terminal
    }

    @Test func includeOutsideZoneIsReportedAtIncludedFile() throws {
        let result = try load("\(Self.soa)$INCLUDE extra.inc example.net.\n", extra: ["extra.inc": "\n\ninc A 192.0.2.9\n"])
        guard case .failure(let error) = result else { Issue.record("expected failure"); return }
        #expect(error.errors.map(\.description) == ["extra.inc:3: inc.example.net. is outside the zone example."])
    }

    @Test func rejectsZoneWithoutSOA() throws {
        #expect(try errors("www A 192.0.2.1\n") == ["example.zone:1: zone has no SOA record"])
    }

    @Test func rejectsCNAMEBesideOtherData() throws {
        #expect(try errors("\(Self.soa)www A 192.0.2.1\nwww CNAME other\n") == [
            "example.zone:4: CNAME and other data at www.example. (A at line 3, CNAME at line 4)",
        ])
    }

    @Test func rejectsRecordsOutsideOrigin() throws {
        #expect(try errors("\(Self.soa)www.example.net. A 192.0.2.1\n") == [
            "example.zone:3: www.example.net. is outside the zone example.",
        ])
    }

    @Test func reportsSyntaxErrorsWithLine() throws {
        let found = try errors("\(Self.soa)www A 192.0.2.300\nok A 192.0.2.1\nbad MX mail\n$BOGUS x\n")
        #expect(found.count == 3)
        #expect(found[0].hasPrefix("example.zone:3: "))
        #expect(found[1].hasPrefix("example.zone:5: "))
        #expect(found[2] == "example.zone:6: unknown directive $BOGUS")
    }

    @Test func rejectsDuplicateZones() throws {
        let zones = try TempZones(["a.zone": "$ORIGIN example.\n\(Self.soa)", "b.zone": "$ORIGIN example.\n\(Self.soa)"])
        defer { zones.remove() }
        guard case .failure(let error) = ZoneFileLoader.loadDirectory(zones.directory) else {
            Issue.record("expected failure"); return
        }
        #expect(error.errors.map(\.description) == ["b.zone:1: zone example. is already loaded from a.zone"])
    }

    @Test func deduplicatesRecordsAndUsesLowestTTL() throws {
        let zone = try load("\(Self.soa)www 300 A 192.0.2.1\nwww 60 A 192.0.2.1\nwww 120 A 192.0.2.2\n").get()
        let set = try #require(zone.nodes[try DNSName("www.example.")]?.rrset(.a))
        #expect(set.rdatas.count == 2 && set.ttl == 60)
    }
}
