import Resolver
import Scoring
import ServiceLifecycle
import Synchronization

/// The one way writers change steering state. Load reports, latency measurements and health
/// check results are queued here and applied together, at most once per `interval`, by
/// building a new snapshot and swapping it in: a burst of reports costs one swap, and the query
/// path never waits for a writer (it only ever reads a published snapshot).
///
/// The writer sleeps until something is queued rather than waking on a timer: polling every
/// 20 ms cost an idle server fifty wake-ups a second, each a task group and a timer, about
/// 2 % of the CPU that answering 50 000 queries a second takes (bench/compare.sh, perf).
final class SteeringWriter: ServiceLifecycle.Service, Sendable {
    struct Pending {
        var loads: [String: SiteLoad] = [:]
        var latency: [(prefix: IPPrefix, site: String, rtt: Double)] = []
        var checks: [String: Bool] = [:]
        var isEmpty: Bool { loads.isEmpty && latency.isEmpty && checks.isEmpty }
    }

    let store: StateStore
    let interval: Duration
    /// Prefixes the latency map may hold at most (files included).
    static let maxLatencyPrefixes = 2_000_000
    private let pending = Mutex(Pending())
    /// Published snapshots and applied updates, for metrics and tests.
    let swaps = Atomic<Int>(0)
    /// Times `run` woke up to apply what was queued, for tests.
    let wakeUps = Atomic<Int>(0)
    /// One wake-up for `run` however many submits came since it last looked.
    private let wakes: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    /// A wake-up was yielded and `run` has not taken it yet.
    private let woken = Atomic<Bool>(false)

    init(store: StateStore, interval: Duration = .milliseconds(20)) {
        self.store = store
        self.interval = interval
        (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues a validated load report; the site is named by ID so a reload in between cannot
    /// misapply it.
    func submit(load: SiteLoad, site: String) {
        enqueue { $0.loads[site] = load }
    }

    /// Queues validated load reports of several sites together (`PUT /v1/loads`).
    func submit(loads: [(site: String, load: SiteLoad)]) {
        enqueue { pending in
            for (site, load) in loads { pending.loads[site] = load }
        }
    }

    func submit(latency: [(prefix: IPPrefix, site: String, rtt: Double)]) {
        enqueue { $0.latency.append(contentsOf: latency) }
    }

    func submit(check passing: Bool, site: String) {
        enqueue { $0.checks[site] = passing }
    }

    /// Queues `change` and wakes `run`, unless a wake-up is already on its way: `run` clears
    /// `woken` before it takes what is queued, so a change that finds it set is taken by the
    /// flush that wake-up leads to. Thousands of reports a second then yield to the stream (a
    /// lock and a task's resumption) once per `interval`, not once each.
    private func enqueue(_ change: (inout Pending) -> Void) {
        pending.withLock { change(&$0) }
        if !woken.exchange(true, ordering: .acquiringAndReleasing) { wake.yield() }
    }

    /// Applies what is queued as soon as it is, then waits `interval` before the next swap, so
    /// that the rest of a burst, queued meanwhile, is applied together in one.
    func run() async throws {
        for await _ in wakes.cancelOnGracefulShutdown() {
            wakeUps.wrappingAdd(1, ordering: .relaxed)
            woken.store(false, ordering: .sequentiallyConsistent)
            flush()
            await pause(interval)
        }
        flush()
    }

    /// Applies everything queued in one new snapshot.
    func flush() {
        let batch = pending.withLock { state -> Pending in
            let batch = state
            state = Pending()
            return batch
        }
        guard !batch.isEmpty else { return }
        store.update { state in
            var steering = state.steering
            for (id, load) in batch.loads {
                guard let index = steering.siteIndex(id) else { continue }
                steering.loads[index] = load.measured(after: steering.loads[index])
            }
            for (id, passing) in batch.checks {
                if let index = steering.siteIndex(id) { steering.checksPassing[index] = passing }
            }
            for item in batch.latency {
                // Measurements may refine known prefixes freely, but may add new ones only up
                // to a bound: a measurement token must not be able to grow memory without limit.
                if steering.latency.prefixCount >= Self.maxLatencyPrefixes && !steering.latency.hasEntry(item.prefix) {
                    continue
                }
                if let index = steering.siteIndex(item.site) {
                    steering.latency.setRTT(item.rtt, prefix: item.prefix, site: index, alpha: LatencyMap.defaultAlpha)
                }
            }
            return state.with(steering: steering)
        }
        swaps.wrappingAdd(1, ordering: .relaxed)
    }
}

extension ServingState {
    /// A freshly loaded state that keeps the load reports and check results of the sites that
    /// still exist, so a reload does not make every site "unknown". Latencies come from the
    /// files again; measurements pushed through the API since start are not carried over.
    func carryingOver(from old: ServingState) -> ServingState {
        var steering = self.steering
        for (index, site) in steering.sites.enumerated() {
            guard let oldIndex = old.steering.siteIndex(site.id) else { continue }
            steering.loads[index] = old.steering.loads[oldIndex]
            steering.checksPassing[index] = old.steering.checksPassing[oldIndex]
        }
        return with(steering: steering)
    }
}
