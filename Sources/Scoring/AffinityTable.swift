import Synchronization

/// The bindings of client prefixes to sites, per service, bounded in size.
///
/// Bindings expire `hold` seconds after the last query that used them (the caller passes
/// `now`; nothing here reads a clock). When the table is over its capacity, the least
/// recently used tenth is evicted in one pass, so eviction costs O(n) once per n/10 inserts.
public final class AffinityTable: Sendable {
    public struct Key: Hashable, Sendable {
        public var service: String
        public var prefix: IPPrefix
        public init(service: String, prefix: IPPrefix) {
            self.service = service
            self.prefix = prefix
        }
    }

    /// Counts of what happened to bindings, for metrics.
    public struct Counts: Sendable, Equatable {
        public var created = 0
        public var kept = 0
        public var expired = 0
        public var evicted = 0
        public var moved: [MoveReason: Int] = [:]
        public var movedTotal: Int { moved.values.reduce(0, +) }
    }

    /// A key as stored: the prefix's bits, length and family, and the service as a number
    /// (`Names`). 24 bytes where a `Key` is 48 (a String, and an `IPPrefix` whose length is
    /// an Int): at a hundred thousand bindings in tables about half full, the difference is
    /// several megabytes. `BindingTable` hashes it its own way.
    struct Slot: Equatable {
        var high: UInt64
        var low: UInt64
        var service: UInt32
        var length: UInt8
        var isV6: Bool

        init(prefix: IPPrefix, service: UInt32) {
            (isV6, high, low) = prefix.address.words
            length = UInt8(prefix.length)
            self.service = service
        }

        var prefix: IPPrefix { IPPrefix(address: IPAddress(isV6: isV6, high: high, low: low), length: Int(length))! }
    }

    /// A binding as stored: its sites as numbers (`Names`), 40 bytes where a `Binding` is 64.
    struct Stored {
        var boundAt: Double
        var lastSeen: Double
        var queries: Int
        var site: UInt32
        /// `Stored.none` when the binding was not moved from another site.
        var previous: UInt32
        var viaResolver: Bool

        static let none = UInt32.max
    }

    /// Service names and site IDs as small numbers, for `Slot` and `Stored`. Only ever added
    /// to, so a number means the same name for the table's life, across reloads that reorder
    /// or remove sites; they number what the configurations have named, not the clients.
    struct Names {
        private var numbers: [String: UInt32] = [:]
        private(set) var names: [String] = []

        /// The number of `name`, given one if it has none yet.
        mutating func number(of name: String) -> UInt32 {
            if let number = numbers[name] { return number }
            names.append(name)
            numbers[name] = UInt32(names.count - 1)
            return UInt32(names.count - 1)
        }

        /// The number of `name` if it has one: a name without one is in no binding.
        func existing(_ name: String) -> UInt32? { numbers[name] }

        subscript(number: UInt32) -> String { names[Int(number)] }
    }

    /// The bindings in shards by client prefix, so that a walk over all of them (the
    /// directed-load estimate, once a second) takes the lock for one shard at a time: a query
    /// waits at most for one shard's part of the walk, not for the whole table's.
    struct Shards {
        static let count = 64
        private(set) var tables = [BindingTable](repeating: BindingTable(), count: Shards.count)
        private(set) var total = 0
        /// Counts the changes that may move bindings within a shard (an insertion, a removal),
        /// so that a `Place` found under one lock can be used under the next if none came between.
        private(set) var layout = 0

        /// The shard of a key: a multiplicative hash of its prefix, whose top bits depend on
        /// every bit of the address (cheaper than the table's own hash, computed again inside).
        static func shard(of slot: Slot) -> Int {
            let bits = slot.isV6 ? slot.high ^ (slot.low &* 0x9E37_79B9_7F4A_7C15) : slot.low
            return Int(truncatingIfNeeded: ((bits ^ UInt64(slot.length)) &* 0x9E37_79B9_7F4A_7C15) >> 58)
        }

        /// Each shard's `BindingTable.hint`, readable without the lock, kept up as tables grow
        /// and are rebuilt (an insertion or a removal may have; a copy, which never happens,
        /// leaves it stale, which only makes a prefetch useless).
        let hints = Hints()

        /// Publishes `shard`'s hint after a change that may have moved its buckets.
        private func published(_ shard: Int) {
            // Stored only when it changed (the table grew or was rebuilt): a store at every
            // new binding would take the line from the workers that read it, one per query.
            let hint = tables[shard].hint
            if hints.slots[shard].load(ordering: .relaxed) != hint { hints.slots[shard].store(hint, ordering: .relaxed) }
        }

        /// Where a binding is: its shard and its index there, valid until the next change.
        typealias Place = (shard: Int, index: Int)

        /// Where `slot`'s binding is, to read it and then change it with one lookup.
        func find(_ slot: Slot) -> Place? {
            let shard = Self.shard(of: slot)
            return tables[shard].index(of: slot).map { (shard, $0) }
        }

        func stored(at place: Place) -> Stored { tables[place.shard][place.index] }

        mutating func update(at place: Place, to stored: Stored) {
            tables[place.shard][place.index] = stored
        }

        subscript(slot: Slot) -> Stored? {
            get { tables[Self.shard(of: slot)][slot] }
            set {
                let shard = Self.shard(of: slot)
                let old = newValue.map { tables[shard].updateValue($0, forKey: slot) } ?? tables[shard].removeValue(forKey: slot)
                total += (newValue == nil ? 0 : 1) - (old == nil ? 0 : 1)
                layout &+= 1
                published(shard)
            }
        }

        /// Changes the binding of `slot` in place; false when there is none.
        mutating func modify(_ slot: Slot, _ body: (inout Stored) -> Void) -> Bool {
            guard let place = find(slot) else { return false }
            body(&tables[place.shard][place.index])
            return true
        }

        mutating func removeAll(where drop: (Slot, Stored) -> Bool) {
            for shard in tables.indices {
                tables[shard].removeAll(where: drop)
                published(shard)
            }
            total = tables.reduce(0) { $0 + $1.count }
            layout &+= 1
        }

        var all: [(Slot, Stored)] {
            var all: [(Slot, Stored)] = []
            all.reserveCapacity(total)
            for table in tables { table.forEach { all.append(($0, $1)) } }
            return all
        }
    }

    struct State {
        var bindings = Shards()
        var services = Names()
        var sites = Names()
        /// Recent new bindings per site ID, decayed with a one-minute half-life, and their
        /// total. Stored in the units of `freshOrigin`: a binding made at `t` adds
        /// 2^((t − origin) / halfLife), so that decaying them all as time passes, which
        /// changes no share, is never done, and a share is one division whatever the number
        /// of sites that have had bindings. `rebase` brings the units back to now before the
        /// weights could grow out of range (after hours).
        var fresh: [String: Double] = [:]
        var freshTotal: Double = 0
        var freshOrigin: Double = 0
        var counts = Counts()
        /// Requests per query, as last estimated by `directedLoad`.
        var perQuery: RequestsPerQuery?
        /// The running fit behind `perQuery`'s two figures.
        var fit = RequestsPerQuery.Fit()
        /// Request rate moved per site ID since `directedLoad` last ran, so that decisions in
        /// between see it at once rather than up to a second later.
        var sincePublish: [String: Double] = [:]
        /// Per site ID, when above 1: its reported load ÷ the load its bindings stand for at
        /// the figures of `perQuery` (`directedLoad`). Its clients are heavier than the
        /// average of their kind, and a client placed from there brings that much more.
        var heavier: [String: Double] = [:]
        /// When this table made its first decision, and whether `perQuery` has since been
        /// measured from reports that showed load (until then it is `loadPerAnswer`, a guess).
        var started: Double?
        var measured = false

        /// Per site number (`sites`), its index in the snapshot of `siteRevision` (-1: not
        /// there), so that a decision for a bound client finds its site without hashing the ID.
        var siteIndices: [Int] = []
        var siteRevision: UInt64? = nil

        /// The snapshot's index of site number `number`, nil when the snapshot has no such site.
        mutating func index(ofSite number: UInt32, in snapshot: SteeringSnapshot) -> Int? {
            if siteRevision != snapshot.siteRevision {
                siteIndices.removeAll(keepingCapacity: true)
                siteRevision = snapshot.siteRevision
            }
            // Numbers are only ever added: those given since the last look are looked up now.
            while siteIndices.count <= Int(number) {
                siteIndices.append(snapshot.siteIndex(sites[UInt32(siteIndices.count)]) ?? -1)
            }
            let index = siteIndices[Int(number)]
            return index >= 0 ? index : nil
        }

        /// The service a decision was last made for, and its number: decisions come mostly
        /// for the same service as the one before, whose name then compares by its storage,
        /// unhashed (`slot(remembering:)`).
        var lastService: (name: String, number: UInt32)?

        /// The stored form of `key`, if its service has a number (else it has no binding).
        func slot(for key: Key) -> Slot? {
            services.existing(key.service).map { Slot(prefix: key.prefix, service: $0) }
        }

        /// As `slot(for:)`, remembering the service's number for the next call.
        mutating func slot(remembering key: Key) -> Slot? {
            if let last = lastService, last.name == key.service { return Slot(prefix: key.prefix, service: last.number) }
            guard let number = services.existing(key.service) else { return nil }
            lastService = (key.service, number)
            return Slot(prefix: key.prefix, service: number)
        }

        func binding(for key: Key) -> Binding? {
            // Not `.map(binding(of:))`: the method as a value holds a copy of the whole state.
            guard let slot = slot(for: key), let stored = bindings[slot] else { return nil }
            return binding(of: stored)
        }

        func binding(of stored: Stored) -> Binding {
            Binding(site: sites[stored.site], boundAt: stored.boundAt, lastSeen: stored.lastSeen, queries: stored.queries,
                    previous: stored.previous == Stored.none ? nil : sites[stored.previous], viaResolver: stored.viaResolver)
        }

        func key(of slot: Slot) -> Key { Key(service: services[slot.service], prefix: slot.prefix) }

        /// Stores `binding` under `key` (nil: removes it), numbering their names as needed.
        mutating func set(_ key: Key, _ binding: Binding?) {
            guard let binding else {
                if let slot = slot(for: key) { bindings[slot] = nil }
                return
            }
            let slot = Slot(prefix: key.prefix, service: services.number(of: key.service))
            bindings[slot] = Stored(boundAt: binding.boundAt, lastSeen: binding.lastSeen, queries: binding.queries,
                                    site: sites.number(of: binding.site),
                                    previous: binding.previous.map { sites.number(of: $0) } ?? Stored.none,
                                    viaResolver: binding.viaResolver)
        }
    }

    /// Per shard, where its bindings are (`BindingTable.hint`), read without the lock.
    final class Hints: Sendable {
        let slots: InlineArray<64, Atomic<Int>> = InlineArray { _ in Atomic(0) }
    }

    public let capacity: Int
    private let state = Mutex(State())
    /// The state's `bindings.hints`, outside the lock.
    private let hints: Hints
    static let halfLife = 60.0

    public init(capacity: Int = 1_000_000) {
        self.capacity = max(capacity, 10)
        hints = state.withLock { $0.bindings.hints }
    }

    /// Calls `body` with where `client`'s binding would be found first (its first bucket,
    /// whatever the service), for a caller that will decide for it soon and can have the line
    /// fetched meanwhile: a decision waits on it otherwise, as the client's last query was a
    /// second or more ago. Takes no lock; the place may be stale by the time it is read, which
    /// a prefetch does not mind.
    public func withBindingPlace(of client: Client, _ body: (UnsafeRawPointer) -> Void) {
        // The key of any service: the shard and the first bucket depend on the prefix alone.
        let slot = Slot(prefix: Affinity.keyPrefix(for: client), service: 0)
        let hint = hints.slots[Shards.shard(of: slot)].load(ordering: .relaxed)
        if let place = BindingTable.place(of: slot, hint: hint) { body(place) }
    }

    public var count: Int { state.withLock { $0.bindings.total } }
    public var counts: Counts { state.withLock { $0.counts } }

    public func binding(for key: Key) -> Binding? {
        state.withLock { $0.binding(for: key) }
    }

    /// One sticky decision, the way the server and the simulator both make it: the client's
    /// binding is looked up, `Affinity.decide` runs with the recent placement shares, and the
    /// outcome is recorded.
    public func decide(service: Service, client: Client, snapshot: SteeringSnapshot, now: Double) -> Affinity.Outcome {
        var storage = DecisionStorage()
        let decided = decide(service: service, client: client, snapshot: snapshot, now: now, storage: &storage)
        // The binding as recorded, with its sites' IDs.
        let binding = decided.binding == nil ? nil : self.binding(for: Key(service: service.name, prefix: decided.key))
        return Affinity.Outcome(decision: decided.decision, binding: binding, event: decided.event, key: decided.key)
    }

    /// As above, the decision made in `storage` (`DecisionStorage`), its binding by site index
    /// (`Affinity.Decided`): the server's, which needs no site IDs. `renewal`: reuses of the
    /// client's binding since it was last recorded (as `renew` takes them), applied to it
    /// before the decision reads it, under the same lock.
    public func decide(service: Service, client: Client, snapshot: SteeringSnapshot, now: Double,
                       renewal: (queries: Int, lastSeen: Double)? = nil,
                       storage: inout DecisionStorage) -> Affinity.Decided {
        let key = Key(service: service.name, prefix: Affinity.keyPrefix(for: client))
        // The key as stored, once its service has a number: worked out under the first lock
        // and used again under the second (a service's number never changes).
        var slot: Slot? = nil
        // Where its binding is, and the layout it was found in, for the second lock.
        var place: Shards.Place? = nil
        var layout = 0
        var movedRates: [Double]? = nil
        var existing: Affinity.Held? = nil
        // The binding's site and previous site by the table's numbers (`Names`).
        var numbers: (site: UInt32, previous: UInt32)? = nil
        var perQuery: RequestsPerQuery? = nil
        var weight = 1.0
        var blind = false
        // What the decision reads, under one lock: the load moved since the last publish (only
        // for the service's own sites, the only ones evaluated) and the binding. The shares of
        // new bindings are read only if the client is placed anew, which a kept binding is not.
        // In the array `storage` lends (given back below): while loads swing, most decisions
        // have load moved since the publish, and allocated this array each.
        var rates = storage.takeMoved()
        state.withLock { state in
            if !state.sincePublish.isEmpty {
                Self.forEachValue(in: state.sincePublish, of: service, in: snapshot) { position, rate in
                    guard rate != 0 else { return }
                    if rates.isEmpty { rates.append(contentsOf: repeatElement(0, count: service.sites.count)) }
                    rates[position] = rate
                }
                if !rates.isEmpty { movedRates = rates }
            }
            slot = state.slot(remembering: key)
            place = slot.flatMap { state.bindings.find($0) }
            layout = state.bindings.layout
            if let place {
                let stored = state.bindings.stored(at: place)
                numbers = (stored.site, stored.previous)
                existing = Affinity.Held(site: state.index(ofSite: stored.site, in: snapshot), boundAt: stored.boundAt,
                                         lastSeen: stored.lastSeen, queries: stored.queries,
                                         moved: stored.previous != Stored.none, viaResolver: stored.viaResolver)
            }
            if let renewal, var renewed = existing {
                renewed.lastSeen = max(renewed.lastSeen, renewal.lastSeen)
                renewed.queries += renewal.queries
                existing = renewed
                state.counts.kept += renewal.queries
            }
            perQuery = state.perQuery
            if !state.heavier.isEmpty, let site = numbers?.site, let factor = state.heavier[state.sites[site]] { weight = factor }
            if state.started == nil { state.started = now }
            blind = !state.measured && now - (state.started ?? now) < Double(service.ttl)
        }
        // The load the client brings where it is placed: its binding's query rate (one query
        // per TTL for a new one) × the requests per query of its kind, × how much heavier
        // than the average the clients of its site are. A flash crowd behind one resolver
        // makes each of its queries stand for several times the average: counted at the
        // average, it is placed on a small site that it then overloads, and shed to the
        // next, back and forth.
        let ttl = Double(service.ttl)
        let queryRate = existing.map { Binding.queryRate(queries: $0.queries, boundAt: $0.boundAt, now: now, ttl: ttl) }
            ?? 1 / max(ttl, 1)
        let perClientQuery = perQuery?.of(viaResolver: client.isSourceAddress) ?? snapshot.parameters.loadPerAnswer
        // The load moved since the publish goes in beside the snapshot, which is read as the
        // caller's: a copy with it added (as this did) is a retain and a release of each of
        // the snapshot's fields, for every decision.
        var outcome = Affinity.decide(service: service, client: client, snapshot: snapshot, now: now, held: existing,
                                      shares: { service, snapshot, shares in
                                          self.state.withLock { Self.shares($0, of: service, in: snapshot, into: &shares) }
                                      },
                                      demand: queryRate * perClientQuery * weight, moved: movedRates, storage: &storage)
        movedRates = nil
        storage.reclaim(moved: rates)
        // A table that has just started places its clients blind: it knows neither how much
        // load they bring nor, without a report since, where they went. Answers of its first
        // TTL, until reports have measured the load per query, carry the shortest TTL, so that
        // those placements are looked at again within seconds rather than a whole TTL later.
        if blind { outcome.decision.ttl = min(outcome.decision.ttl, Affinity.shortestTTL) }
        // And what it changes, under one more.
        state.withLock { state in
            Self.count(outcome.event, in: &state)
            guard let bound = outcome.binding else {
                if let slot = slot ?? state.slot(for: key) { state.bindings[slot] = nil }
                return
            }
            let place = state.bindings.layout == layout ? place : nil
            if outcome.event == .kept, let numbers {
                // The binding's sites stay: it is renewed where it was found.
                let renewed = Stored(boundAt: bound.boundAt, lastSeen: bound.lastSeen, queries: bound.queries, site: numbers.site,
                                     previous: numbers.previous, viaResolver: bound.viaResolver)
                if let place { state.bindings.update(at: place, to: renewed) } else if let slot { state.bindings[slot] = renewed }
                return
            }
            // Placed, anew or moved from the site it had: the new site's ID is numbered here,
            // a hash only placements pay (most decisions keep their binding).
            let site = snapshot.sites[bound.site].id
            let previous: UInt32? = if case .moved = outcome.event { numbers?.site } else { nil }
            let stored = Stored(boundAt: bound.boundAt, lastSeen: bound.lastSeen, queries: bound.queries,
                                site: state.sites.number(of: site), previous: previous ?? Stored.none,
                                viaResolver: bound.viaResolver)
            let known = slot ?? Slot(prefix: key.prefix, service: state.services.number(of: key.service))
            if let place { state.bindings.update(at: place, to: stored) } else { state.bindings[known] = stored }
            Self.addFresh(&state, site: site, now: now)
            // What this placement moves, counted at once for the decisions that follow;
            // nothing when it moves no load (no load per answer configured nor measured
            // yet): an entry of 0 made every decision of the second look its sites up.
            let rate = Binding.queryRate(queries: bound.queries, boundAt: bound.boundAt, now: now, ttl: Double(service.ttl))
                * (state.perQuery?.of(viaResolver: bound.viaResolver) ?? snapshot.parameters.loadPerAnswer) * weight
            if rate != 0 {
                state.sincePublish[site, default: 0] += rate
                if let previous { state.sincePublish[state.sites[previous], default: 0] -= rate }
            }
            if state.bindings.total > capacity { evict(&state) }
        }
        return outcome
    }

    /// A kept binding used again `queries` times without a new decision, the last at
    /// `lastSeen`.
    public struct Renewal: Sendable {
        public var service: String
        public var client: Client
        public var lastSeen: Double
        public var queries: Int

        public init(service: String, client: Client, lastSeen: Double, queries: Int = 1) {
            self.service = service
            self.client = client
            self.lastSeen = lastSeen
            self.queries = queries
        }
    }

    /// Renews kept bindings without a new decision (the server's decision memo hands its
    /// reuses over in batches, under one lock): what `record` does for that many kept
    /// outcomes, without building them. A binding gone meanwhile (expired, moved by a
    /// decision) is not brought back.
    public func renew(_ renewals: [Renewal]) {
        state.withLock { state in
            // The service's number is looked up again only when the name changes: a batch is
            // mostly one service's, and equal names compare by their shared storage, unhashed.
            var service: (name: String, number: UInt32?)? = nil
            for renewal in renewals {
                if service?.name != renewal.service { service = (renewal.service, state.services.existing(renewal.service)) }
                guard let number = service?.number else { continue }
                let slot = Slot(prefix: Affinity.keyPrefix(for: renewal.client), service: number)
                let found = state.bindings.modify(slot) { binding in
                    binding.lastSeen = max(binding.lastSeen, renewal.lastSeen)
                    binding.queries += renewal.queries
                }
                if found { state.counts.kept += renewal.queries }
            }
        }
    }

    /// Records the outcome of a decision.
    public func record(_ outcome: Affinity.Outcome, service: String, now: Double) {
        let key = Key(service: service, prefix: outcome.key)
        state.withLock { apply(outcome, key: key, now: now, to: &$0) }
    }

    private func apply(_ outcome: Affinity.Outcome, key: Key, now: Double, to state: inout State) {
        Self.count(outcome.event, in: &state)
        state.set(key, outcome.binding)
        guard let binding = outcome.binding else { return }
        if outcome.event != .kept { Self.addFresh(&state, site: binding.site, now: now) }
        if state.bindings.total > capacity { evict(&state) }
    }

    /// Counts what a decision did to a binding (`counts`).
    private static func count(_ event: BindingEvent, in state: inout State) {
        switch event {
        case .kept: state.counts.kept += 1
        case .created: state.counts.created += 1
        case .expired: state.counts.expired += 1
        case .moved(let reason): state.counts.moved[reason, default: 0] += 1
        }
    }

    /// The share of recent new bindings of each site in `indices` (of `sites`), by index;
    /// empty when there have been none. Only the service's own sites are looked at, so a
    /// decision does not grow with the number of sites configured.
    public func newBindingShare(of indices: [Int], in sites: [Site], now: Double) -> [Int: Double] {
        state.withLock { Self.shares($0, of: indices, in: sites) }
    }

    /// As below for `service`'s sites; sites with no share are left out.
    private static func shares(_ state: State, of service: Service, in snapshot: SteeringSnapshot,
                               into shares: inout [Int: Double]) {
        let total = state.freshTotal
        guard total > 0 else { return }
        forEachValue(in: state.fresh, of: service, in: snapshot) { position, weight in
            shares[service.sites[position]] = weight / total
        }
    }

    /// Calls `body` with (place in `service.sites`, value) for each of the service's sites that
    /// `table` (by site ID) has a value for, walking whichever is shorter, the table or the
    /// service's sites: a 1000-site service hashes only the few sites of a short table, and a
    /// table of thousands of sites is looked up only for the service's own.
    private static func forEachValue(in table: [String: Double], of service: Service, in snapshot: SteeringSnapshot,
                                     _ body: (_ position: Int, _ value: Double) -> Void) {
        if table.count < service.sites.count && !service.listsASiteTwice {
            for (id, value) in table {
                if let index = snapshot.siteIndex(id), let position = service.position(of: index) { body(position, value) }
            }
        } else {
            for (position, index) in service.sites.enumerated() {
                if let value = table[snapshot.sites[index].id] { body(position, value) }
            }
        }
    }

    private static func shares(_ state: State, of indices: [Int], in sites: [Site]) -> [Int: Double] {
        let total = state.freshTotal
        guard total > 0 else { return [:] }
        var shares: [Int: Double] = [:]
        shares.reserveCapacity(indices.count)
        for index in indices { shares[index] = (state.fresh[sites[index].id] ?? 0) / total }
        return shares
    }

    /// Drops bindings not used for longer than their service's hold. Returns how many.
    @discardableResult
    public func expire(now: Double, hold: (String) -> Double) -> Int {
        state.withLock { state in
            let before = state.bindings.total
            // The hold of each service once (by its number), not per binding.
            let holds = state.services.names.map(hold)
            state.bindings.removeAll { slot, binding in now - binding.lastSeen > holds[Int(slot.service)] }
            let removed = before - state.bindings.total
            state.counts.expired += removed
            return removed
        }
    }

    /// Anti-herding: per site index, the request rate this server has moved there through
    /// bindings made since the site's last report (which therefore cannot include it), minus
    /// the rate moved away from it since then.
    ///
    /// A binding's request rate is its prefix's DNS query rate × requests per query. The
    /// latter is measured rather than configured (`RequestsPerQuery`): the load the sites
    /// report ÷ the query rate of all bindings, split between client subnets and resolvers'
    /// own addresses by what the reports say of each. `loadPerAnswer` stands in until there
    /// are reports.
    public func directedLoad(snapshot: SteeringSnapshot, now: Double) -> [Double] {
        var ttl: [String: Double] = [:]
        for service in snapshot.services { ttl[service.name] = Double(service.ttl) }
        var index: [String: Int] = [:]
        for (position, site) in snapshot.sites.enumerated() { index[site.id] = position }
        let reported = snapshot.sites.indices.reduce(0.0) { sum, site in
            let report = snapshot.loads[site]
            guard report.reportedAt != nil else { return sum }
            return sum + max(report.utilization, 0) * (report.capacity ?? snapshot.sites[site].capacity)
        }
        // The moves counted since the last publish start again from here.
        state.withLock { $0.sincePublish = [:] }
        // Per site, the query rate of bindings not yet fully in its report: added where they
        // went, taken off where they left, each by the fraction its report has not seen yet.
        // Kept by kind, not per binding, as requests per query are known only after the walk
        // and depend only on the kind: no array of a hundred thousand moves once a second.
        // One shard per lock, so a query waits for a sixty-fourth of the walk at most.
        var unseen = Array(repeating: RequestsPerQuery.Rates(), count: snapshot.sites.count)
        // Query rates, in all and per site as far as its report has seen them, of subnets and
        // of resolvers: what the fit of requests per query reads.
        var total = RequestsPerQuery.Rates()
        var seen = Array(repeating: RequestsPerQuery.Rates(), count: snapshot.sites.count)
        // By the table's numbers of sites and services: the snapshot's index of each site (-1
        // where it has none) and the TTL of each service, so the walk hashes no name.
        var siteIndex: [Int] = []
        var ttls: [Double] = []
        for shard in 0..<Shards.count {
            state.withLock { state in
                // Names are only ever added: number those added since the shard before.
                while siteIndex.count < state.sites.names.count { siteIndex.append(index[state.sites.names[siteIndex.count]] ?? -1) }
                while ttls.count < state.services.names.count { ttls.append(ttl[state.services.names[ttls.count]] ?? 20) }
                state.bindings.tables[shard].forEach { slot, binding in
                    let site = siteIndex[Int(binding.site)]
                    guard site >= 0 else { return }
                    let rate = Binding.queryRate(queries: binding.queries, boundAt: binding.boundAt, now: now,
                                                 ttl: ttls[Int(slot.service)])
                    total.add(rate, viaResolver: binding.viaResolver)
                    let reflected = snapshot.loads[site].reflects(changeAt: binding.boundAt)
                    seen[site].add(rate * reflected, viaResolver: binding.viaResolver)
                    if reflected < 1 { unseen[site].add(rate * (1 - reflected), viaResolver: binding.viaResolver) }
                    let from = binding.previous == Stored.none ? -1 : siteIndex[Int(binding.previous)]
                    if from >= 0 {
                        let fromShare = 1 - snapshot.loads[from].reflects(changeAt: binding.boundAt)
                        if fromShare > 0 { unseen[from].add(-rate * fromShare, viaResolver: binding.viaResolver) }
                    }
                }
            }
        }
        let perQuery = state.withLock { state in
            for site in snapshot.sites.indices where snapshot.loads[site].reportedAt != nil {
                let report = snapshot.loads[site]
                state.fit.add(reported: max(report.utilization, 0) * (report.capacity ?? snapshot.sites[site].capacity),
                              seen: seen[site], at: now)
            }
            let perQuery = state.fit.estimate(reported: reported, total: total, fallback: snapshot.parameters.loadPerAnswer)
            state.perQuery = perQuery
            if reported > 0 && total.subnet + total.resolver > 0 { state.measured = true }
            // Clamped at 20×: a site's few bindings against a noisy report can say anything.
            state.heavier = [:]
            for site in snapshot.sites.indices where snapshot.loads[site].reportedAt != nil {
                let report = snapshot.loads[site]
                let model = seen[site].subnet * perQuery.subnet + seen[site].resolver * perQuery.resolver
                let load = max(report.utilization, 0) * (report.capacity ?? snapshot.sites[site].capacity)
                if model > 0, load > model { state.heavier[snapshot.sites[site].id] = min(load / model, 20) }
            }
            return perQuery
        }
        return unseen.map { $0.subnet * perQuery.subnet + $0.resolver * perQuery.resolver }
    }

    /// How many times heavier than the average of their kind the clients bound to `site` are,
    /// as last measured by `directedLoad` (1 when not heavier or not measured).
    public func clientWeight(site: String) -> Double {
        state.withLock { $0.heavier[site] ?? 1 }
    }

    /// Requests per query as last measured by `directedLoad`: nil before its first run.
    public var requestsPerQuery: RequestsPerQuery? { state.withLock { $0.perQuery } }

    /// Every binding, for persistence.
    public func entries() -> [(Key, Binding)] {
        state.withLock { state in state.bindings.all.map { (state.key(of: $0.0), state.binding(of: $0.1)) } }
    }

    /// Restores persisted bindings (keeping any made since start).
    public func restore(_ entries: [(Key, Binding)]) {
        state.withLock { state in
            for (key, binding) in entries where state.slot(for: key).flatMap({ state.bindings[$0] }) == nil {
                state.set(key, binding)
            }
            if state.bindings.total > capacity { evict(&state) }
        }
    }

    private func evict(_ state: inout State) {
        let excess = state.bindings.total - capacity + capacity / 10
        let oldest = state.bindings.all.sorted { $0.1.lastSeen < $1.1.lastSeen }.prefix(excess)
        for (key, _) in oldest { state.bindings[key] = nil }
        state.counts.evicted += oldest.count
    }

    /// One new binding of `site` at `now`, counted in the decayed shares.
    private static func addFresh(_ state: inout State, site: String, now: Double) {
        if state.freshTotal == 0 { state.freshOrigin = now }
        if (now - state.freshOrigin) / halfLife > 256 { rebase(&state, now: now) }
        let weight = pow(2, (now - state.freshOrigin) / halfLife)
        state.fresh[site, default: 0] += weight
        state.freshTotal += weight
    }

    /// Expresses the stored shares in the units of `now` (every few hours; O(sites)).
    private static func rebase(_ state: inout State, now: Double) {
        let factor = pow(0.5, (now - state.freshOrigin) / halfLife)
        var index = state.fresh.values.startIndex
        while index != state.fresh.values.endIndex {
            state.fresh.values[index] *= factor
            state.fresh.values.formIndex(after: &index)
        }
        state.freshTotal *= factor
        state.freshOrigin = now
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
