/// What a responder counted and has not yet added to the shared counters: the query metrics of
/// every answer, and the answers per (service, site) the fast path gave, for the anti-herding
/// ledger and the answer metrics.
///
/// Counted one by one, each answer took the ledger's lock and four atomic adds on cache lines
/// every worker writes. A UDP worker adds the counts of its batches at once, every
/// `UDPWorkers.flushMilliseconds` and when it is idle (`Responder.flushCounts`), so they reach
/// the ledger and the metrics that much late, well within the second the ledger counts by.
/// Everything else flushes after each answer.
struct PendingCounts {
    struct Answers {
        var service: Int
        var site: Int
        var count: Int
    }

    /// Distinct (service, site) pairs answered with, all in second `second`.
    private(set) var answers: [Answers] = []
    private(set) var second = 0
    /// [transport: UDP, TCP][RCODE slot, `DNSMetrics.slot(of:)`].
    private(set) var queries: [Int]
    private(set) var ecs = 0
    private(set) var compiled = 0
    private(set) var isEmpty = true

    /// Pairs held before a flush is due: a batch of a few services' few sites has fewer.
    static let answerCapacity = 16

    init() {
        queries = Array(repeating: 0, count: 2 * DNSMetrics.slotCount)
        answers.reserveCapacity(Self.answerCapacity)
    }

    /// False when the answer must wait for a flush: it counts in another second than the
    /// answers held, or there is no room for another pair.
    mutating func answer(service: Int, site: Int, second: Int) -> Bool {
        if !answers.isEmpty, second != self.second { return false }
        self.second = second
        isEmpty = false
        for index in answers.indices where answers[index].site == site && answers[index].service == service {
            answers[index].count += 1
            return true
        }
        guard answers.count < Self.answerCapacity else { return false }
        answers.append(Answers(service: service, site: site, count: 1))
        return true
    }

    /// A response sent; `compiled`: from compiled answers (the fast path).
    mutating func query(transport: Transport, rcode: ResponseCode, ecs: Bool, compiled: Bool) {
        queries[(transport == .udp ? 0 : DNSMetrics.slotCount) + DNSMetrics.slot(of: rcode)] += 1
        if ecs { self.ecs += 1 }
        if compiled { self.compiled += 1 }
        isEmpty = false
    }

    /// Adds everything held to `state`'s ledger and metrics and forgets it.
    mutating func flush(to state: ServingState) {
        guard !isEmpty else { return }
        if !answers.isEmpty {
            state.ledger.record(second: second, answers.lazy.map { (site: $0.site, answers: $0.count) })
            for entry in answers { state.metrics.answered(service: entry.service, site: entry.site, count: entry.count) }
            answers.removeAll(keepingCapacity: true)
        }
        for slot in queries.indices where queries[slot] > 0 {
            state.metrics.queries(transport: slot < DNSMetrics.slotCount ? .udp : .tcp, slot: slot % DNSMetrics.slotCount,
                                  count: queries[slot])
            queries[slot] = 0
        }
        state.metrics.queries(ecs: ecs, compiled: compiled)
        (ecs, compiled, isEmpty) = (0, 0, true)
    }
}

extension Responder {
    /// Adds what was counted to `state`, the state it answered from: a UDP worker after each
    /// batch (`defersCounts`); `respond` itself otherwise.
    public mutating func flushCounts(to state: ServingState) {
        pending.flush(to: state)
    }

    /// An answer for `site` of service `service` at `now`, as `ServingState.countAnswer`
    /// counts it, held until the next flush.
    mutating func countAnswer(service: Int, site: Int, now: Double, state: ServingState) {
        let second = Int(now)
        if pending.answer(service: service, site: site, second: second) { return }
        pending.flush(to: state)
        _ = pending.answer(service: service, site: site, second: second)
    }
}
