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
    /// Per service index, per site index.
    private(set) var services: [[Int: SiteTemplates]] = []

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

    mutating func setServices(_ templates: [[Int: SiteTemplates]]) { services = templates }

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

    /// FNV-1a over the lower-cased name and the type. The name must be a valid
    /// uncompressed wire name within `name`.
    @inline(__always)
    static func hash(_ name: UnsafeRawBufferPointer, type: UInt16) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in name { hash = (hash ^ UInt64(asciiLower(byte))) &* 0x0000_0100_0000_01B3 }
        hash = (hash ^ UInt64(type >> 8)) &* 0x0000_0100_0000_01B3
        hash = (hash ^ UInt64(type & 0xFF)) &* 0x0000_0100_0000_01B3
        return hash ^ (hash >> 29)
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
                if entry.type == type, Int(entry.nameLength) == name.count {
                    var equal = true
                    let base = Int(entry.nameStart)
                    for offset in 0..<name.count where asciiLower(name[offset]) != arena[base + offset] {
                        equal = false
                        break
                    }
                    if equal { return entry.kind }
                }
                slot = (slot + 1) & mask
            }
        }
    }
}
