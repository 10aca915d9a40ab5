/// Round-trip times from client prefixes to sites, with longest-prefix match over IPv4 and
/// IPv6, and optional locations of prefixes for distance-based estimates.
///
/// Stored as one path-compressed trie per family (`PrefixTrie`, flat arrays, no per-node
/// objects). A lookup walks the prefixes on the client's path, collecting the most specific
/// measurement for each site on the way, and reports how many leading bits the result
/// depended on — the ECS scope (RFC 7871 §7.2.1): every client sharing those bits gets the
/// same result.
public struct LatencyMap: Sendable {
    /// One record of `records`: a prefix's head, or one of its measured RTTs. All prefixes'
    /// records share one array, so a map of a million prefixes holds no million small
    /// dictionaries; a prefix's trie entry is the index of its head, and its measurements are
    /// chained from there (`next`, -1 ending the chain).
    ///
    /// The head is in the same array as the measurements, not in one of its own: a map loaded
    /// from a file has each prefix's head and measurements side by side, so the walk that
    /// reads the head finds the measurements in the same or the next cache line, where a
    /// separate entry array cost one more read of memory that no query touched for a second
    /// (the client's last) on every decision.
    ///
    /// A measurement's RTT is kept in whole microseconds: 12 bytes a record rather than 16 with
    /// a `Double`, 8 MB less at two million. A microsecond is far below what a network RTT can
    /// be measured to, and milliseconds with up to three decimals (what files and reports
    /// give) read back exactly, as the division is correctly rounded. A head's `value` is its
    /// location's index in `locations` plus one (0: none); its prefix is not stored: a lookup
    /// knows it from the depth it found the entry at, and at a million prefixes the 40 bytes
    /// each would be the largest part of the map.
    struct Record: Sendable {
        /// The site measured; `Record.head` for a prefix's head.
        var site: Int32
        var next: Int32
        private var value: UInt32

        static let head: Int32 = -1

        /// A measurement of `site`.
        init(site: Int32, next: Int32, rtt: Double) {
            self.site = site
            self.next = next
            self.value = Self.microseconds(rtt)
        }

        /// A prefix's head, with no measurement and no location yet (`value` 0).
        static let newHead = Record(site: head, next: -1, rtt: 0)

        /// A measurement's RTT, in milliseconds.
        var rtt: Double {
            get { Double(value) / 1000 }
            set { value = Self.microseconds(newValue) }
        }

        /// A head's location in `locations`, nil when it has none.
        var location: Int? {
            get { value == 0 ? nil : Int(value) - 1 }
            set { value = newValue.map { UInt32($0 + 1) } ?? 0 }
        }

        /// `rtt` (ms, finite, ≥ 0) in whole microseconds, at most `UInt32.max` (71 minutes).
        private static func microseconds(_ rtt: Double) -> UInt32 {
            UInt32((min(rtt * 1000, Double(UInt32.max))).rounded())
        }
    }

    private var v4 = PrefixTrie<UInt32>()
    private var v6 = PrefixTrie<UInt128>()
    private(set) var records: [Record] = []
    /// How many prefixes have a head in `records`.
    public private(set) var prefixCount = 0
    private var locations: [GeoPoint] = []

    public init() {}

    /// Gives back the room the arrays grew into while the map was built (up to half of
    /// each, as arrays double), and indexes the IPv4 trie's first sixteen bits
    /// (`PrefixTrie.starts`): for a map loaded from a file and then mostly read.
    public mutating func compact() {
        func exact<T>(_ array: inout [T]) {
            guard array.capacity > array.count else { return }
            array = array.withUnsafeBufferPointer { Array($0) }
        }
        v4.compact()
        v6.compact()
        exact(&records)
        exact(&locations)
    }

    /// Makes room for `rows` more measurements, each possibly of a prefix not seen yet (a
    /// head), for a file about to be loaded in one go, which then does not grow the records
    /// by doubling (each growth holds the old array and one twice its size at once): the
    /// scale case's `check` peaked at 186 MB with it, 191 MB without.
    public mutating func reserveCapacity(rows: Int) {
        records.reserveCapacity(records.count + 2 * max(rows, 0))
    }

    /// Smoothing weight of a new measurement against the stored one (EWMA).
    public static let defaultAlpha = 0.3

    /// Records a measurement. With `alpha` the stored value moves toward the new one by that
    /// weight (EWMA); without, it is replaced. Non-finite or negative values are refused.
    @discardableResult
    public mutating func setRTT(_ rtt: Double, prefix: IPPrefix, site: Int, alpha: Double? = nil) -> Bool {
        guard rtt.isFinite, rtt >= 0 else { return false }
        let head = headIndex(for: prefix)
        var cursor = records[head].next
        while cursor >= 0 {
            if records[Int(cursor)].site == Int32(site) {
                let old = records[Int(cursor)].rtt
                records[Int(cursor)].rtt = alpha.map { $0 * rtt + (1 - $0) * old } ?? rtt
                return true
            }
            cursor = records[Int(cursor)].next
        }
        records.append(Record(site: Int32(site), next: records[head].next, rtt: rtt))
        records[head].next = Int32(records.count - 1)
        return true
    }

    /// True when `prefix` itself has an entry (not just a covering one).
    public func hasEntry(_ prefix: IPPrefix) -> Bool {
        switch prefix.address {
        case .v4(let value): return v4.entry(of: value, length: prefix.length) >= 0
        case .v6(let high, let low): return v6.entry(of: Self.bits(high, low), length: prefix.length) >= 0
        }
    }

    @inline(__always)
    private static func bits(_ high: UInt64, _ low: UInt64) -> UInt128 { UInt128(high) << 64 | UInt128(low) }

    public mutating func setLocation(_ location: GeoPoint, prefix: IPPrefix) {
        let head = headIndex(for: prefix)
        if let index = records[head].location {
            locations[index] = location
        } else {
            records[head].location = locations.count
            locations.append(location)
        }
    }

    /// The index in `records` of `prefix`'s head, made if it has none.
    private mutating func headIndex(for prefix: IPPrefix) -> Int {
        func entry<Bits>(in trie: inout PrefixTrie<Bits>, _ bits: Bits) -> Int {
            let node = trie.node(for: bits, length: prefix.length)
            if trie.nodes[node].entry < 0 {
                trie.setEntry(Int32(records.count), at: node)
                records.append(.newHead)
                prefixCount += 1
            }
            return Int(trie.nodes[node].entry)
        }
        switch prefix.address {
        case .v4(let value): return entry(in: &v4, value)
        case .v6(let high, let low): return entry(in: &v6, Self.bits(high, low))
        }
    }

    /// Where an RTT came from.
    public enum Source: Hashable, Sendable, CustomStringConvertible {
        case measured(IPPrefix)
        /// From the distance between the prefix's location and the site's.
        case geo(IPPrefix)
        case defaultRTT

        public var description: String {
            switch self {
            case .measured(let prefix): return "measured \(prefix)"
            case .geo(let prefix): return "geo estimate \(prefix)"
            case .defaultRTT: return "default"
            }
        }
    }

    /// The result of one lookup: the most specific data on the client's path.
    public struct Match: Sendable {
        /// Most specific measurement per site index.
        public var rtts: [Int: (rtt: Double, prefix: IPPrefix)] = [:]
        /// Most specific location on the path.
        public var location: (point: GeoPoint, prefix: IPPrefix)?
        /// Leading bits of the client address the match depended on.
        public var scope: Int = 0
    }

    /// Looks up a client given as an address and how many of its leading bits are known
    /// (the ECS source prefix, or the full length for a source address).
    public func match(_ address: IPAddress, prefixLength: Int) -> Match {
        var rtts: [Int: (rtt: Double, prefix: IPPrefix)] = [:]
        let path = walk(address, prefixLength: prefixLength) { site, rtt, depth in
            rtts[site] = (rtt, IPPrefix(address: address, length: depth)!)
        }
        return Match(rtts: rtts, location: path.location, scope: path.scope)
    }

    /// What a walk down a client's path found besides the measurements.
    public struct Path: Sendable {
        /// Most specific location on the path.
        public var location: (point: GeoPoint, prefix: IPPrefix)?
        /// Leading bits of the client address the result depended on.
        public var scope: Int = 0
    }

    /// Calls `body` with the place a lookup of `address` reads first, if it has one (an
    /// IPv4 address's slot of its trie's first level), so that a caller about to look it up
    /// can start fetching it (a prefetch) and do other work meanwhile: between two queries of
    /// one client the kernel's network stack has evicted it, and the walk's reads each wait
    /// for the one before.
    public func withFirstRead(of address: IPAddress, prefixLength: Int, _ body: (UnsafeRawPointer) -> Void) {
        guard case .v4(let value) = address else { return }
        v4.withFirstRead(value, limit: min(max(prefixLength, 0), 32), body)
    }

    /// The lookup without building a table: `measured(site, rtt, depth)` is called for every
    /// measurement on the client's path, the least specific prefix first, so the last call
    /// for a site is its most specific measurement (`depth`: the prefix's length). Selection
    /// keeps just the sites of the service it decides for, in place.
    public func walk(_ address: IPAddress, prefixLength: Int, _ measured: (Int, Double, Int) -> Void) -> Path {
        let limit = min(max(prefixLength, 0), address.family.bitLength)
        var result = Path()
        // The arrays are read through buffers that `collect` captures: capturing `self`, it
        // held a copy of the map, a retain and a release of each of its six arrays, for every
        // decision.
        records.withUnsafeBufferPointer { records in
            locations.withUnsafeBufferPointer { locations in
                func collect(_ entry: Int32, depth: Int) {
                    let head = records[Int(entry)]
                    var cursor = head.next
                    while cursor >= 0 {
                        let measurement = records[Int(cursor)]
                        measured(Int(measurement.site), measurement.rtt, depth)
                        cursor = measurement.next
                    }
                    if let location = head.location {
                        result.location = (locations[location], IPPrefix(address: address, length: depth)!)
                    }
                }
                switch address {
                case .v4(let value): result.scope = v4.walk(value, limit: limit, collect)
                case .v6(let high, let low): result.scope = v6.walk(Self.bits(high, low), limit: limit, collect)
                }
            }
        }
        return result
    }
}
