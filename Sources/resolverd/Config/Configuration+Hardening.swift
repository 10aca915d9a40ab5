import NIOCore
import Resolver
import Yams

/// TCP limits (RFC 7766 §6.2.3, RFC 9210 §4): how many connections, for how long, and how
/// much one connection may have outstanding.
struct TCPLimitsConfig: Sendable, Equatable {
    var idleTimeoutSeconds = 10
    var readTimeoutSeconds = 5
    var maxConnections = 1000
    var maxConnectionsPerClient = 64
    var maxInFlight = 64

    var limits: TCPLimits {
        TCPLimits(idleTimeout: .seconds(Int64(idleTimeoutSeconds)), readTimeout: .seconds(Int64(readTimeoutSeconds)),
                  maxConnections: maxConnections, maxConnectionsPerClient: maxConnectionsPerClient, maxInFlight: maxInFlight)
    }
}

extension Configuration {
    static let dnsKeys: Set<String> = [
        "listen", "nsid", "chaos", "cookies", "rrl", "udp-threads",
        "tcp-idle-timeout", "tcp-read-timeout", "tcp-max-connections", "tcp-max-connections-per-client", "tcp-max-in-flight",
    ]

    /// `dns.tcp-*`; false when `field` is not one of them.
    mutating func readTCPLimit(_ field: String, _ node: Node, reader: ConfigReader) -> Bool {
        let path = "dns.\(field)"
        switch field {
        case "tcp-idle-timeout":
            tcp.idleTimeoutSeconds = reader.int(node, path, range: 1...3600) ?? tcp.idleTimeoutSeconds
        case "tcp-read-timeout":
            tcp.readTimeoutSeconds = reader.int(node, path, range: 1...3600) ?? tcp.readTimeoutSeconds
        case "tcp-max-connections":
            tcp.maxConnections = reader.int(node, path, range: 1...1_000_000) ?? tcp.maxConnections
        case "tcp-max-connections-per-client":
            tcp.maxConnectionsPerClient = reader.int(node, path, range: 1...1_000_000) ?? tcp.maxConnectionsPerClient
        case "tcp-max-in-flight":
            tcp.maxInFlight = reader.int(node, path, range: 1...65_535) ?? tcp.maxInFlight
        default:
            return false
        }
        return true
    }

    /// `dns.cookies: {secret: HEX, previous-secret: HEX}`: 16-byte secrets (RFC 9018 §4.4),
    /// the same on every server of an anycast set; the previous one is accepted during a
    /// rotation. Without a secret each start makes a random one.
    mutating func readCookies(_ node: Node, reader: ConfigReader) {
        var current: [UInt8]?
        var previous: [UInt8]?
        for (key, item) in reader.mapping(node, "dns.cookies", allowed: ["secret", "previous-secret"]) {
            let path = "dns.cookies.\(key)"
            guard let text = reader.string(item, path) else { continue }
            guard let bytes = TokenStore.bytes(hex: Substring(text)), bytes.count == 16 else {
                reader.error(item, path, "expected 32 hexadecimal digits (a 128-bit secret)")
                continue
            }
            if key == "secret" { current = bytes } else { previous = bytes }
        }
        if let current {
            cookieSecrets = CookieSecrets(current: current, previous: previous)
        } else if previous != nil {
            reader.error(node, "dns.cookies", "previous-secret needs a secret")
        }
    }

    /// `dns.rrl: {rate, window, slip, ipv4-prefix, ipv6-prefix, table-size}`; off when absent.
    mutating func readRateLimit(_ node: Node, reader: ConfigReader) {
        var limits = RateLimitConfiguration(rate: 0)
        for (key, item) in reader.mapping(node, "dns.rrl",
                                          allowed: ["rate", "window", "slip", "ipv4-prefix", "ipv6-prefix", "table-size"]) {
            let path = "dns.rrl.\(key)"
            switch key {
            case "rate": limits.rate = reader.int(item, path, range: 1...1_000_000) ?? limits.rate
            case "window": limits.window = reader.int(item, path, range: 1...3600) ?? limits.window
            case "slip": limits.slip = reader.int(item, path, range: 0...100) ?? limits.slip
            case "ipv4-prefix": limits.ipv4PrefixLength = reader.int(item, path, range: 8...32) ?? limits.ipv4PrefixLength
            case "ipv6-prefix": limits.ipv6PrefixLength = reader.int(item, path, range: 16...128) ?? limits.ipv6PrefixLength
            // 32 bytes a bucket: at most 32 MiB.
            default: limits.tableSize = reader.int(item, path, range: 64...1_048_576) ?? limits.tableSize
            }
        }
        if limits.rate == 0 {
            reader.error(node, "dns.rrl", "rate is required (responses per second per client network)")
            return
        }
        rateLimit = limits
    }
}
