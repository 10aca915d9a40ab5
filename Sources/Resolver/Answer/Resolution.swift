/// One RRset placed in a response section.
public struct SectionEntry: Sendable {
    /// The owner written on the wire: the query name for the first answer (echoing the
    /// query's case) and for wildcard synthesis (RFC 4592 §3.3.1).
    public var owner: DNSName
    public var rrset: RRSet
    public var ttl: UInt32

    public init(owner: DNSName, rrset: RRSet, ttl: UInt32? = nil) {
        self.owner = owner
        self.rrset = rrset
        self.ttl = ttl ?? rrset.ttl
    }
}

/// What the answer to a question is, before it is encoded: the outcome of RFC 1034 §4.3.2.
///
/// It is a plain value reused across queries (`reset` keeps the storage), so answering does
/// not allocate arrays per query.
public struct Resolution: Sendable {
    public var rcode: ResponseCode = .noError
    public var authoritative = false
    public var answer: [SectionEntry] = []
    public var authority: [SectionEntry] = []
    public var additional: [SectionEntry] = []
    /// The ECS SCOPE PREFIX-LENGTH the answer depended on (RFC 7871 §7.2.1): 0 for data
    /// that is the same for every client.
    public var scopePrefixLength: UInt8 = 0

    public init() {
        answer.reserveCapacity(8)
        authority.reserveCapacity(4)
        additional.reserveCapacity(16)
    }

    public mutating func reset() {
        rcode = .noError
        authoritative = false
        answer.removeAll(keepingCapacity: true)
        authority.removeAll(keepingCapacity: true)
        additional.removeAll(keepingCapacity: true)
        scopePrefixLength = 0
    }
}
