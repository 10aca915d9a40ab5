/// The zones this server is authoritative for.
public final class Catalog: Sendable {
    public let zones: [DNSName: Zone]

    public init(zones: [Zone]) {
        var byOrigin: [DNSName: Zone] = [:]
        for zone in zones { byOrigin[zone.origin] = zone }
        self.zones = byOrigin
    }

    public static let empty = Catalog(zones: [])

    /// The zone with the longest origin that contains `name` (RFC 1034 §4.3.2 step 2).
    public func zone(for name: DNSName) -> Zone? {
        var candidate: DNSName? = name
        while let current = candidate {
            if let zone = zones[current] { return zone }
            candidate = current.parent
        }
        return nil
    }

    public var recordCount: Int { zones.values.reduce(0) { $0 + $1.recordCount } }
}
