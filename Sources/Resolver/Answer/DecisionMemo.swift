import Scoring

/// Steering decisions recently made for exact clients, so that a client asking again within
/// a second is answered from its site's template without deciding anew.
///
/// A decision is reused only while no site's health changed since (`ServingState.decisionEpoch`:
/// a reload or a site going up or down decides anew at once) and for at most `lifetime`
/// seconds, and only when deciding again would keep it: a sticky client with a binding (the
/// renewal is still recorded per query), or a policy that is a pure function of the client and
/// the snapshot. So new load figures, report ageing and hold-down expiry take effect within a
/// second at most, as gdnsd coalesces its state updates to one a second.
///
/// One memo belongs to one `Responder`, so it needs no lock; it is a fixed array of sets of
/// `ways` slots, so remembering and finding allocate nothing. Sets rather than one slot per
/// hash: with one slot, the clients that share it with another (about a fifth of them at a
/// quarter full) would evict each other on every query and be decided anew each time.
/// A UDP worker's memo is sized for the clients of a second (`UDPWorkers.memoSlots`: 8 MiB,
/// less with many workers) and allocated before the worker answers: one of 2 MiB held fewer
/// of the bench's 65 536 /24s than ask within a second, and most of them were decided anew
/// every time; one that grew under load stalled its worker for milliseconds while it did.
///
/// A reuse of a sticky decision renews the client's binding; the memo counts those renewals
/// in the slot, so a reuse takes no lock and hashes nothing beyond the slot. They reach the
/// binding with the client's next decision, which renews it with them under the lock it takes
/// anyway (`takeRenewal`); a client that has stopped asking has its slot's renewals handed
/// over in a batch once its decision has expired (`drainRenewals`: a sixteenth of the slots
/// every sixteenth of a second), and so has a slot taken for another client. A binding's
/// last-seen time and query count therefore lag by a second (an active client's) to two (a
/// client gone quiet) at most: the binding's hold is minutes, and the once-a-second
/// directed-load estimate reads query rates over the binding's life.
struct DecisionMemo {
    /// 64 bytes, the key first: a lookup compares the first 24 bytes of each way.
    struct Slot {
        var high: UInt64 = 0
        var low: UInt64 = 0
        var service: Int32 = -1
        var prefixLength: Int16 = 0
        var isV6 = false
        var sticky = false
        var epoch: UInt64 = 0
        var expires: Double = 0
        var site: Int32 = 0
        var ttl: UInt32 = 0
        /// Reuses of a sticky decision not yet handed to the affinity table, the last at `seen`.
        var seen: Double = 0
        var pending: Int32 = 0
        var scope: UInt8 = 0
    }

    /// Seconds a decision is reused at most.
    static let lifetime = 1.0
    /// Each decision is reused for `lifetime` less a random part of up to this share of it.
    /// Otherwise clients first decided together (a server start, a reload, a health change)
    /// would expire together every second ever after, and their decisions would come in one
    /// burst that holds up every other query behind it.
    static let jitter = 0.25
    /// The generator of that random part (xorshift64; its quality hardly matters here).
    private var random: UInt64 = 0x2545_F491_4F6C_DD1D
    /// Slots per set: two cache lines, both fetched ahead (`prefetch`), as a lookup for a
    /// client that is not in the set reads every way (most lookups, with many clients).
    static let ways = 2

    /// Allocated at the first decision remembered, so a responder that never answers a
    /// service name (or has capacity 0: a TCP connection's) costs nothing.
    private var slots = HugePageArray<Slot>()
    /// Sets − 1 (sets are a power of two); −1 when the memo remembers nothing.
    private let mask: Int

    /// `capacity` slots, rounded down to a power of two of at least `ways` (32 768 slots take
    /// 2 MiB, one huge page: `HugePageArray`); 0 remembers nothing.
    init(capacity: Int) {
        var size = Self.ways
        while size * 2 <= capacity { size *= 2 }
        mask = capacity > 0 ? size / Self.ways - 1 : -1
    }

    /// Allocates the slots now rather than at the first decision remembered (a UDP worker,
    /// before it answers: writing megabytes of fresh memory takes milliseconds).
    mutating func allocate() {
        if slots.isEmpty && mask >= 0 { slots = HugePageArray(repeating: Slot(), count: (mask + 1) * Self.ways) }
    }

    /// The first slot of the client's set: of the client alone, not the service, so that
    /// `prefetch` can find it before the query's name is looked up. A client of several
    /// services keeps their decisions in one set.
    private func set(high: UInt64, low: UInt64, length: Int) -> Int {
        var hash = (high &* 0x9E37_79B9_7F4A_7C15) ^ low ^ UInt64(truncatingIfNeeded: length)
        hash ^= hash >> 31
        hash &*= 0xBF58_476D_1CE4_E5B9
        hash ^= hash >> 29
        return (Int(truncatingIfNeeded: hash) & mask) * Self.ways
    }

    private static func holds(_ slot: Slot, service: Int, isV6: Bool, high: UInt64, low: UInt64, length: Int) -> Bool {
        slot.service == Int32(truncatingIfNeeded: service) && slot.isV6 == isV6 && slot.high == high && slot.low == low
            && Int(slot.prefixLength) == length
    }

    /// Starts bringing `client`'s set (two slots, a cache line each) into the cache. Between
    /// two queries of one client the network stack has run through thousands of datagrams,
    /// so the set is rarely cached and `find` waited on memory (four fifths of its time, in
    /// the bench's ECS mix); asked for a batch ahead (`Responder.prepare`), the waits overlap.
    /// Sets were four slots once, of which only the first two were fetched (a batch's worth
    /// of four lines each filled the core's few line-fill buffers, and the prefetches
    /// themselves then waited): a client not in its set, which is most of them when there are
    /// many, then waited for the other two lines all the same.
    @inline(__always)
    func prefetch(client: Client) {
        guard mask >= 0 else { return }
        let (_, high, low) = client.address.words
        let first = set(high: high, low: low, length: client.prefixLength)
        for way in 0..<Self.ways { slots.prefetch(first + way) }
    }

    /// Where the decision remembered for `client` of service `service` in decision epoch
    /// `epoch` is (for `reuse(at:now:)`), and that decision.
    func find(epoch: UInt64, service: Int, client: Client, now: Double) -> (index: Int, slot: Slot)? {
        guard let index = slot(of: client, service: service) else { return nil }
        let slot = slots[index]
        guard slot.epoch == epoch, now < slot.expires, now >= slot.expires - Self.lifetime else { return nil }
        return (index, slot)
    }

    /// The slot that holds `client`'s decision for `service`, whatever its epoch and age.
    @inline(__always)
    private func slot(of client: Client, service: Int) -> Int? {
        guard !slots.isEmpty else { return nil }
        let (isV6, high, low) = client.address.words
        let first = set(high: high, low: low, length: client.prefixLength)
        return (first..<(first + Self.ways)).first {
            Self.holds(slots[$0], service: service, isV6: isV6, high: high, low: low, length: client.prefixLength)
        }
    }

    /// Takes the renewals counted for `client` of `service` in its own slot, expired or not:
    /// for a decision about to be made for it, which renews the binding with them under the
    /// lock it takes anyway (`AffinityTable.decide(renewal:)`), rather than handing them
    /// over on their own, a lock and a lookup more, when the slot is taken for the decision.
    mutating func takeRenewal(service: Int, client: Client) -> Renewal? {
        guard let index = slot(of: client, service: service), let renewal = Self.renewal(slots[index]) else { return nil }
        slots[index].pending = 0
        return renewal
    }

    /// Records that the decision at `index` answered a query at `now`: a renewal of the
    /// binding, when sticky, to hand over later.
    mutating func reuse(at index: Int, now: Double) {
        guard slots[index].sticky else { return }
        slots.modify(index) { slot in
            slot.pending &+= 1
            slot.seen = max(slot.seen, now)
        }
    }

    /// Remembers a decision in the client's own slot if it has one, else in the set's slot
    /// that expires first (an expired one, or the oldest). Returns the renewals the slot
    /// held (of whichever client it was), which the caller hands over.
    mutating func remember(epoch: UInt64, service: Int, client: Client, site: Int, ttl: UInt32, scope: Int,
                           sticky: Bool, now: Double) -> Renewal? {
        guard mask >= 0 else { return nil }
        allocate()
        let (isV6, high, low) = client.address.words
        let first = set(high: high, low: low, length: client.prefixLength)
        var chosen = first
        for index in first..<(first + Self.ways) {
            if Self.holds(slots[index], service: service, isV6: isV6, high: high, low: low, length: client.prefixLength) {
                chosen = index
                break
            }
            if slots[index].expires < slots[chosen].expires { chosen = index }
        }
        let held = Self.renewal(slots[chosen])
        random ^= random << 13
        random ^= random >> 7
        random ^= random << 17
        let spread = Double(random >> 11) / Double(1 << 53) * Self.jitter * Self.lifetime
        slots[chosen] = Slot(
            high: high, low: low, service: Int32(truncatingIfNeeded: service), prefixLength: Int16(client.prefixLength),
            isV6: isV6, sticky: sticky, epoch: epoch, expires: now + Self.lifetime - spread, site: Int32(site), ttl: ttl,
            scope: UInt8(clamping: scope))
        return held
    }

    /// Renewals of one client's binding not yet handed over.
    struct Renewal: Equatable {
        var service: Int
        var client: Client
        var lastSeen: Double
        var queries: Int
    }

    private static func renewal(_ slot: Slot) -> Renewal? {
        guard slot.pending > 0 else { return nil }
        let address: IPAddress = slot.isV6 ? .v6(slot.high, slot.low) : .v4(UInt32(truncatingIfNeeded: slot.low))
        return Renewal(service: Int(slot.service), client: Client(address: address, prefixLength: Int(slot.prefixLength)),
                       lastSeen: slot.seen, queries: Int(slot.pending))
    }

    /// The number of slots (0 until the first decision is remembered).
    var slotCount: Int { slots.count }

    /// Hands the renewals not yet handed over in slots `range` (clamped to the slots) to
    /// `body`, and forgets them; with `expiredBy`, only those of decisions expired by then
    /// (the others' go with their client's next decision, `takeRenewal`, within a second).
    mutating func drainRenewals(in range: Range<Int>, expiredBy now: Double? = nil, _ body: (Renewal) -> Void) {
        for index in range.clamped(to: slots.indices) where slots[index].pending > 0 {
            if let now, now < slots[index].expires { continue }
            if let renewal = Self.renewal(slots[index]) { body(renewal) }
            slots[index].pending = 0
        }
    }
}
