import Scoring

extension ServingState {
    /// Answers a question for a service name from a steering decision, and returns the
    /// decision (nil for types that need none).
    ///
    /// A and AAAA carry the chosen sites' addresses with the decision's TTL; AAAA for sites
    /// without IPv6, and every other type, is NODATA with the SOA (SPEC.md). The decision's
    /// scope becomes the ECS scope.
    @discardableResult
    ///
    /// `decided`: the decision the fast path already made for this query and could not
    /// answer from a template (several sites, the all-down answer, a size limit): it is
    /// rendered rather than made again, which would count the query twice.
    public func answerService(_ entry: ServiceEntry, question: Question, client: Client, now: Double,
                              sequence: UInt64, decided: ServiceDecision? = nil,
                              into resolution: inout Resolution) -> ServiceDecision? {
        resolution.authoritative = true
        let type: RRType = question.type == .any ? .a : question.type
        guard type == .a || type == .aaaa else {
            resolution.authority.append(SectionEntry(owner: entry.zone.origin, rrset: entry.zone.negativeSOA))
            return nil
        }
        let made: ServiceDecision
        if let decided {
            made = decided
        } else {
            var storage = DecisionStorage()
            made = decide(service: entry.index, client: client, now: now, sequence: sequence, storage: &storage)
        }
        renderService(entry, owner: question.name, type: type, sites: made.decision.sites, ttl: made.decision.ttl,
                      scope: made.decision.scope, now: now, into: &resolution)
        return made
    }

    /// One steering decision for `client`, with its metrics, made in `storage`. `renewal`:
    /// reuses of the client's binding not yet counted (`DecisionMemo.takeRenewal`), which
    /// renew it before a sticky decision reads it.
    func decide(service index: Int, client: Client, now: Double, sequence: UInt64,
                renewal: (queries: Int, lastSeen: Double)? = nil,
                storage: inout DecisionStorage) -> ServiceDecision {
        let service = steering.services[index]
        // Time one decision in 64: enough for the histogram, two clock reads spared for the rest.
        let timed = sequence & 63 == 0
        let start = timed ? ContinuousClock.now : nil
        let made: ServiceDecision
        if service.isSticky {
            // Sticky: keep the client's site while it stays good enough (Affinity).
            let outcome = affinity.decide(service: service, client: client, snapshot: steering, now: now, renewal: renewal,
                                          storage: &storage)
            metrics.binding(outcome.event)
            // As `Responder.hand` counts the renewals it hands over.
            if let renewal { metrics.bindingsKept(renewal.queries) }
            // Any outcome that leaves a binding: deciding again would keep it (a site just
            // chosen is within the margin, or held down after a move).
            made = ServiceDecision(decision: outcome.decision, reusable: outcome.binding != nil, sticky: true)
        } else {
            let decision = Selector.select(service: service, client: client, snapshot: steering, now: now, sequence: sequence,
                                           storage: &storage)
            // Round robin and weighted draw per query; the others are a function of the
            // client and the snapshot.
            made = ServiceDecision(decision: decision, reusable: service.policy != .roundRobin && service.policy != .weighted,
                                   sticky: false)
        }
        if let start {
            let elapsed = ContinuousClock.now - start
            metrics.decision(nanoseconds: elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        }
        return made
    }

    /// The answer for `sites`, counted as answers given for the sites that have an address
    /// of `type`.
    func renderService(_ entry: ServiceEntry, owner: DNSName, type: RRType, sites: [Int], ttl: UInt32, scope: Int,
                       now: Double, into resolution: inout Resolution) {
        entry.render(owner: owner, type: type, sites: sites, ttl: ttl, scope: scope, catalog: catalog, into: &resolution) { site in
            countAnswer(service: entry.index, site: site, now: now)
        }
    }

    /// An answer given for `site`: the anti-herding ledger and the answer counter.
    @inline(__always)
    func countAnswer(service: Int, site: Int, now: Double) {
        ledger.record(site: site, now: now)
        metrics.answered(service: service, site: site)
    }
}

/// A decision and whether the same client may be given it again without deciding anew
/// within the same state (`DecisionMemo`): a sticky client with a binding (its next decision
/// keeps it), or a policy that is a pure function of the client and the snapshot.
public struct ServiceDecision: Sendable {
    public var decision: Decision
    public var reusable: Bool
    /// Made by `Affinity` (the service is sticky): a reuse renews the client's binding.
    public var sticky: Bool
}

extension ServiceEntry {
    /// The answer for `sites` (those with an address of `type`; none: NODATA with the SOA),
    /// calling `answered` for each site used. Decisions and the compiled templates
    /// (`AnswerTable`) both render through here.
    func render(owner: DNSName, type: RRType, sites: [Int], ttl: UInt32, scope: Int, catalog: Catalog,
                into resolution: inout Resolution, answered: (Int) -> Void = { _ in }) {
        resolution.authoritative = true
        resolution.scopePrefixLength = UInt8(clamping: scope)
        var chosen: [RRSet] = []
        for site in sites {
            guard let sets = rrsets[site], let set = type == .a ? sets.a : sets.aaaa else { continue }
            chosen.append(set)
            answered(site)
        }
        guard let first = chosen.first else {
            resolution.authority.append(SectionEntry(owner: zone.origin, rrset: zone.negativeSOA))
            return
        }
        // One site: its precomputed set. Several: one RRset of all their addresses.
        let set = chosen.count == 1 ? first
            : RRSet(name: name, type: type, ttl: ttl, rdatas: chosen.flatMap(\.rdatas))
        resolution.answer.append(SectionEntry(owner: owner, rrset: set, ttl: ttl))
        catalog.finishPositive(zone: zone, into: &resolution)
    }
}
