/// A name in a zone with its RRsets. Empty non-terminals exist as nodes without RRsets,
/// so that they answer NODATA rather than NXDOMAIN (RFC 8020, RFC 4592 §2.2.2).
public final class ZoneNode: Sendable {
    public let name: DNSName
    /// RRsets in the order the zone file first named their types.
    public let rrsets: [RRSet]
    /// The NS set of the topmost zone cut at or above this node, if any: data at and below
    /// a cut is not authoritative (RFC 1034 §4.2.1).
    public let delegation: RRSet?
    /// True when this node holds the NS set of a cut (not the apex).
    public let isCut: Bool
    /// True when `*.name` exists, so NXDOMAIN checks need not build that name.
    public let hasWildcardChild: Bool

    init(name: DNSName, rrsets: [RRSet], delegation: RRSet?, isCut: Bool, hasWildcardChild: Bool) {
        self.name = name
        self.rrsets = rrsets
        self.delegation = delegation
        self.isCut = isCut
        self.hasWildcardChild = hasWildcardChild
    }

    @inlinable
    public func rrset(_ type: RRType) -> RRSet? {
        for set in rrsets where set.type == type { return set }
        return nil
    }
}

/// One authoritative zone, immutable once built.
public final class Zone: Sendable {
    public let origin: DNSName
    public let soa: RRSet
    /// The SOA as sent in negative answers: TTL = min(SOA TTL, MINIMUM) (RFC 2308 §3).
    public let negativeSOA: RRSet
    public let apexNS: RRSet?
    public let nodes: [DNSName: ZoneNode]
    public let recordCount: Int
    /// Where the zone was read from, for logs and `check`.
    public let source: String

    init(origin: DNSName, soa: RRSet, apexNS: RRSet?, nodes: [DNSName: ZoneNode], recordCount: Int, source: String) {
        self.origin = origin
        self.soa = soa
        let rdata = soa.rdatas[0]
        let minimum = rdata.suffix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        self.negativeSOA = soa.with(ttl: min(soa.ttl, minimum))
        self.apexNS = apexNS
        self.nodes = nodes
        self.recordCount = recordCount
        self.source = source
    }

    /// Where a name leads inside this zone (RFC 1034 §4.3.2 step 3).
    public enum Lookup {
        /// The name exists (possibly as an empty non-terminal).
        case exact(ZoneNode)
        /// The name does not exist, but `*.closestEncloser` does (RFC 4592 §3.3.1).
        case wildcard(ZoneNode)
        /// The name is at or below a zone cut; the set is the cut's NS.
        case delegation(RRSet)
        case nxdomain
    }

    /// - Parameter qtype: DS at a cut is answered from the parent side (RFC 4035 §3.1.4.1).
    public func lookup(_ name: DNSName, qtype: RRType) -> Lookup {
        if let node = nodes[name] {
            if let cut = node.delegation, !(node.isCut && qtype == .ds && cut.name == name) {
                return .delegation(cut)
            }
            return .exact(node)
        }
        // Closest encloser: the longest existing ancestor. The apex always exists.
        var candidate = name.parent
        while let current = candidate {
            if let encloser = nodes[current] {
                if let cut = encloser.delegation { return .delegation(cut) }
                if encloser.hasWildcardChild, let wildcard = nodes[current.wildcardChild] {
                    return .wildcard(wildcard)
                }
                return .nxdomain
            }
            if current == origin { break }
            candidate = current.parent
        }
        return .nxdomain
    }
}
