/// Answers compiled to wire form once per state, found by the query's own bytes: NSD's
/// "precompiled answers". Answering a query that hits the table is copying, not building.
///
/// Every entry is produced by the general answering code (`Catalog.answer`, the service
/// answer) and encoded by `Responder` itself, so a precompiled answer is byte for byte the
/// response the general path gives: the table only memoizes it. What varies per query is
/// patched in by `Responder+FastPath`: the ID, RD/CD, the question as the client wrote it
/// (case included; the compiled names point to it, and compression matches case-
/// insensitively), the OPT record, and for service names the TTL.
///
/// Keys are (lower-cased wire name, QTYPE) in one open-addressed table over flat arrays,
/// probed with a hash computed straight from the packet, so a lookup allocates nothing.
public struct AnswerTable: Sendable {
    /// What a hit answers with.
    public enum Kind: Sendable, Equatable {
        /// A compiled response tail.
        case fixed(Compiled)
        /// A service name: the per-site templates of `services[index]`.
        case service(index: Int)
    }

    /// A compiled response: header bits and section counts, and the bytes that follow the
    /// question (answer, authority and additional sections, without OPT).
    public struct Compiled: Sendable, Equatable {
        /// AA and RCODE (low four bits) of the header; the rest comes from the query.
        var flags: UInt16
        var answerCount: UInt16
        var authorityCount: UInt16
        var additionalCount: UInt16
        var rcode: ResponseCode
        /// Range of the tail in `bytes`.
        var start: Int32
        var length: Int32
        /// Offsets, within the tail, of the answer records' TTL fields (service templates).
        var ttlStart: Int32
        var ttlCount: Int32
    }

    struct Entry: Sendable {
        var nameStart: Int32
        var nameLength: Int32
        var type: UInt16
        var kind: Kind
    }

    /// The A and AAAA answers of one site of a service, with the service TTL (patched per
    /// decision). A family the site has no address of compiles to the NODATA answer.
    public struct SiteTemplates: Sendable {
        var a: Compiled
        var aaaa: Compiled
    }

    private var names: [UInt8] = []
    private(set) var bytes: [UInt8] = []
    private(set) var ttlOffsets: [Int32] = []
    private var entries: [Entry] = []
    private var slots: [Int32] = []
    private var mask = 0
    /// The site templates of every service, flat: service `s`'s are at
    /// `templateStarts[s]..<templateStarts[s + 1]` of `templateSites` (their site indices,
    /// ascending) and `templates`. Found by binary search (`templates(service:site:)`): no
    /// hashing per answer, and O(log n) in the service's sites.
    private var templateStarts: [Int32] = [0]
    private var templateSites: [Int32] = []
    private var templates: [SiteTemplates] = []

    public init() {}

    /// Number of (name, type) keys.
    public var count: Int { entries.count }
    /// Bytes of compiled answers held.
    public var compiledBytes: Int { bytes.count }

    // MARK: Building

    mutating func add(name: DNSName, type: RRType, kind: Kind) {
        let start = Int32(names.count)
        var index = name.start
        let storage = name.storage
        while true {
            let length = Int(storage[index])
            names.append(UInt8(length))
            if length == 0 { break }
            for offset in 1...length { names.append(asciiLower(storage[index + offset])) }
            index += 1 + length
        }
        entries.append(Entry(nameStart: start, nameLength: Int32(names.count) - start, type: type.rawValue, kind: kind))
    }

    /// Stores a compiled response (as `Responder.compile` returns it) and returns its entry.
    mutating func store(_ response: [UInt8], questionEnd: Int, ttlOffsets offsets: [Int] = []) -> Compiled {
        func u16(_ at: Int) -> UInt16 { UInt16(response[at]) << 8 | UInt16(response[at + 1]) }
        let start = Int32(bytes.count)
        bytes.append(contentsOf: response[questionEnd...])
        let ttlStart = Int32(ttlOffsets.count)
        ttlOffsets.append(contentsOf: offsets.map { Int32($0 - questionEnd) })
        let flags = u16(2)
        return Compiled(flags: flags & (Header.aaBit | 0xF), answerCount: u16(6), authorityCount: u16(8),
                        additionalCount: u16(10), rcode: ResponseCode(rawValue: flags & 0xF),
                        start: start, length: Int32(response.count - questionEnd),
                        ttlStart: ttlStart, ttlCount: Int32(offsets.count))
    }

    /// Keeps `perService` (per service index, per site index) as the flat arrays.
    mutating func setServices(_ perService: [[Int: SiteTemplates]]) {
        templateStarts = [0]
        templateSites = []
        templates = []
        for sites in perService {
            for (site, compiled) in sites.sorted(by: { $0.key < $1.key }) {
                templateSites.append(Int32(site))
                templates.append(compiled)
            }
            templateStarts.append(Int32(templateSites.count))
        }
    }

    /// The templates of `site` for service `service`; nil if it has none. Halving without
    /// branches: which half holds a client's site is a coin toss that a branch mispredicts.
    func templates(service: Int, site: Int) -> SiteTemplates? {
        guard service >= 0, service + 1 < templateStarts.count else { return nil }
        var base = Int(templateStarts[service])
        var count = Int(templateStarts[service + 1]) &- base
        guard count > 0 else { return nil }
        let key = Int32(truncatingIfNeeded: site)
        // `base` ends at the last of the service's sites at most `key`.
        while count > 1 {
            let half = count >> 1
            base = templateSites[base &+ half] <= key ? base &+ half : base
            count &-= half
        }
        return templateSites[base] == key ? templates[base] : nil
    }

    /// Builds the hash index once every entry is added.
    mutating func seal() {
        var size = 16
        while size < entries.count * 2 { size <<= 1 }
        mask = size - 1
        slots = Array(repeating: -1, count: size)
        names.withUnsafeBytes { arena in
            for (position, entry) in entries.enumerated() {
                let name = UnsafeRawBufferPointer(rebasing: arena[Int(entry.nameStart)..<Int(entry.nameStart + entry.nameLength)])
                var slot = Int(truncatingIfNeeded: Self.hash(name, type: entry.type)) & mask
                while slots[slot] >= 0 { slot = (slot + 1) & mask }
                slots[slot] = Int32(position)
            }
        }
    }

    // MARK: Lookup

    /// A hash of the lower-cased name and the type, eight bytes of the name at a time
    /// (`lowered`): byte by byte (FNV-1a) it was a chain of a multiplication per byte, and
    /// a name of the bench's is seventeen. The name must be a valid uncompressed wire name
    /// within `name`.
    @inline(__always)
    static func hash(_ name: UnsafeRawBufferPointer, type: UInt16) -> UInt64 {
        var hash = 0xCBF2_9CE4_8422_2325 ^ UInt64(type) << 48 ^ UInt64(name.count)
        _ = forEachWord(name) { _, word in
            hash = (hash ^ lowered(word)) &* 0x9E37_79B9_7F4A_7C15
            hash ^= hash >> 32
            return true
        }
        hash &*= 0xBF58_476D_1CE4_E5B9
        return hash ^ (hash >> 29)
    }

    /// True when `name` lower-cased is the first `name.count` bytes of `stored` (a name
    /// kept lower-cased), compared eight bytes at a time.
    @inline(__always)
    static func matches(_ name: UnsafeRawBufferPointer, lowered stored: UnsafeRawBufferPointer) -> Bool {
        guard stored.count >= name.count else { return false }
        let stored = UnsafeRawBufferPointer(rebasing: stored[..<name.count])
        return forEachWord(name) { offset, word in
            lowered(word) == (stored.count >= 8 ? stored.loadUnaligned(fromByteOffset: offset, as: UInt64.self) : shortWord(stored))
        }
    }

    /// Calls `body` with (offset, the eight bytes there, little-endian) for every eight bytes
    /// of `bytes`, the last eight overlapping the ones before when the count is no multiple
    /// of eight, so that no byte is read on its own; once, with the bytes zero-extended,
    /// when there are fewer than eight. Stops, returning false, when `body` does.
    @inline(__always)
    static func forEachWord(_ bytes: UnsafeRawBufferPointer, _ body: (Int, UInt64) -> Bool) -> Bool {
        let count = bytes.count
        guard count >= 8 else { return body(0, shortWord(bytes)) }
        var offset = 0
        while offset &+ 8 < count {
            guard body(offset, bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) else { return false }
            offset &+= 8
        }
        return body(count &- 8, bytes.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self))
    }

    /// The bytes of `bytes` (fewer than eight), little-endian, zero-extended.
    @inline(__always)
    static func shortWord(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var word: UInt64 = 0
        for index in 0..<bytes.count { word |= UInt64(bytes[index]) << (8 &* index) }
        return word
    }

    /// `word` with each byte ASCII-lowered (RFC 4343), as `asciiLower` does one byte: a
    /// byte is upper case when its low seven bits are 0x41...0x5A and its high bit is clear.
    /// Label lengths (at most 63) are below 'A' and stay as they are.
    @inline(__always)
    static func lowered(_ word: UInt64) -> UInt64 {
        let low = word & 0x7F7F_7F7F_7F7F_7F7F
        let atLeastA = low &+ 0x3F3F_3F3F_3F3F_3F3F      // high bit set from 0x41 up
        let pastZ = low &+ 0x2525_2525_2525_2525         // high bit set from 0x5B up
        let upper = atLeastA & ~pastZ & ~word & 0x8080_8080_8080_8080
        return word | upper >> 2                          // 0x80 >> 2 = 0x20
    }

    /// The entry for the wire name `name` (validated, uncompressed) and `type`.
    func lookup(_ name: UnsafeRawBufferPointer, type: UInt16) -> Kind? {
        guard !slots.isEmpty else { return nil }
        var slot = Int(truncatingIfNeeded: Self.hash(name, type: type)) & mask
        return names.withUnsafeBytes { arena -> Kind? in
            while true {
                let position = slots[slot]
                if position < 0 { return nil }
                let entry = entries[Int(position)]
                if entry.type == type, Int(entry.nameLength) == name.count,
                   Self.matches(name, lowered: UnsafeRawBufferPointer(rebasing: arena[Int(entry.nameStart)...])) {
                    return entry.kind
                }
                slot = (slot + 1) & mask
            }
        }
    }
}
