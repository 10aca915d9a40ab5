import Scoring

/// Steering decisions recently made for exact clients, so that a client asking again within
/// the same state is answered from its site's template without deciding anew.
///
/// A decision is reused only while the state it was made from is still the published one
/// and for at most `lifetime` seconds, and only when deciding again would keep it: a
/// sticky client with a binding (the renewal is still recorded per query), or a
/// policy that is a pure function of the client and the snapshot. So a report, a reload or
/// a health-check result takes effect at once, and the passage of time (report ageing,
/// hold-down) within a second at most, as gdnsd coalesces its state updates to one a second.
///
/// One memo belongs to one `Responder`, so it needs no lock; it is a fixed, direct-mapped
/// array, so remembering and finding allocate nothing.
struct DecisionMemo {
    struct Slot {
        var generation: UInt64 = 0
        var service: Int32 = -1
        var prefixLength: Int16 = 0
        var isV6 = false
        var high: UInt64 = 0
        var low: UInt64 = 0
        var site: Int32 = 0
        var ttl: UInt32 = 0
        var scope: UInt8 = 0
        var sticky = false
        var expires: Double = 0
    }

    /// Seconds a decision is reused at most.
    static let lifetime = 1.0

    /// Allocated at the first decision remembered, so a responder that never answers a
    /// service name (or has capacity 0: a TCP connection's) costs nothing.
    private var slots: [Slot] = []
    private let mask: Int

    /// `capacity` is rounded down to a power of two (a UDP worker's 16 384 slots take about
    /// 1 MB); 0 remembers nothing.
    init(capacity: Int) {
        var size = 1
        while size * 2 <= capacity { size *= 2 }
        mask = capacity > 0 ? size - 1 : -1
    }

    private static func parts(_ address: IPAddress) -> (Bool, UInt64, UInt64) {
        switch address {
        case .v4(let value): return (false, 0, UInt64(value))
        case .v6(let high, let low): return (true, high, low)
        }
    }

    private func slot(service: Int, high: UInt64, low: UInt64, length: Int) -> Int {
        var hash = (high &* 0x9E37_79B9_7F4A_7C15) ^ low ^ UInt64(truncatingIfNeeded: service << 8 | length)
        hash ^= hash >> 31
        hash &*= 0xBF58_476D_1CE4_E5B9
        hash ^= hash >> 29
        return Int(truncatingIfNeeded: hash) & mask
    }

    /// The decision remembered for `client` of service `service` in state `generation`.
    func find(generation: UInt64, service: Int, client: Client, now: Double) -> Slot? {
        guard !slots.isEmpty else { return nil }
        let (isV6, high, low) = Self.parts(client.address)
        let slot = slots[slot(service: service, high: high, low: low, length: client.prefixLength)]
        guard slot.generation == generation, slot.service == Int32(truncatingIfNeeded: service), slot.isV6 == isV6,
              slot.high == high, slot.low == low, Int(slot.prefixLength) == client.prefixLength,
              now < slot.expires, now >= slot.expires - Self.lifetime else { return nil }
        return slot
    }

    mutating func remember(generation: UInt64, service: Int, client: Client, site: Int, ttl: UInt32, scope: Int,
                           sticky: Bool, now: Double) {
        guard mask >= 0 else { return }
        if slots.isEmpty { slots = Array(repeating: Slot(), count: mask + 1) }
        let (isV6, high, low) = Self.parts(client.address)
        slots[slot(service: service, high: high, low: low, length: client.prefixLength)] = Slot(
            generation: generation, service: Int32(truncatingIfNeeded: service), prefixLength: Int16(client.prefixLength),
            isV6: isV6, high: high, low: low, site: Int32(site), ttl: ttl, scope: UInt8(clamping: scope),
            sticky: sticky, expires: now + Self.lifetime)
    }
}
