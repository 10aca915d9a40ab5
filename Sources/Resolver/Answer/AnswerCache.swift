/// The general path's answers for static names the `AnswerTable` does not hold — NXDOMAIN,
/// wildcard synthesis, names below a zone cut, types a name lacks — kept per responder for
/// the state that made them, so that the next query for the same (name, type) is answered
/// by copying too.
///
/// A static answer is a function of the name, the type and the zone data alone (the client,
/// its EDNS size and options change only the header bits and the OPT record, which the fast
/// path writes itself), so keeping it for the state's lifetime is exact. Only answers with
/// every section whole are kept. Slots are fixed and direct-mapped: memory is bounded, and a
/// flood of random names only replaces entries.
struct AnswerCache {
    static let nameBytes = 256
    static let tailBytes = 512

    struct Slot {
        var generation: UInt64 = 0
        var type: UInt16 = 0
        var nameLength: Int16 = 0
        var compiled = AnswerTable.Compiled(flags: 0, answerCount: 0, authorityCount: 0, additionalCount: 0,
                                            rcode: .noError, start: 0, length: 0, ttlStart: 0, ttlCount: 0)
    }

    private var slots: [Slot] = []
    private var names: [UInt8] = []
    /// The kept sections, `tailBytes` per slot; `Compiled.start` points here.
    private(set) var tails: [UInt8] = []
    private let mask: Int

    /// `capacity` rounded down to a power of two; 0 keeps nothing. Allocated at the first store.
    init(capacity: Int) {
        var size = 1
        while size * 2 <= capacity { size *= 2 }
        mask = capacity > 0 ? size - 1 : -1
    }

    func find(generation: UInt64, name: UnsafeRawBufferPointer, type: UInt16) -> AnswerTable.Compiled? {
        guard !slots.isEmpty else { return nil }
        let index = Int(truncatingIfNeeded: AnswerTable.hash(name, type: type)) & mask
        let slot = slots[index]
        guard slot.generation == generation, slot.type == type, Int(slot.nameLength) == name.count else { return nil }
        let base = index * Self.nameBytes
        let matches = names.withUnsafeBytes { AnswerTable.matches(name, lowered: UnsafeRawBufferPointer(rebasing: $0[base...])) }
        return matches ? slot.compiled : nil
    }

    mutating func store(generation: UInt64, name: UnsafeRawBufferPointer, type: UInt16, flags: UInt16,
                        counts: (UInt16, UInt16, UInt16), tail: ArraySlice<UInt8>) {
        guard mask >= 0, name.count <= Self.nameBytes, tail.count <= Self.tailBytes else { return }
        if slots.isEmpty {
            slots = Array(repeating: Slot(), count: mask + 1)
            names = Array(repeating: 0, count: (mask + 1) * Self.nameBytes)
            tails = Array(repeating: 0, count: (mask + 1) * Self.tailBytes)
        }
        let index = Int(truncatingIfNeeded: AnswerTable.hash(name, type: type)) & mask
        let nameBase = index * Self.nameBytes
        for offset in 0..<name.count { names[nameBase + offset] = asciiLower(name[offset]) }
        let tailBase = index * Self.tailBytes
        var position = tailBase
        for byte in tail {
            tails[position] = byte
            position += 1
        }
        slots[index] = Slot(generation: generation, type: type, nameLength: Int16(name.count),
                            compiled: AnswerTable.Compiled(flags: flags, answerCount: counts.0, authorityCount: counts.1,
                                                           additionalCount: counts.2, rcode: ResponseCode(rawValue: flags & 0xF),
                                                           start: Int32(tailBase), length: Int32(tail.count), ttlStart: 0, ttlCount: 0))
    }
}
