/// Round-trip times from client prefixes to sites, with longest-prefix match over IPv4 and
/// IPv6, and optional locations of prefixes for distance-based estimates.
///
/// Stored as one path-compressed trie per family (`PrefixTrie`, flat arrays, no per-node
/// objects). A lookup walks the prefixes on the client's path, collecting the most specific
/// measurement for each site on the way, and reports how many leading bits the result
/// depended on — the ECS scope (RFC 7871 §7.2.1): every client sharing those bits gets the
/// same result.
public struct LatencyMap: Sendable {
    /// What one prefix knows. Its prefix is not stored: a lookup knows it from the depth it
    /// found the entry at, and at a million prefixes the 40 bytes each would be the largest
    /// part of the map.
    struct Entry: Sendable, Equatable {
        /// The first of its measurements in `measurements` (-1: none).
        var firstMeasurement: Int32 = -1
        /// Its location in `locations` (-1: none).
        var location: Int32 = -1
    }

    /// One measured RTT, chained per prefix. All prefixes' measurements share one array, so
    /// a map of a million prefixes holds no million small dictionaries.
    ///
    /// The RTT is kept in whole microseconds: 12 bytes a measurement rather than 16 with a
    /// `Double`, 8 MB less at two million. A microsecond is far below what a network RTT can
    /// be measured to, and milliseconds with up to three decimals (what files and reports
    /// give) read back exactly, as the division is correctly rounded.
    struct Measurement: Sendable {
        var site: Int32
        var next: Int32
        private var microseconds: UInt32

        init(site: Int32, next: Int32, rtt: Double) {
            self.site = site
            self.next = next
            self.microseconds = Self.microseconds(rtt)
        }

        /// In milliseconds.
        var rtt: Double {
            get { Double(microseconds) / 1000 }
            set { microseconds = Self.microseconds(newValue) }
        }

        /// `rtt` (ms, finite, ≥ 0) in whole microseconds, at most `UInt32.max` (71 minutes).
        private static func microseconds(_ rtt: Double) -> UInt32 {
            UInt32((min(rtt * 1000, Double(UInt32.max))).rounded())
        }
    }

    private var v4 = PrefixTrie<UInt32>()
    private var v6 = PrefixTrie<UInt128>()
    private var entries: [Entry] = []
    private var measurements: [Measurement] = []
    private var locations: [GeoPoint] = []

    public init() {}

    public var prefixCount: Int { entries.count }

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
        exact(&entries)
        exact(&measurements)
        exact(&locations)
    }

    /// Smoothing weight of a new measurement against the stored one (EWMA).
    public static let defaultAlpha = 0.3

    /// Records a measurement. With `alpha` the stored value moves toward the new one by that
    /// weight (EWMA); without, it is replaced. Non-finite or negative values are refused.
    @discardableResult
    public mutating func setRTT(_ rtt: Double, prefix: IPPrefix, site: Int, alpha: Double? = nil) -> Bool {
        guard rtt.isFinite, rtt >= 0 else { return false }
        let index = entryIndex(for: prefix)
        var cursor = entries[index].firstMeasurement
        while cursor >= 0 {
            if measurements[Int(cursor)].site == Int32(site) {
                let old = measurements[Int(cursor)].rtt
                measurements[Int(cursor)].rtt = alpha.map { $0 * rtt + (1 - $0) * old } ?? rtt
                return true
            }
            cursor = measurements[Int(cursor)].next
        }
        measurements.append(Measurement(site: Int32(site), next: entries[index].firstMeasurement, rtt: rtt))
        entries[index].firstMeasurement = Int32(measurements.count - 1)
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
        let index = entryIndex(for: prefix)
        if entries[index].location >= 0 {
            locations[Int(entries[index].location)] = location
        } else {
            entries[index].location = Int32(locations.count)
            locations.append(location)
        }
    }

    private mutating func entryIndex(for prefix: IPPrefix) -> Int {
        func entry<Bits>(in trie: inout PrefixTrie<Bits>, _ bits: Bits) -> Int {
            let node = trie.node(for: bits, length: prefix.length)
            if trie.nodes[node].entry < 0 {
                trie.setEntry(Int32(entries.count), at: node)
                entries.append(Entry())
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
        // held a copy of the map, a retain and a release of each of its seven arrays, for
        // every decision.
        entries.withUnsafeBufferPointer { entries in
            measurements.withUnsafeBufferPointer { measurements in
                locations.withUnsafeBufferPointer { locations in
                    func collect(_ entry: Int32, depth: Int) {
                        let data = entries[Int(entry)]
                        var cursor = data.firstMeasurement
                        while cursor >= 0 {
                            let measurement = measurements[Int(cursor)]
                            measured(Int(measurement.site), measurement.rtt, depth)
                            cursor = measurement.next
                        }
                        if data.location >= 0 {
                            result.location = (locations[Int(data.location)], IPPrefix(address: address, length: depth)!)
                        }
                    }
                    switch address {
                    case .v4(let value): result.scope = v4.walk(value, limit: limit, collect)
                    case .v6(let high, let low): result.scope = v6.walk(Self.bits(high, low), limit: limit, collect)
                    }
                }
            }
        }
        return result
    }
}
