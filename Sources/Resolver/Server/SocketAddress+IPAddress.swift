import NIOCore
import Scoring

extension IPAddress {
    /// The address of a NIO socket address, without going through text.
    public init?(_ address: SocketAddress?) {
        switch address {
        case .v4(let v4)?:
            self = .v4(UInt32(bigEndian: v4.address.sin_addr.s_addr))
        case .v6(let v6)?:
            // An IPv4 client of a dual-stack socket arrives as ::ffff:a.b.c.d (RFC 4291
            // §2.5.5.2); it is that IPv4 address for rate limiting, cookies (RFC 9018 hashes
            // 4 bytes for IPv4) and connection limits.
            var storage = v6.address.sin6_addr
            self = withUnsafeBytes(of: &storage) { IPAddress.unmapped(v6Bytes: $0) }
        default:
            return nil
        }
    }
}

extension SocketAddress {
    /// `192.0.2.1:53` or `[2001:db8::1]:53`, as operators write listening addresses.
    public var hostPort: String {
        let host = ipAddress ?? "?"
        return host.contains(":") ? "[\(host)]:\(port ?? 0)" : "\(host):\(port ?? 0)"
    }
}
