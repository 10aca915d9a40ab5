extension AffinityTable {
    /// One shard's bindings: an open-addressed hash table (linear probing) whose buckets hold
    /// the key and the binding together, 64 bytes, one cache line each.
    ///
    /// A decision looks its client's binding up, and between two queries of one client the
    /// kernel's network stack has run through thousands of datagrams: the lookup is a wait for
    /// memory. Swift's `Dictionary` keeps its occupancy bitmap, keys and values in three
    /// regions, so a lookup waited three times (perf, every query a decision: `find` and the
    /// values' subscript, 4 % of the worker's samples); here the probe that finds the key has
    /// the binding in the same line. Removal shifts the entries after the hole back (no
    /// tombstones), so a table that churns keeps its probes short.
    ///
    /// Keys are client prefixes, which clients choose (ECS): the hash is keyed with a random
    /// seed per process, as `Hasher` is, so that nobody can pick a set of prefixes that share
    /// a probe sequence without seeing the process. A key's first bucket depends on its prefix
    /// alone, not its service, so that it can be fetched before the query's name is looked up
    /// (`AffinityTable.withBindingPlace`); a client's bindings for several services probe on
    /// from the same bucket.
    struct BindingTable {
        struct Bucket {
            var slot: Slot
            var stored: Stored
        }

        private final class Storage {
            let buckets: UnsafeMutablePointer<Bucket>
            let capacity: Int

            /// `capacity` empty buckets, or a copy of `source`'s.
            init(capacity: Int, copying source: UnsafePointer<Bucket>? = nil) {
                self.capacity = capacity
                // In huge pages shared with the other shards' tables (`HugePageArena`), aligned
                // to at least a line, so that no bucket straddles two.
                let raw = HugePageArena.shared.allocate(bytes: capacity * MemoryLayout<Bucket>.stride)
                buckets = raw.bindMemory(to: Bucket.self, capacity: capacity)
                if let source {
                    buckets.initialize(from: source, count: capacity)
                } else {
                    buckets.initialize(repeating: BindingTable.empty, count: capacity)
                }
            }

            deinit {
                buckets.deinitialize(count: capacity)
                HugePageArena.shared.deallocate(UnsafeMutableRawPointer(buckets), bytes: capacity * MemoryLayout<Bucket>.stride)
            }
        }

        /// A bucket no key is in: no service is ever numbered `UInt32.max`.
        private static let empty = Bucket(slot: Slot(prefix: IPPrefix(address: .v4(0), length: 0)!, service: .max),
                                          stored: Stored(boundAt: 0, lastSeen: 0, queries: 0, site: 0, previous: 0,
                                                         viaResolver: false))

        private static let vacant = UInt32.max

        private var storage: Storage?
        /// The storage's buckets and its capacity − 1, kept beside it so that a lookup reads
        /// them from the shard's own line rather than through the class reference.
        private var buckets: UnsafeMutablePointer<Bucket>?
        private var mask = -1
        private(set) var count = 0
        private static let seed = (UInt64.random(in: .min ... .max), UInt64.random(in: .min ... .max))

        init() {}

        /// The bucket that holds `slot`, if any.
        func index(of slot: Slot) -> Int? {
            guard let buckets else { return nil }
            var index = home(of: slot)
            while true {
                let key = buckets[index].slot
                if key.service == Self.vacant { return nil }
                if key == slot { return index }
                index = (index + 1) & mask
            }
        }

        /// The binding in bucket `index` (from `index(of:)`, no change since).
        subscript(index: Int) -> Stored {
            get { buckets![index].stored }
            set {
                makeUnique()
                buckets![index].stored = newValue
            }
        }

        subscript(slot: Slot) -> Stored? { index(of: slot).map { self[$0] } }

        /// Stores `stored` under `slot`; returns what was there.
        @discardableResult
        mutating func updateValue(_ stored: Stored, forKey slot: Slot) -> Stored? {
            if let index = index(of: slot) {
                let old = self[index]
                self[index] = stored
                return old
            }
            // At most three quarters full: probes stay a line or two.
            if (count + 1) * 4 > (mask + 1) * 3 { resize(to: max(16, (mask + 1) * 2)) } else { makeUnique() }
            insertNew(Bucket(slot: slot, stored: stored))
            return nil
        }

        /// Removes `slot`'s binding; returns it.
        @discardableResult
        mutating func removeValue(forKey slot: Slot) -> Stored? {
            guard var hole = index(of: slot) else { return nil }
            makeUnique()
            let buckets = buckets!
            let old = buckets[hole].stored
            // Backward shift (Knuth, TAOCP 6.4 algorithm R): each entry after the hole up to the
            // next empty bucket moves into it unless its home lies cyclically in (hole, index].
            var index = hole
            while true {
                index = (index + 1) & mask
                let bucket = buckets[index]
                if bucket.slot.service == Self.vacant { break }
                let home = home(of: bucket.slot)
                let stays = hole <= index ? (hole < home && home <= index) : (hole < home || home <= index)
                if stays { continue }
                buckets[hole] = bucket
                hole = index
            }
            buckets[hole] = Self.empty
            count -= 1
            return old
        }

        /// Keeps only the bindings `drop` refuses, in a table sized for them.
        mutating func removeAll(where drop: (Slot, Stored) -> Bool) {
            var kept = BindingTable()
            forEach { slot, stored in if !drop(slot, stored) { kept.updateValue(stored, forKey: slot) } }
            self = kept
        }

        func forEach(_ body: (Slot, Stored) -> Void) {
            guard let buckets else { return }
            for index in 0...mask where buckets[index].slot.service != Self.vacant {
                body(buckets[index].slot, buckets[index].stored)
            }
        }

        /// The first bucket probed for `slot`.
        @inline(__always)
        private func home(of slot: Slot) -> Int { Self.hash(slot) & mask }

        /// A keyed multiply-fold (the 128-bit product's halves xored, as wyhash mixes) of the
        /// key's prefix (its words, length and family; not its service); the caller keeps the
        /// bits of its table's size.
        @inline(__always)
        private static func hash(_ slot: Slot) -> Int {
            let rest = UInt64(slot.length) << 8 | (slot.isV6 ? 1 : 0)
            let first = (slot.high ^ seed.0).multipliedFullWidth(by: slot.low ^ seed.1)
            let second = (first.high ^ first.low ^ rest).multipliedFullWidth(by: seed.1 | 1)
            return Int(truncatingIfNeeded: second.high ^ second.low)
        }

        /// Where the buckets are and how many, in one word (`place(of:hint:)`): the buckets are
        /// aligned to 64 bytes, so the low six bits hold the log2 of their count. 0: none.
        var hint: Int {
            guard let buckets else { return 0 }
            return Int(bitPattern: buckets) | (mask + 1).trailingZeroBitCount
        }

        /// The first bucket of `slot`'s probe (whatever its service) in the table `hint` was
        /// read from, for a prefetch: the table may have grown or moved since, and a prefetch
        /// of a stale place is harmless (it never faults) and merely useless.
        static func place(of slot: Slot, hint: Int) -> UnsafeRawPointer? {
            guard let base = UnsafeRawPointer(bitPattern: hint & ~63) else { return nil }
            let mask = 1 << (hint & 63) - 1
            return base + (hash(slot) & mask) * MemoryLayout<Bucket>.stride
        }

        /// Puts `bucket`, whose key is not in the table, in the first free bucket of its probe.
        private mutating func insertNew(_ bucket: Bucket) {
            let buckets = buckets!
            var index = home(of: bucket.slot)
            while buckets[index].slot.service != Self.vacant { index = (index + 1) & mask }
            buckets[index] = bucket
            count += 1
        }

        private mutating func resize(to capacity: Int) {
            let old = (buckets, mask)
            let keep = storage
            storage = Storage(capacity: capacity)
            (buckets, mask, count) = (storage!.buckets, capacity - 1, 0)
            if let from = old.0 {
                for index in 0...old.1 where from[index].slot.service != Self.vacant { insertNew(from[index]) }
            }
            withExtendedLifetime(keep) {}
        }

        /// A copy of the table shares its storage until either changes (value semantics); the
        /// one that changes first takes a copy of the buckets as they are, so that an index
        /// found before stays valid.
        private mutating func makeUnique() {
            // Asked before anything else holds the storage, which would make it shared.
            guard storage != nil, !isKnownUniquelyReferenced(&storage), let shared = storage else { return }
            storage = Storage(capacity: shared.capacity, copying: shared.buckets)
            buckets = storage!.buckets
        }
    }
}
