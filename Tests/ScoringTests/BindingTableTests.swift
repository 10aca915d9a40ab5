@testable import Scoring
import Testing

/// The affinity table's open-addressed shard against `Dictionary`, the table it replaced: the
/// same contents after every step of random inserts, updates and removals over keys that
/// collide in their first buckets, since removal moves entries (backward shift).
@Suite struct BindingTableTests {
    /// The model's keys (the table hashes its own way; a key is not otherwise hashable).
    struct Key: Hashable {
        let slot: AffinityTable.Slot
        func hash(into hasher: inout Hasher) {
            hasher.combine(slot.high)
            hasher.combine(slot.low)
            hasher.combine(slot.service)
            hasher.combine(slot.length)
        }
    }

    typealias Slot = AffinityTable.Slot
    typealias Stored = AffinityTable.Stored

    struct Random {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return Int(state % UInt64(bound))
        }
    }

    static func slot(_ number: Int) -> Slot {
        // Few distinct prefixes and two services: keys that share prefixes, and a small table
        // whose probe sequences run into each other and wrap around its end.
        let address: IPAddress = number % 3 == 0 ? .v6(0x2001_0db8_0000_0000 | UInt64(number) << 8, 0) : .v4(UInt32(number) << 8)
        return Slot(prefix: IPPrefix(address: address, length: number % 3 == 0 ? 56 : 24)!, service: UInt32(number % 2))
    }

    static func stored(_ value: Int) -> Stored {
        Stored(boundAt: Double(value), lastSeen: Double(value) + 1, queries: value, site: UInt32(value % 7), previous: Stored.none,
               viaResolver: value % 2 == 0)
    }

    static func contents(_ table: AffinityTable.BindingTable) -> [Key: Int] {
        var contents: [Key: Int] = [:]
        table.forEach { slot, stored in
            #expect(contents[Key(slot: slot)] == nil, "a key stored twice")
            contents[Key(slot: slot)] = stored.queries
        }
        return contents
    }

    @Test func matchesADictionaryThroughInsertsUpdatesAndRemovals() {
        var random = Random(state: 0x9E37_79B9_7F4A_7C15)
        var table = AffinityTable.BindingTable()
        var model: [Key: Int] = [:]
        for step in 0..<20_000 {
            let slot = Self.slot(random.next(200))
            switch random.next(3) {
            case 0, 1:
                let old = table.updateValue(Self.stored(step), forKey: slot)
                #expect(old?.queries == model.updateValue(step, forKey: Key(slot: slot)))
            default:
                let old = table.removeValue(forKey: slot)
                #expect(old?.queries == model.removeValue(forKey: Key(slot: slot)))
            }
            #expect(table.count == model.count)
            if step % 500 == 0 { #expect(Self.contents(table) == model) }
            // Every key present is found where its bucket says, and every absent one is not.
            let probe = Self.slot(random.next(200))
            #expect(table[probe]?.queries == model[Key(slot: probe)])
            if let index = table.index(of: probe) { #expect(table[index].queries == model[Key(slot: probe)]) }
        }
        #expect(Self.contents(table) == model)
        #expect(model.count > 50)
    }

    @Test func removingAllWhereKeepsTheRest() {
        var table = AffinityTable.BindingTable()
        for number in 0..<1_000 { table.updateValue(Self.stored(number), forKey: Self.slot(number)) }
        table.removeAll { _, stored in stored.queries % 3 == 0 }
        #expect(table.count == 666)
        for number in 0..<1_000 { #expect((table[Self.slot(number)] != nil) == (number % 3 != 0)) }
    }

    /// A copy keeps what it had when the original changes, and an index found before stays
    /// valid in the one that changes.
    @Test func copiesAreValues() {
        var table = AffinityTable.BindingTable()
        for number in 0..<100 { table.updateValue(Self.stored(number), forKey: Self.slot(number)) }
        let copy = table
        let index = table.index(of: Self.slot(42))!
        table[index] = Self.stored(4_242)
        table.removeValue(forKey: Self.slot(7))
        #expect(table[Self.slot(42)]?.queries == 4_242)
        #expect(copy[Self.slot(42)]?.queries == 42)
        #expect(copy[Self.slot(7)]?.queries == 7)
        #expect(table[Self.slot(7)] == nil)
        #expect(copy.count == 100 && table.count == 99)
    }

    /// What a caller prefetches (`AffinityTable.withBindingPlace`) is the bucket a lookup of
    /// the prefix reads first, whichever service the binding is for.
    @Test func aPrefixsFirstBucketIsWhereTheHintSays() {
        var table = AffinityTable.BindingTable()
        let slot = Self.slot(1)
        table.updateValue(Self.stored(1), forKey: slot)
        let index = table.index(of: slot)!   // alone in the table: in its first bucket
        let base = UnsafeRawPointer(bitPattern: table.hint & ~63)!
        let place = AffinityTable.BindingTable.place(of: slot, hint: table.hint)
        #expect(place == base + index * MemoryLayout<AffinityTable.BindingTable.Bucket>.stride)
        var other = slot
        other.service = 7
        table.removeValue(forKey: slot)
        table.updateValue(Self.stored(2), forKey: other)
        #expect(table.index(of: other) == index, "the service does not move a key's first bucket")
        #expect(AffinityTable.BindingTable().hint == 0)
    }

    /// The hints a prefetch reads without the lock follow each shard's table as it grows and
    /// is rebuilt.
    @Test func theHintsFollowTheTables() {
        var shards = AffinityTable.Shards()
        func check() {
            for shard in 0..<AffinityTable.Shards.count {
                #expect(shards.hints.slots[shard].load(ordering: .relaxed) == shards.tables[shard].hint)
            }
        }
        for number in 0..<5_000 { shards[Self.slot(number)] = Self.stored(number) }
        check()
        shards.removeAll { _, stored in stored.queries % 4 != 0 }
        check()
        for number in 0..<1_250 { shards[Self.slot(number * 4)] = nil }
        check()
        #expect(shards.total == 0)
    }
}
