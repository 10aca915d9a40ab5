import Foundation
import Resolver
import Scoring
import Testing

/// Golden packets captured on this machine: dig 9.18's queries (`+norec +nocookie`), sent to
/// NSD 4.6 serving zones/svc.example.zone, and NSD's responses.
enum Golden {
    static func bytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            out.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return out
    }

    /// `dig +norec +nocookie www.svc.example A`
    static let digQuery = bytes("765b002000010000000000010377777703737663076578616d706c65000001000100002904d0000000000000")
    /// NSD's response to `digQuery`.
    static let nsdResponse = bytes("765b840000010002000200040377777703737663076578616d706c650000010001c00c0001000100000e100004c0000250c00c0001000100000e100004c0000251c0100002000100000e100006036e7331c010c0100002000100000e100006036e7332c010c04d0001000100000e100004c0000235c05f0001000100000e100004c6336435c04d001c000100000e10001020010db800000000000000000000005300002904d0000000000000")
    /// `dig +norec +nocookie +subnet=198.51.100.0/24 www.svc.example A`
    static let digECSQuery = bytes("9ea2002000010000000000010377777703737663076578616d706c65000001000100002904d000000000000b0008000700011800c63364")
    /// `dig +nocookie +noedns nx.svc.example MX` and NSD's NXDOMAIN response.
    static let digNoEDNSQuery = bytes("983801200001000000000000026e7803737663076578616d706c6500000f0001")
    static let nsdNXDomain = bytes("983885030001000000010000026e7803737663076578616d706c6500000f0001c00f000600010000012c0027036e7331c00f0a686f73746d6173746572c00f78c4052d00001c2000000e10001275000000012c")
}

func decodeQuery(_ bytes: [UInt8]) throws(WireError) -> Query {
    let result: Result<Query, WireError> = bytes.withUnsafeBytes { raw in
        do throws(WireError) { return .success(try Query.decode(raw)) } catch { return .failure(error) }
    }
    return try result.get()
}

@Suite struct WireCodecTests {
    @Test func decodesDigQuery() throws {
        let query = try decodeQuery(Golden.digQuery)
        #expect(query.header.id == 0x765b)
        #expect(!query.header.isResponse && !query.header.recursionDesired && query.header.authenticData)
        #expect(query.question == Question(name: try DNSName("www.svc.example."), type: .a))
        #expect(query.edns == EDNS(udpPayloadSize: 1232))
    }

    @Test func encodesQueryIdenticalToDig() throws {
        let query = try decodeQuery(Golden.digQuery)
        #expect(query.wire == Golden.digQuery)
    }

    @Test func decodesECSOption() throws {
        let query = try decodeQuery(Golden.digECSQuery)
        let subnet = try #require(query.edns?.clientSubnet)
        #expect(subnet.family == .ipv4)
        #expect(subnet.sourcePrefixLength == 24 && subnet.scopePrefixLength == 0)
        #expect(subnet.address == IPAddress("198.51.100.0"))
        var writer = WireWriter()
        subnet.encodeData(into: &writer)
        #expect(writer.bytes == Golden.bytes("00011800c63364"))
    }

    @Test func decodesNSDResponseWithCompression() throws {
        let message = try Message(Golden.nsdResponse)
        #expect(message.header.isResponse && message.header.authoritative)
        #expect(message.rcode == .noError)
        #expect(message.answer.map(\.rdata) == [[192, 0, 2, 80], [192, 0, 2, 81]])
        let ns = try DNSName("ns1.svc.example.")
        #expect(message.authority.first == Record(name: try DNSName("svc.example."), type: .ns, ttl: 3600,
                                                   rdata: Array(ns.wire)))
        #expect(message.additional.map(\.type) == [.a, .a, .aaaa])
        #expect(message.edns?.udpPayloadSize == 1232)
    }

    @Test func decodesNegativeAnswer() throws {
        let message = try Message(Golden.nsdNXDomain)
        #expect(message.rcode == .nxDomain && message.edns == nil)
        #expect(message.authority.count == 1 && message.authority[0].type == .soa && message.authority[0].ttl == 300)
    }

    @Test func compressesRepeatedSuffixes() throws {
        var writer = WireWriter()
        writer.writeName(try DNSName("www.Example.com."))
        writer.writeName(try DNSName("mail.example.COM."))
        writer.writeName(try DNSName("example.com."))
        // www.Example.com. (17) + "mail" + pointer to offset 4 (6+1... ) + pointer.
        #expect(writer.bytes == Golden.bytes("03777777074578616d706c6503636f6d00046d61696cc004c004"))
    }

    /// A label repeated inside one name must not match itself before the name is written
    /// (found by the mutation storm: "ap\u{e1}.…" names read past the written bytes).
    @Test func repeatedLabelsInOneName() throws {
        var writer = WireWriter()
        writer.writeName(try DNSName("a.a.example."))
        writer.writeName(try DNSName("a.example."))
        writer.writeName(try DNSName("A.A.example."))
        #expect(writer.bytes == Golden.bytes("01610161076578616d706c6500" + "c002" + "c000"))
    }

    @Test func namesParseAndPrint() throws {
        #expect(try DNSName("a.b.").text == "a.b.")
        #expect(try DNSName("www", origin: DNSName("example.")).text == "www.example.")
        #expect(try DNSName("a\\.b.c.").labelCount == 2)
        #expect(try DNSName("\\065bc.").text == "Abc.")
        #expect(try DNSName("WWW.example.") == DNSName("www.EXAMPLE."))
        #expect(try DNSName("www.example.").isSubdomain(of: DNSName("example.")))
        #expect(try !DNSName("wwwexample.").isSubdomain(of: DNSName("example.")))
        #expect(throws: WireError.labelTooLong) { try DNSName(String(repeating: "a", count: 64) + ".") }
        #expect(throws: WireError.malformedName) { try DNSName("a..b.") }
    }

    /// Malformed queries, each with the error it must produce. Each case is a valid query
    /// header for one question, followed by the bytes under test.
    static let header = "1234000000010000000000"
    static let invalid: [(String, String, WireError)] = [
        ("truncated header", "12340000", .truncated),
        ("no question", "123400000000000000000000", .badQuestionCount),
        ("two questions", "123400000002000000000000" + "0000010001" + "0000010001", .badQuestionCount),
        ("question cut short", header + "00" + "03777777", .truncated),
        // A length byte of 64 has the reserved 0b01 prefix (RFC 6891 §5), so it cannot be a label.
        ("label of 64", header + "00" + "40" + String(repeating: "61", count: 64) + "00" + "00010001", .badLabelType),
        ("name of 256", header + "00" + String(repeating: "3f" + String(repeating: "61", count: 63), count: 4) + "00" + "00010001", .nameTooLong),
        ("pointer to itself", header + "00" + "c00c" + "00010001", .badPointer),
        ("pointer loop", header + "00" + "0161c00e" + "00010001", .badPointer),
        ("pointer past end", header + "00" + "c0ff" + "00010001", .badPointer),
        ("reserved label type", header + "00" + "4001" + "00010001", .badLabelType),
        ("OPT in answer section", "123400000001000100000000" + "0000010001" + "00002904d0000000000000", .misplacedOPT),
        ("two OPT records", "123400000001000000000002" + "0000010001" + "00002904d0000000000000" + "00002904d0000000000000", .duplicateOPT),
        ("OPT owner not root", "123400000001000000000001" + "0000010001" + "016100002904d0000000000000", .badOPTOwner),
        ("option longer than RDATA", "123400000001000000000001" + "0000010001" + "00002904d00000000000060008000a0001", .badOption),
        ("ECS unknown family", ecsQuery("0003180000"), .badClientSubnet("unknown address family 3")),
        ("ECS IPv4 /33", ecsQuery("000121000000000000"), .badClientSubnet("source prefix /33 longer than the address")),
        ("ECS too many octets", ecsQuery("00011000c6336400"), .badClientSubnet("4 address octets for a /16 prefix")),
        ("ECS too few octets", ecsQuery("00011800c633"), .badClientSubnet("2 address octets for a /24 prefix")),
        ("ECS bits beyond source", ecsQuery("00011700c63365"), .badClientSubnet("address bits set beyond the source prefix")),
        ("ECS shorter than 4", ecsQuery("0001"), .badClientSubnet("option shorter than 4 octets")),
        ("cookie of 5 bytes", "123400000001000000000001" + "0000010001" + "00002904d0" + "00000000" + "0009" + "000a0005" + "0102030405", .badCookie),
    ]

    static func ecsQuery(_ data: String) -> String {
        let length = String(format: "%04x", data.count / 2)
        let rdlength = String(format: "%04x", data.count / 2 + 4)
        return "123400000001000000000001" + "0000010001" + "00002904d000000000" + rdlength + "0008" + length + data
    }

    @Test(arguments: invalid.indices)
    func rejectsMalformed(_ index: Int) {
        let (name, hex, expected) = Self.invalid[index]
        #expect(throws: expected, "\(name)") { try decodeQuery(Golden.bytes(hex)) }
    }

    @Test func ecsBoundaries() throws {
        // Source /0 carries no address octets and is valid (RFC 7871 §7.1.2).
        let zero = try decodeQuery(Golden.bytes(Self.ecsQuery("00010000")))
        #expect(zero.edns?.clientSubnet?.sourcePrefixLength == 0)
        let v6 = try decodeQuery(Golden.bytes(Self.ecsQuery("00023800" + "20010db8000001")))
        #expect(v6.edns?.clientSubnet?.address == IPAddress("2001:db8:0:100::"))
        // Unknown options are ignored (RFC 6891 §6.1.2).
        let unknown = try decodeQuery(Golden.bytes("123400000001000000000001" + "0000010001" + "00002904d000000000" + "0006fde90002abcd"))
        #expect(unknown.edns?.options.first?.code.rawValue == 65001)
    }
}

@Suite struct IPAddressTests {
    @Test func parsesAndFormats() {
        #expect(IPAddress("192.0.2.1")?.description == "192.0.2.1")
        #expect(IPAddress("2001:DB8::1")?.description == "2001:db8::1")
        #expect(IPAddress("::")?.description == "::")
        #expect(IPAddress("::ffff:192.0.2.1") == .v6(0, 0xFFFF_C000_0201))
        #expect(IPAddress("1:2:3:4:5:6:7:8")?.description == "1:2:3:4:5:6:7:8")
        #expect(IPAddress("256.1.1.1") == nil)
        #expect(IPAddress("1::2::3") == nil)
        #expect(IPAddress("1.2.3") == nil)
        #expect(IPPrefix("203.0.113.0/24")?.contains(IPAddress("203.0.113.77")!) == true)
        #expect(IPPrefix("203.0.113.1/24") == nil) // host bits set
        #expect(IPPrefix("2001:db8::/129") == nil)
        #expect(IPAddress("10.1.2.3")!.isNonRoutable && IPAddress("::1")!.isNonRoutable)
        #expect(!IPAddress("198.51.100.1")!.isNonRoutable)
    }
}
