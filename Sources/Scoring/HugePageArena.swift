#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Blocks of a power of two of bytes, from 1 KiB, carved out of 2 MiB chunks that are asked of
/// the kernel in transparent huge pages (madvise(2) MADV_HUGEPAGE, where THP is set to
/// "madvise", Debian's default); a block of 2 MiB or more is a chunk of its own.
///
/// For the tables a query reads at a random place: the decision memo (`HugePageArray`, a chunk
/// of its own) and the binding tables (`AffinityTable.BindingTable`), 64 shards of which a
/// decision reads one bucket. Between two queries of one client that bucket is in no cache and
/// its page in no TLB: with 65 536 bindings each shard's table is 128 KiB, which malloc mapped
/// on its own in 4 KiB pages (2 048 pages in all), and the prefetch of a client's bucket
/// waited for the page walk (1.0–2.4 % of the server's samples with every query a decision).
/// Packed here, 16 such tables share a 2 MiB page: the prefetch 0.7–0.8 %, and the server's
/// user time per answer 2.34 → 2.18 µs (means of four interleaved runs at 50 000/s).
///
/// A chunk serves one block size; a chunk whose blocks are all free is unmapped, so the
/// chunks of the sizes the tables have grown out of do not stay. Thread-safe (a lock around
/// the bookkeeping; blocks come and go only as tables grow, shrink or are copied).
public final class HugePageArena: Sendable {
    public static let shared = HugePageArena()

    static let chunkSize = 2 << 20
    static let smallestBlock = 1 << 10

    private struct Chunk {
        /// The block size's log2.
        var shift: Int
        /// Free blocks, by index in the chunk.
        var free: [Int]
        var blocks: Int { HugePageArena.chunkSize >> shift }
    }

    private struct State {
        /// By the chunk's address.
        var chunks: [Int: Chunk] = [:]
        /// Per block size's log2, the chunks with a free block.
        var withRoom: [Int: Set<Int>] = [:]
    }

    private let state = Mutex(State())

    /// Chunks held, of every block size (for tests).
    var chunkCount: Int { state.withLock { $0.chunks.count } }

    /// A block of at least `bytes`: below `chunkSize`, of the next power of two (at least
    /// `smallestBlock`) in a chunk shared with blocks of that size, aligned to its size; from
    /// `chunkSize` on, whole chunks of its own, aligned to 2 MiB.
    public func allocate(bytes: Int) -> UnsafeMutableRawPointer {
        let size = Self.blockSize(for: bytes)
        guard size < Self.chunkSize else { return Self.mapChunk(bytes: size) }
        let shift = size.trailingZeroBitCount
        return state.withLock { state in
            let address: Int
            if let base = state.withRoom[shift]?.first {
                let index = state.chunks[base]!.free.removeLast()
                if state.chunks[base]!.free.isEmpty { state.withRoom[shift]!.remove(base) }
                address = base + index << shift
            } else {
                let base = Int(bitPattern: Self.mapChunk(bytes: Self.chunkSize))
                var chunk = Chunk(shift: shift, free: [])
                chunk.free = Array((1..<chunk.blocks).reversed())
                state.chunks[base] = chunk
                if !chunk.free.isEmpty { state.withRoom[shift, default: []].insert(base) }
                address = base
            }
            return UnsafeMutableRawPointer(bitPattern: address)!
        }
    }

    /// Gives back a block `allocate(bytes:)` gave, with the same `bytes`.
    public func deallocate(_ pointer: UnsafeMutableRawPointer, bytes: Int) {
        let size = Self.blockSize(for: bytes)
        guard size < Self.chunkSize else { return Self.unmapChunk(pointer, bytes: size) }
        let address = Int(bitPattern: pointer)
        let base = address & ~(Self.chunkSize - 1)
        let shift = size.trailingZeroBitCount
        let emptied: UnsafeMutableRawPointer? = state.withLock { state in
            guard var chunk = state.chunks[base], chunk.shift == shift else {
                preconditionFailure("a block given back that was not given out, or with another size")
            }
            chunk.free.append((address - base) >> shift)
            guard chunk.free.count < chunk.blocks else {
                state.chunks[base] = nil
                state.withRoom[shift]?.remove(base)
                return UnsafeMutableRawPointer(bitPattern: base)
            }
            state.chunks[base] = chunk
            state.withRoom[shift, default: []].insert(base)
            return nil
        }
        if let emptied { Self.unmapChunk(emptied, bytes: Self.chunkSize) }
    }

    /// The block that holds `bytes`: the next power of two, at least `smallestBlock`.
    static func blockSize(for bytes: Int) -> Int {
        let wanted = max(bytes, smallestBlock)
        return wanted <= chunkSize ? 1 << (Int.bitWidth - (wanted - 1).leadingZeroBitCount) : wanted
    }

    /// `bytes` rounded up to whole 2 MiB, aligned to 2 MiB, in huge pages when the kernel has
    /// them: asked before the first touch, so that the faults that populate it take huge pages.
    /// Mapped here rather than from malloc, so that a chunk given back is the kernel's again
    /// at once: from malloc's heap (where blocks this large go once its threshold has risen,
    /// as a loaded latency file's arrays make it), it stayed in the process (the scale case
    /// ended its load runs at 199 MiB instead of 181).
    private static func mapChunk(bytes: Int) -> UnsafeMutableRawPointer {
        let size = mappedSize(bytes)
        // Twice as much as needed, trimmed to the aligned part: mmap aligns to a page only.
        guard let mapped = mmap(nil, size + chunkSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              mapped != MAP_FAILED else { fatalError("out of memory (\(size) bytes)") }
        let start = (Int(bitPattern: mapped) + chunkSize - 1) & ~(chunkSize - 1)
        let head = start - Int(bitPattern: mapped)
        if head > 0 { munmap(mapped, head) }
        if chunkSize - head > 0 { munmap(UnsafeMutableRawPointer(bitPattern: start + size), chunkSize - head) }
        let raw = UnsafeMutableRawPointer(bitPattern: start)!
        #if canImport(Glibc)
        _ = madvise(raw, size, MADV_HUGEPAGE)
        #endif
        return raw
    }

    private static func unmapChunk(_ pointer: UnsafeMutableRawPointer, bytes: Int) {
        munmap(pointer, mappedSize(bytes))
    }

    private static func mappedSize(_ bytes: Int) -> Int { (max(bytes, 1) + chunkSize - 1) / chunkSize * chunkSize }
}
