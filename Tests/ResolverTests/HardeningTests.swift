import Foundation
import Resolver
import Scoring
import Testing

@Suite struct SipHashTests {
    /// The reference vector of the SipHash paper (Appendix A): key 00…0f, message 00…0e.
    @Test func referenceVector() {
        var hasher = SipHash24(key: SipHash24.key(Array(0..<16)))
        hasher.update(Array(0..<15) as [UInt8])
        #expect(hasher.finalize() == 0xa129_ca61_49be_45e5)
        var empty = SipHash24(key: SipHash24.key(Array(0..<16)))
        #expect(empty.finalize() == 0x726f_db47_dd0e_0e31)
    }
}

@Suite struct ServerCookieTests {
    static let secret = Golden.bytes("e5e973e5a6b2a43f48e7dc849e37bfcf")
    static let client = Golden.bytes("2464c4abcf10c957")
    static let address = IPAddress("198.51.100.100")!
    static let secrets = CookieSecrets(current: secret)

    /// RFC 9018 Appendix A.1 and A.2: the published server cookies, byte for byte.
    @Test func rfc9018Vectors() {
        #expect(ServerCookie.make(client: Self.client, address: Self.address, timestamp: 1_559_731_985, secret: Self.secret)
            == Golden.bytes("010000005cf79f111f8130c3eee29480"))
        #expect(ServerCookie.make(client: Self.client, address: Self.address, timestamp: 1_559_734_385, secret: Self.secret)
            == Golden.bytes("010000005cf7a871d4a564a1442aca77"))
    }

    /// (option, source, now) → verdict, around a cookie made at 1 559 731 985.
    @Test func verdicts() {
        let made: UInt32 = 1_559_731_985
        let option = Self.client + ServerCookie.make(client: Self.client, address: Self.address, timestamp: made, secret: Self.secret)
        let now = Int64(made)
        let other = CookieSecrets(current: Array(repeating: 7, count: 16))
        let rotated = CookieSecrets(current: Array(repeating: 7, count: 16), previous: Self.secret)
        var forged = option
        forged[23] ^= 1
        var wrongVersion = option
        wrongVersion[8] = 2
        let cases: [(String, [UInt8]?, IPAddress, Int64, CookieSecrets, CookieVerdict)] = [
            ("no option", nil, Self.address, now, Self.secrets, .absent),
            ("client cookie only", Self.client, Self.address, now, Self.secrets, .clientOnly),
            ("fresh", option, Self.address, now, Self.secrets, .valid),
            ("59 minutes old", option, Self.address, now + 3540, Self.secrets, .valid),
            ("61 minutes old", option, Self.address, now + 3660, Self.secrets, .clientOnly),
            ("4 minutes ahead", option, Self.address, now - 240, Self.secrets, .valid),
            ("6 minutes ahead", option, Self.address, now - 360, Self.secrets, .clientOnly),
            ("another address", option, IPAddress("198.51.100.101")!, now, Self.secrets, .clientOnly),
            ("one bit flipped", forged, Self.address, now, Self.secrets, .clientOnly),
            ("version 2", wrongVersion, Self.address, now, Self.secrets, .clientOnly),
            ("another server's secret", option, Self.address, now, other, .clientOnly),
            ("the secret before a rotation", option, Self.address, now, rotated, .valid),
            ("a 40-byte server cookie", Self.client + Array(repeating: 1, count: 32), Self.address, now, Self.secrets, .clientOnly),
        ]
        for (name, option, address, now, secrets, expected) in cases {
            #expect(ServerCookie.verdict(option, address: address, now: now, secrets: secrets) == expected, "\(name)")
        }
    }

    /// A valid cookie is echoed while young and made with the current secret; otherwise the
    /// response carries a new one (RFC 9018 §4.3).
    @Test func responseRenewsOldOrRotatedCookies() {
        let made: UInt32 = 1_559_731_985
        let option = Self.client + ServerCookie.make(client: Self.client, address: Self.address, timestamp: made, secret: Self.secret)
        func reply(at now: Int64, _ secrets: CookieSecrets) -> [UInt8] {
            let verdict = ServerCookie.verdict(option, address: Self.address, now: now, secrets: secrets)
            return ServerCookie.response(to: option, verdict: verdict, address: Self.address, now: now, secrets: secrets)
        }
        #expect(reply(at: Int64(made) + 60, Self.secrets) == option)
        // 40 minutes later: A.2's renewed cookie.
        #expect(reply(at: 1_559_734_385, Self.secrets) == Self.client + Golden.bytes("010000005cf7a871d4a564a1442aca77"))
        let rotated = CookieSecrets(current: Array(repeating: 7, count: 16), previous: Self.secret)
        let renewed = reply(at: Int64(made) + 60, rotated)
        #expect(renewed != option && renewed.prefix(8).elementsEqual(Self.client))
        #expect(ServerCookie.verdict(renewed, address: Self.address, now: Int64(made) + 60, secrets: rotated) == .valid)
    }
}

@Suite struct RateLimiterTests {
    /// Rate 5, window 1, slip 2, one query every 50 ms for 15 s: 5 a second are answered, and
    /// of the rest every second one is truncated, every other dropped.
    @Test func tokenBucketAndSlip() {
        let limiter = ResponseRateLimiter(RateLimitConfiguration(rate: 5, window: 1, slip: 2))
        let key = limiter.key(client: IPAddress("198.51.100.7")!, kind: .answer, name: try! DNSName("www.svc.example."))
        var counts: [RateLimitAction: Int] = [:]
        for index in 0..<300 { counts[limiter.account(key: key, now: 100 + Double(index) * 0.05), default: 0] += 1 }
        // The first 5 from the full bucket, then 5/s for 14.95 s.
        #expect((78...81).contains(counts[.send] ?? 0), "\(counts)")
        #expect(abs((counts[.slip] ?? 0) - (counts[.drop] ?? 0)) <= 1, "\(counts)")
    }

    @Test func bucketsAreSeparateByNetworkClassAndName() throws {
        let limiter = ResponseRateLimiter(RateLimitConfiguration(rate: 1, window: 1, slip: 0))
        let www = try DNSName("www.svc.example.")
        let a = limiter.key(client: IPAddress("198.51.100.7")!, kind: .answer, name: www)
        // Same /24: same bucket. Another /24, class or name: another bucket.
        #expect(limiter.key(client: IPAddress("198.51.100.200")!, kind: .answer, name: www) == a)
        #expect(limiter.key(client: IPAddress("198.51.101.7")!, kind: .answer, name: www) != a)
        #expect(limiter.key(client: IPAddress("198.51.100.7")!, kind: .nodata, name: www) != a)
        #expect(limiter.key(client: IPAddress("198.51.100.7")!, kind: .answer, name: try DNSName("mail.svc.example.")) != a)
        // /56 for IPv6.
        let v6 = limiter.key(client: IPAddress("2001:db8:0:1100::1")!, kind: .answer, name: www)
        #expect(limiter.key(client: IPAddress("2001:db8:0:11ff::2")!, kind: .answer, name: www) == v6)
        #expect(limiter.key(client: IPAddress("2001:db8:0:1200::1")!, kind: .answer, name: www) != v6)
        #expect(limiter.account(key: a, now: 0) == .send)
        #expect(limiter.account(key: a, now: 0.1) == .drop)
        #expect(limiter.account(key: a, now: 1.2) == .send)
    }

    /// A window of 3 lets a quiet client burst up to rate × window.
    @Test func windowIsTheBurst() {
        let limiter = ResponseRateLimiter(RateLimitConfiguration(rate: 2, window: 3, slip: 1))
        let key: UInt64 = 42
        let actions = (0..<8).map { _ in limiter.account(key: key, now: 10) }
        #expect(actions == Array(repeating: .send, count: 6) + [.slip, .slip])
    }
}

/// Cookies, rate limiting and ECS as the transports see them, in process.
@Suite struct HardeningAnswerTests {
    static let secrets = CookieSecrets(current: Golden.bytes("e5e973e5a6b2a43f48e7dc849e37bfcf"))
    static let client = Golden.bytes("2464c4abcf10c957")

    static func state(rrl: RateLimitConfiguration? = nil) -> ServingState {
        ServingState(catalog: Fixture.state.catalog, cookies: secrets, rateLimiter: rrl.map(ResponseRateLimiter.init))
    }

    static func ask(_ packet: [UInt8], state: ServingState, transport: Transport = .udp, source: String = "198.51.100.100",
                    now: Double = 1000, wall: Int64 = 1_559_731_985) -> [UInt8]? {
        var responder = Responder()
        let context = RequestContext(transport: transport, source: IPAddress(source), now: now, wallClock: wall)
        let answered = packet.withUnsafeBytes { responder.respond(to: $0, context: context, state: state) }
        return answered ? responder.response : nil
    }

    static func cookieQuery(_ option: [UInt8]) -> [UInt8] {
        Fixture.query("www.svc.example.", .a, edns: EDNS(options: [EDNSOption(code: .cookie, data: option)]))
    }

    static func cookie(of response: [UInt8]) throws -> [UInt8]? {
        try Message(response).edns?.options.first { $0.code == .cookie }?.data
    }

    @Test func clientCookieGetsAnAnswerAndAServerCookie() throws {
        let response = try #require(Self.ask(Self.cookieQuery(Self.client), state: Self.state()))
        let message = try Message(response)
        #expect(message.rcode == .noError && message.answer.count == 2)
        #expect(try Self.cookie(of: response) == Self.client + Golden.bytes("010000005cf79f111f8130c3eee29480"))
    }

    @Test func noCookieNoCookieOption() throws {
        let response = try #require(Self.ask(Fixture.query("www.svc.example.", .a), state: Self.state()))
        #expect(try Self.cookie(of: response) == nil)
    }

    /// 40 requests in one instant with rate 2, slip 0: without a cookie 2 are answered; with
    /// the server cookie from the first response, all are; over TCP, all are.
    @Test func validCookieAndTCPAreNotRateLimited() throws {
        let state = Self.state(rrl: RateLimitConfiguration(rate: 2, window: 1, slip: 0))
        let plain = Fixture.query("www.svc.example.", .a)
        let first = try #require(Self.ask(Self.cookieQuery(Self.client), state: state, source: "203.0.113.9"))
        let full = try #require(try Self.cookie(of: first))
        #expect(full.count == 24)
        func answered(_ packet: [UInt8], _ transport: Transport, from source: String) -> Int {
            (0..<40).filter { _ in Self.ask(packet, state: state, transport: transport, source: source) != nil }.count
        }
        #expect(answered(plain, .udp, from: "198.51.100.1") == 2)
        #expect(answered(Self.cookieQuery(full), .udp, from: "203.0.113.9") == 40)
        #expect(answered(Self.cookieQuery(Self.client), .udp, from: "192.0.2.200") == 2)
        #expect(answered(plain, .tcp, from: "198.51.100.1") == 40)
    }

    /// A slipped response is the header and question with TC=1 and nothing else.
    @Test func slipIsAnEmptyTruncatedResponse() throws {
        let state = Self.state(rrl: RateLimitConfiguration(rate: 1, window: 1, slip: 1))
        let query = Fixture.query("www.svc.example.", .a, id: 0x7777)
        _ = Self.ask(query, state: state)
        let slipped = try Message(try #require(Self.ask(query, state: state)))
        #expect(slipped.header.truncated && slipped.header.isResponse && slipped.header.id == 0x7777)
        #expect(slipped.questions.count == 1 && slipped.answer.isEmpty && slipped.authority.isEmpty)
        #expect(slipped.additional.isEmpty && slipped.edns == nil)
    }

    /// Random names under a wildcard share the wildcard's bucket.
    @Test func wildcardAnswersCountAgainstTheWildcard() {
        let state = Self.state(rrl: RateLimitConfiguration(rate: 3, window: 1, slip: 0))
        let answered = (0..<20).filter { index in
            Self.ask(Fixture.query("random\(index).wild.svc.example.", .a), state: state) != nil
        }.count
        #expect(answered == 3)
    }

    /// Random names under one zone share the NXDOMAIN bucket (the zone's), so a random-subdomain
    /// flood is limited as one.
    @Test func nxdomainCountsAgainstTheZone() {
        let state = Self.state(rrl: RateLimitConfiguration(rate: 3, window: 1, slip: 0))
        let answered = (0..<20).filter { index in
            Self.ask(Fixture.query("random\(index).svc.example.", .a), state: state) != nil
        }.count
        #expect(answered == 3)
    }
}
