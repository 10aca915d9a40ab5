import CUDPBatch
import Scoring

/// A fixed-size array of plain values whose storage is in transparent huge pages
/// (`HugePageArena`), with value semantics (copy on write).
///
/// For a table every query reads at a random place, as the decision memo (2 to 8 MiB per UDP
/// worker): between two queries of one client the kernel's network stack has run through
/// thousands of datagrams, so the slot is rarely in the cache, and with 4 KiB pages neither is
/// its page's translation. In 2 MiB pages the table is one TLB entry, and a lookup is one miss
/// (the slot) instead of a page walk and the slot: in the bench's ECS mix (`perf` on one UDP
/// worker at 50 000 queries/s) the lookup went from 3.1 % of the server's CPU to 2.1 %.
struct HugePageArray<Element: BitwiseCopyable> {
    private final class Storage {
        let base: UnsafeMutablePointer<Element>
        let count: Int

        /// From `HugePageArena`: 2 MiB or more, chunks of its own, aligned to 2 MiB, so that
        /// every page of it can be a huge one; less, a block of a chunk shared with others.
        init(count: Int, initialize: (UnsafeMutablePointer<Element>) -> Void) {
            base = HugePageArena.shared.allocate(bytes: Self.bytes(count)).bindMemory(to: Element.self, capacity: count)
            self.count = count
            initialize(base)
        }

        deinit { HugePageArena.shared.deallocate(UnsafeMutableRawPointer(base), bytes: Self.bytes(count)) }

        private static func bytes(_ count: Int) -> Int { max(count * MemoryLayout<Element>.stride, 1) }
    }

    private var storage: Storage? {
        didSet { (base, count) = (storage?.base, storage?.count ?? 0) }
    }
    /// The storage's, kept beside it so that reads and prefetches go straight to memory: one
    /// through the class reference retained and released it around each of them.
    private var base: UnsafeMutablePointer<Element>?
    private(set) var count = 0

    /// Empty: no storage.
    init() {}

    init(repeating value: Element, count: Int) {
        storage = count > 0 ? Storage(count: count) { $0.initialize(repeating: value, count: count) } : nil
        (base, self.count) = (storage?.base, storage?.count ?? 0)   // `didSet` is not called in an initialiser
    }

    var isEmpty: Bool { count == 0 }
    var indices: Range<Int> { 0..<count }

    /// Starts bringing element `index` into the cache (a hint; nothing if out of range), so a
    /// read soon after does not wait for memory.
    @inline(__always)
    func prefetch(_ index: Int) {
        guard let base, index >= 0, index < count else { return }
        udp_batch_prefetch(base + index)
    }

    /// Changes element `index` in place with one uniqueness check (the subscript makes one
    /// per access: a runtime call each, for every field a caller changes).
    @inline(__always)
    mutating func modify<Result>(_ index: Int, _ body: (inout Element) -> Result) -> Result {
        precondition(index >= 0 && index < count, "index out of range")
        if !isKnownUniquelyReferenced(&storage) {
            let old = storage!
            storage = Storage(count: old.count) { $0.initialize(from: old.base, count: old.count) }
        }
        return body(&(base! + index).pointee)
    }

    subscript(index: Int) -> Element {
        unsafeAddress {
            precondition(index >= 0 && index < count, "index out of range")
            return UnsafePointer(base! + index)
        }
        mutating unsafeMutableAddress {
            modify(index) { _ in }
            return base! + index
        }
    }
}
