@testable import Scoring
import Testing

/// The path-compressed trie against the definition it replaces, a trie with a node per bit:
/// for random prefixes (clustered, so that they nest and part at every depth) and random
/// clients, the same prefixes visited in the same order and the same scope.
@Suite struct PrefixTrieTests {
    /// xorshift64, seeded: the same cases every run.
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
        mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
    }

    /// What a trie with a node per bit gives: every stored prefix of the client, shortest
    /// first, and the scope — the depth the walk reaches, plus one where a longer prefix
    /// branches off there.
    static func reference<Bits: FixedWidthInteger & UnsignedInteger & Sendable>(
        _ prefixes: [(bits: Bits, length: Int, entry: Int32)], client: Bits, limit: Int
    ) -> (visited: [Int32], scope: Int) {
        typealias Trie = PrefixTrie<Bits>
        func matches(_ bits: Bits, _ depth: Int) -> Bool { Trie.masked(bits, depth) == Trie.masked(client, depth) }
        let visited = prefixes.filter { $0.length <= limit && matches($0.bits, $0.length) }
            .sorted { $0.length < $1.length }.map(\.entry)
        // A node at depth d exists on the client's path when a stored prefix of length ≥ d
        // agrees with the client on d bits.
        let reached = (0...limit).last { depth in depth == 0 || prefixes.contains { $0.length >= depth && matches($0.bits, depth) } }!
        if reached == limit { return (visited, limit) }
        let branches = prefixes.contains { $0.length > reached && matches($0.bits, reached) }
        return (visited, branches ? reached + 1 : reached)
    }

    /// `lengths` draws a prefix length; `indexed`: build the first-level index
    /// (`PrefixTrie.buildIndex`) part-way through each round, so that walks start from it and
    /// the rest of the round's prefixes are added to an indexed trie.
    func check<Bits: FixedWidthInteger & UnsignedInteger & Sendable>(_: Bits.Type, seed: UInt64, indexed: Bool = false,
                                                                       lengths: ((inout Random) -> Int)? = nil) -> PrefixTrie<Bits> {
        typealias Trie = PrefixTrie<Bits>
        var random = Random(state: seed)
        let width = Bits.bitWidth
        func randomBits() -> Bits {
            // A few common leading patterns, then random: prefixes nest and part often.
            var bits = Bits(truncatingIfNeeded: random.next()) << (width - 64) | Bits(truncatingIfNeeded: random.next())
            bits = Trie.masked(Bits(truncatingIfNeeded: random.below(4)) << (width - 2), 2) | (bits >> 2)
            return bits
        }
        var trie = Trie()
        for round in 0..<20 {
            trie = Trie()
            var stored: [(bits: Bits, length: Int, entry: Int32)] = []
            let count = 5 + round * 10
            let indexAt = indexed ? random.below(count + 1) : -1
            for added in 0..<count {
                if added == indexAt { trie.buildIndex() }
                let length = lengths?(&random) ?? random.below(width + 1)
                let bits = Trie.masked(randomBits(), length)
                let node = trie.node(for: bits, length: length)
                if trie.nodes[node].entry < 0 {
                    trie.setEntry(Int32(stored.count), at: node)
                    stored.append((bits, length, Int32(stored.count)))
                }
                #expect(trie.entry(of: bits, length: length) == trie.nodes[node].entry)
            }
            if indexed && indexAt == count { trie.buildIndex() }
            if indexed {
                // Kept up as prefixes were added: as built from the finished trie.
                var rebuilt = trie
                rebuilt.buildIndex()
                let differing = trie.starts.indices.first { trie.starts[$0] != rebuilt.starts[$0] }
                #expect(differing == nil, "round \(round): slot \(differing ?? 0) of the index kept up differs from one built anew")
            }
            #expect(trie.nodes.count <= 2 * stored.count + 1, "a node per prefix and per fork at most")
            for (bits, length, entry) in stored { #expect(trie.entry(of: bits, length: length) == entry) }
            for _ in 0..<200 {
                // Clients near stored prefixes, and anywhere.
                let near = stored[random.below(stored.count)].bits ^ (Bits(1) << random.below(width))
                let client = random.below(3) == 0 ? randomBits() : near
                let limit = random.below(width + 1)
                let masked = Trie.masked(client, limit)
                var visited: [Int32] = []
                let scope = trie.walk(masked, limit: limit) { entry, depth in
                    visited.append(entry)
                    #expect(stored[Int(entry)].length == depth)
                }
                let expected = Self.reference(stored, client: masked, limit: limit)
                #expect(visited == expected.visited && scope == expected.scope,
                        "round \(round), client \(String(masked, radix: 2)) /\(limit)")
            }
        }
        return trie
    }

    @Test func ipv4MatchesTheBitByBitTrie() { _ = check(UInt32.self, seed: 0x1234_5678_9ABC_DEF1) }
    @Test func ipv6MatchesTheBitByBitTrie() { _ = check(UInt128.self, seed: 0x0FED_CBA9_8765_4321) }

    /// With the first-level index, built part-way and kept up as prefixes are added: the same
    /// walks, for prefixes of every length and for a latency file's kind (mostly /24s, a few
    /// short prefixes whose entries send walks back to the root).
    @Test func ipv4WithTheIndexMatchesTheBitByBitTrie() {
        _ = check(UInt32.self, seed: 0x5EED_0000_1234_ABCD, indexed: true)
        let trie = check(UInt32.self, seed: 0x0BAD_CAFE_0000_0001, indexed: true) { random in
            random.below(20) == 0 ? 8 + random.below(9) : (random.below(2) == 0 ? 24 : 17 + random.below(16))
        }
        #expect(trie.starts.count == 1 << 16)
        let starts = trie.starts.map(PrefixTrie<UInt32>.Start.init)
        #expect(starts.contains { if case .below = $0 { true } else { false } }, "walks start below a node they do not read")
        #expect(starts.contains(.root), "or at the root, below a short prefix's entry")
    }

    /// Where a slot's walks start, on a trie small enough to know by hand.
    @Test func slotsStartBelowTheForkAboveThem() {
        var trie = PrefixTrie<UInt32>()
        let a = trie.node(for: 0x0A01_0200, length: 24)   // 10.1.2.0/24
        trie.setEntry(0, at: a)
        let b = trie.node(for: 0x0A01_0300, length: 24)   // 10.1.3.0/24: a fork at /23 above both
        trie.setEntry(1, at: b)
        let c = trie.node(for: 0xC000_0000, length: 24)   // 192.0.0.0/24: a fork at the root's side
        trie.setEntry(2, at: c)
        trie.buildIndex()
        let fork = trie.node(for: 0x0A01_0200, length: 23)
        // 10.1/16: the slot's bits lead to the /23 fork, which they do not decide the way from.
        #expect(trie.start(ofSlot: 0x0A01) == .below(Int32(fork)))
        // 10.2/16: the same child of the root, which the slot leaves at bit 14: compared, not read.
        #expect(trie.start(ofSlot: 0x0A02) == .below(Int32(fork)))
        // 128/16: the root's right child, the fork of 192.0.0.0/24 alone.
        #expect(trie.start(ofSlot: 0x8000) == .below(Int32(c)))
        // Two /24s that part at bit 16 (10.5.1.0 and 10.5.129.0): the slot's walks read their
        // fork, as the next bit chooses the way from it.
        trie.setEntry(4, at: trie.node(for: 0x0A05_0100, length: 24))
        trie.setEntry(5, at: trie.node(for: 0x0A05_8100, length: 24))
        #expect(trie.start(ofSlot: 0x0A05) == .at(Int32(trie.node(for: 0x0A05_0000, length: 16))))
        var found: [Int32] = []
        #expect(trie.walk(0x0A05_8100, limit: 24) { entry, _ in found.append(entry) } == 24)
        #expect(found == [5])
        // An entry at 10.0.0.0/8 sends 10/8's walks to the root, and no other slot's.
        trie.setEntry(3, at: trie.node(for: 0x0A00_0000, length: 8))
        #expect((0x0A00...0x0AFF).allSatisfy { trie.start(ofSlot: $0) == .root && trie.starts[$0] == -1 })
        #expect(trie.start(ofSlot: 0x8000) == .below(Int32(c)))
        var walked: [Int32] = []
        #expect(trie.walk(0x0A01_0203, limit: 24) { entry, _ in walked.append(entry) } == 24)
        #expect(walked == [3, 0])
    }

    /// What a caller prefetches (`withFirstRead`) is what the walk reads first: the address's
    /// slot of the index; nothing when the walk reads none (too short a limit, no index).
    @Test func theFirstReadIsTheAddressSlot() {
        var trie = PrefixTrie<UInt32>()
        trie.setEntry(0, at: trie.node(for: 0x0A01_0200, length: 24))
        var places: [UnsafeRawPointer] = []
        trie.withFirstRead(0x0A01_0203, limit: 24) { places.append($0) }
        #expect(places.isEmpty, "no index yet")
        trie.buildIndex()
        trie.withFirstRead(0x0A01_0203, limit: 15) { places.append($0) }
        #expect(places.isEmpty, "a walk that stops short of the index reads none of it")
        trie.withFirstRead(0x0A01_0203, limit: 24) { places.append($0) }
        trie.starts.withUnsafeBufferPointer { starts in
            #expect(places == [UnsafeRawPointer(starts.baseAddress! + 0x0A01)])
        }
    }

    @Test func ipv6HasNoIndex() {
        var trie = PrefixTrie<UInt128>()
        trie.buildIndex()
        #expect(trie.starts.isEmpty)
    }
}
