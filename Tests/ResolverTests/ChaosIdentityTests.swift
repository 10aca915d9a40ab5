import Resolver
import Testing

/// CH TXT identity (RFC 4892), answered in process.
@Suite struct ChaosIdentityTests {
    func answer(_ name: String, _ type: RRType, rrClass: RRClass = .chaos, state: ServingState) throws -> Message {
        try Message(try #require(Fixture.ask(Fixture.query(name, type, rrClass: rrClass, edns: nil), state: state)))
    }

    @Test func offByDefault() throws {
        let state = ServingState(catalog: .empty)
        for name in ChaosIdentity.idNames + ChaosIdentity.versionNames {
            #expect(try answer(name, .txt, state: state).rcode == .refused)
        }
    }

    @Test func answersConfiguredNamesOnly() throws {
        let state = ServingState(catalog: .empty, chaos: ChaosIdentity.records(id: "edge-7", version: String(repeating: "v", count: 300)))
        let id = try answer("ID.Server.", .txt, state: state)
        #expect(id.rcode == .noError && !id.header.authoritative, "AA clear, as NSD")
        #expect(id.answer.map(\.rdata) == [[6] + Array("edge-7".utf8)])
        #expect(id.answer.first?.ttl == 0 && id.answer.first?.rrClass == .chaos)
        #expect(try answer("hostname.bind.", .txt, state: state).answer.count == 1)
        // Longer than one character-string: split at 255 bytes (RFC 1035 §3.3.14).
        let version = try answer("version.bind.", .txt, state: state).answer.first?.rdata
        #expect(version == [255] + Array(repeating: UInt8(ascii: "v"), count: 255) + [45] + Array(repeating: UInt8(ascii: "v"), count: 45))
        // Other types at the name, other names, and class IN: REFUSED, as NSD.
        #expect(try answer("id.server.", .a, state: state).rcode == .refused)
        #expect(try answer("authors.bind.", .txt, state: state).rcode == .refused)
        #expect(try answer("id.server.", .txt, rrClass: .in, state: state).rcode == .refused)
    }
}
