@testable import Scoring
import Testing

/// The arena the binding tables live in: blocks of their size, aligned to it, apart from each
/// other, kept intact while others come and go, and chunks given back once empty.
@Suite struct HugePageArenaTests {
    @Test func blocksArePowersOfTwoFromOneKibibyte() {
        let sizes = [1, 1_000, 1_024, 1_025, 4_096, 100_000, 1 << 20, (1 << 20) + 1, 2 << 20, 3 << 20]
        #expect(sizes.map(HugePageArena.blockSize) == [1_024, 1_024, 1_024, 2_048, 4_096, 131_072, 1 << 20, 2 << 20, 2 << 20, 3 << 20])
    }

    @Test func blocksStayApartAndIntactWhileOthersComeAndGo() {
        let arena = HugePageArena()
        var random = PrefixTrieTests.Random(state: 0xA7E4_A000_0000_0001)
        var live: [(pointer: UnsafeMutableRawPointer, bytes: Int, tag: UInt8)] = []
        func check() {
            for block in live {
                let size = HugePageArena.blockSize(for: block.bytes)
                #expect(Int(bitPattern: block.pointer) % min(size, HugePageArena.chunkSize) == 0, "aligned to its size")
                let bytes = block.pointer.assumingMemoryBound(to: UInt8.self)
                #expect(bytes[0] == block.tag && bytes[block.bytes - 1] == block.tag && bytes[block.bytes / 2] == block.tag)
            }
            let ranges = live.map { Int(bitPattern: $0.pointer)..<(Int(bitPattern: $0.pointer) + $0.bytes) }.sorted { $0.lowerBound < $1.lowerBound }
            #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound <= $1.lowerBound }, "no two blocks overlap")
        }
        for round in 0..<6 {
            for _ in 0..<200 {
                // Table sizes as the shards grow: 16 to 65 536 buckets of 64 bytes, a few larger.
                let bytes = random.below(40) == 0 ? (2 << 20) + random.below(1 << 20) : 64 << (4 + random.below(11))
                let tag = UInt8(truncatingIfNeeded: random.next())
                let pointer = arena.allocate(bytes: bytes)
                pointer.initializeMemory(as: UInt8.self, repeating: tag, count: bytes)
                live.append((pointer, bytes, tag))
            }
            check()
            // Half of them given back, at random.
            for _ in 0..<(live.count / 2) {
                let block = live.remove(at: random.below(live.count))
                arena.deallocate(block.pointer, bytes: block.bytes)
            }
            check()
            #expect(arena.chunkCount > 0, "round \(round)")
        }
        for block in live { arena.deallocate(block.pointer, bytes: block.bytes) }
        #expect(arena.chunkCount == 0, "every chunk given back once its blocks are")
    }

    /// A chunk serves one size; a block given back is given out again before a new chunk.
    @Test func aFreedBlockIsReused() {
        let arena = HugePageArena()
        let first = arena.allocate(bytes: 1 << 20)
        let second = arena.allocate(bytes: 1 << 20)
        #expect(arena.chunkCount == 1, "two 1 MiB blocks in one chunk")
        arena.deallocate(first, bytes: 1 << 20)
        #expect(arena.allocate(bytes: 1 << 20) == first)
        _ = arena.allocate(bytes: 1 << 10)
        #expect(arena.chunkCount == 2, "another size, another chunk")
        _ = second
    }
}
