import Scoring

/// DNS cookies (RFC 7873) with interoperable server cookies (RFC 9018): a server cookie is
/// Version 1 | Reserved 0 | Timestamp | SipHash-2-4(client cookie | version | reserved |
/// timestamp | client IP, secret), so every server sharing the secret accepts it, and no
/// state is kept per client.
public struct CookieSecrets: Sendable, Equatable {
    /// The secret new server cookies are made with.
    public var current: [UInt8]
    /// The secret before a rotation, still accepted so that clients are not all turned away
    /// at once (RFC 9018 §5).
    public var previous: [UInt8]?

    public init(current: [UInt8], previous: [UInt8]? = nil) {
        precondition(current.count == 16 && (previous?.count ?? 16) == 16, "cookie secrets are 16 bytes")
        self.current = current
        self.previous = previous
    }

    /// A fresh random secret, for a server whose configuration names none.
    public static func random() -> CookieSecrets {
        var generator = SystemRandomNumberGenerator()
        return CookieSecrets(current: (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }
}

/// What a query's COOKIE option says about its sender (RFC 7873 §5.2).
public enum CookieVerdict: Equatable, Sendable {
    /// No COOKIE option.
    case absent
    /// A client cookie alone, or with a server cookie we did not make or that expired: the
    /// query is answered with a fresh server cookie (§5.2.3, §5.2.4).
    case clientOnly
    /// A server cookie we made for this client within the last hour: the client has shown it
    /// receives our responses at its address, so it is exempt from rate limiting.
    case valid
}

public enum ServerCookie {
    /// A cookie is valid from its timestamp to one hour later, and may be up to five minutes
    /// in the future to allow for clock skew between servers (RFC 9018 §4.3).
    static let lifetime: Int64 = 3600
    static let futureSkew: Int64 = 300
    /// Reissue a valid cookie once it is half an hour old (RFC 9018 §4.3).
    static let renewAfter: Int64 = 1800

    /// The 16-byte server cookie for `client` (8 bytes) at `address` and time `timestamp`.
    public static func make(client: some Collection<UInt8>, address: IPAddress, timestamp: UInt32,
                            secret: [UInt8]) -> [UInt8] {
        var cookie: [UInt8] = [1, 0, 0, 0,
                               UInt8(timestamp >> 24), UInt8(truncatingIfNeeded: timestamp >> 16),
                               UInt8(truncatingIfNeeded: timestamp >> 8), UInt8(truncatingIfNeeded: timestamp)]
        let hash = self.hash(client: client, header: cookie, address: address, secret: secret)
        for index in 0..<8 { cookie.append(UInt8(truncatingIfNeeded: hash >> (8 * UInt64(index)))) }
        return cookie
    }

    static func hash(client: some Collection<UInt8>, header: some Collection<UInt8>, address: IPAddress,
                     secret: [UInt8]) -> UInt64 {
        var hasher = SipHash24(key: SipHash24.key(secret))
        hasher.update(client)
        hasher.update(header)
        hasher.update(address.bytes)
        return hasher.finalize()
    }

    /// Judges the COOKIE option `option` (already length-checked by the decoder: 8 or 16–40
    /// bytes) from `address` at `now` (seconds since the epoch).
    public static func verdict(_ option: [UInt8]?, address: IPAddress?, now: Int64, secrets: CookieSecrets) -> CookieVerdict {
        guard let option else { return .absent }
        guard let address, option.count == 24, option[8] == 1 else { return .clientOnly }
        let stamp = timestamp(option)
        guard stamp <= now + futureSkew, now - stamp <= lifetime else { return .clientOnly }
        let valid = made(option, address: address, with: secrets.current)
            || secrets.previous.map { made(option, address: address, with: $0) } == true
        return valid ? .valid : .clientOnly
    }

    /// The COOKIE option of the response: the client cookie and a server cookie, the one the
    /// client sent if it is valid, made with the current secret and less than half an hour
    /// old, else a new one.
    public static func response(to option: [UInt8], verdict: CookieVerdict, address: IPAddress?, now: Int64,
                                secrets: CookieSecrets) -> [UInt8] {
        let address = address ?? .v4(0)
        if verdict == .valid, made(option, address: address, with: secrets.current), now - timestamp(option) < renewAfter {
            return option
        }
        return Array(option[0..<8]) + make(client: option[0..<8], address: address,
                                           timestamp: UInt32(truncatingIfNeeded: now), secret: secrets.current)
    }

    /// The timestamp of a 24-byte cookie option (client cookie, then the server cookie).
    private static func timestamp(_ option: [UInt8]) -> Int64 {
        Int64(option[12...15].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
    }

    /// Whether the server cookie in a 24-byte option is the one `secret` makes for `address`.
    private static func made(_ option: [UInt8], address: IPAddress, with secret: [UInt8]) -> Bool {
        let presented = option[16..<24].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        return hash(client: option[0..<8], header: option[8..<16], address: address, secret: secret) == presented
    }
}
