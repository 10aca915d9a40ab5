#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Scoring
import Synchronization

/// What one policy achieved in one scenario. Response times include the network RTT, the
/// wait and the service; a dropped request counts as the scenario's timeout.
public struct RunResult: Sendable {
    public var policy: PolicyKind
    /// Every request of the run, warm-up included: sent = served + dropped.
    public var sent = 0
    public var served = 0
    public var dropped = 0

    // From here on, after the warm-up only.
    public var measured = 0
    public var measuredDropped = 0
    public var mean = 0.0
    public var p50 = 0.0
    public var p95 = 0.0
    public var p99 = 0.0
    /// Fraction of requests sent to a site whose utilisation over that window was ≥ 1 (or
    /// that was down).
    public var overloadedShare = 0.0
    /// The same, leaving out the detection + report + TTL window after each event.
    public var overloadedOutsideShare = 0.0
    public var maxUtilization = 0.0
    /// How often a /24's requests moved to another site, per /24 and hour.
    public var changesPerPrefixHour = 0.0
    /// Per failure event: seconds until the failed site received less than 10% of the
    /// requests it had before (nil: never within the run).
    public var evacuation: [Double?] = []
    /// Queries reaching the authoritative server, per second.
    public var authoritativeRate = 0.0

    /// Per window: start time, mean and p95 response time of requests arriving in it.
    public var series: [(time: Double, mean: Double, p95: Double)] = []
    /// Per window and site: utilisation (offered work / servers; infinity when down).
    public var utilization: [[Double]] = []
}

public enum Simulator {
    /// Runs one policy through the scenario. Deterministic: the same scenario and seed give
    /// the same result, and every policy sees the same arrivals.
    public static func run(_ scenario: Scenario, policy: PolicyKind) -> RunResult {
        run(scenario, world: World(scenario), policy: policy)
    }

    /// Runs every policy in `policies` in the same world; `perform` may run them concurrently
    /// (the command passes `DispatchQueue.concurrentPerform`). Results are in `policies` order.
    public static func runAll(_ scenario: Scenario, policies: [PolicyKind] = PolicyKind.allCases,
                              perform: (Int, @escaping @Sendable (Int) -> Void) -> Void = { count, body in (0..<count).forEach(body) }) -> [RunResult] {
        let world = World(scenario)
        let results = ResultBox(count: policies.count)
        perform(policies.count) { index in
            results.set(index, run(scenario, world: world, policy: policies[index]))
        }
        return results.values
    }

    static func run(_ scenario: Scenario, world: World, policy: PolicyKind) -> RunResult {
        var run = Run(scenario: scenario, world: world, policy: policy)
        run.simulate()
        return run.finish()
    }
}

/// Results written from concurrent runs, one slot each.
final class ResultBox: Sendable {
    private let slots: Mutex<[RunResult?]>

    init(count: Int) { slots = Mutex(Array(repeating: nil, count: count)) }

    func set(_ index: Int, _ value: RunResult) { slots.withLock { $0[index] = value } }
    var values: [RunResult] { slots.withLock { $0.map { $0! } } }
}

/// The state of one policy's run.
struct Run {
    let scenario: Scenario
    let world: World
    let policy: PolicyKind
    var steerer: Steerer
    var queues: [SiteQueue]
    /// Current servers per site (after capacity events), and the region demand factors.
    var servers: [Int]
    var demandFactor: [Double]

    var arrivalRandom: SimulationRandom
    var serviceRandom: SimulationRandom

    /// Per resolver: cached answers by (masked prefix, scope).
    var caches: [[UInt64: (site: Int, expires: Double)]]
    var scopesSeen: [Int] = [0]

    /// Timed actions (report arrivals, health-check verdicts), kept sorted by time.
    var pending: [(time: Double, action: Action)] = []
    enum Action {
        case report(site: Int, utilization: Double)
        case check(site: Int, passing: Bool)
        case demand(region: Int, factor: Double)
    }
    var nextReport: [Double]
    var reportWork: [Double]
    var lastReportTime: [Double]

    // Metrics.
    var result: RunResult
    var histogram = Histogram()
    var windowHistogram = Histogram()
    var windowWork: [Double]
    var windowRequests: [Int]
    var windowRequestsOutside: [Int]
    var windowDown: [Bool]
    var overloaded = 0
    var overloadedOutside = 0
    var measuredOutside = 0
    var lastSite: [Int32]
    var changes = 0
    var authoritative = 0
    /// Requests per site per second, for the evacuation times.
    var perSecond: [[Int32]]
    let transitions: [ClosedRange<Double>]

    init(scenario: Scenario, world: World, policy: PolicyKind) {
        self.scenario = scenario
        self.world = world
        self.policy = policy
        steerer = Steerer(kind: policy, world: world, scenario: scenario)
        queues = scenario.sites.map { SiteQueue(servers: $0.servers, maxWait: $0.maxWaitMs / 1000) }
        servers = scenario.sites.map(\.servers)
        demandFactor = Array(repeating: 1, count: scenario.regions.count)
        arrivalRandom = SimulationRandom(seed: scenario.seed, stream: 2)
        serviceRandom = SimulationRandom(seed: scenario.seed, stream: 4)
        caches = Array(repeating: [:], count: world.resolvers.count)
        // Sites report on their own clocks: spread the first reports over one interval.
        var phase = SimulationRandom(seed: scenario.seed, stream: 5)
        nextReport = scenario.sites.map { _ in phase.unit() * scenario.reportInterval }
        reportWork = Array(repeating: 0, count: scenario.sites.count)
        lastReportTime = Array(repeating: 0, count: scenario.sites.count)
        result = RunResult(policy: policy)
        windowWork = Array(repeating: 0, count: scenario.sites.count)
        windowRequests = Array(repeating: 0, count: scenario.sites.count)
        windowRequestsOutside = Array(repeating: 0, count: scenario.sites.count)
        windowDown = Array(repeating: false, count: scenario.sites.count)
        lastSite = Array(repeating: -1, count: world.groups.count)
        perSecond = Array(repeating: Array(repeating: 0, count: Int(scenario.duration.rounded(.up)) + 1),
                          count: scenario.sites.count)
        // After an event the world is allowed to be wrong for the time it takes to notice
        // (health check, next report and its delay) plus one TTL for caches to turn over.
        let settle = scenario.detectDelay + scenario.reportInterval + scenario.reportDelay + Double(scenario.ttl)
        transitions = scenario.events.flatMap { event in
            event.end > event.at ? [event.at...(event.at + settle), event.end...(event.end + settle)]
                : [event.at...(event.at + settle)]
        }
        // Every site starts with one report, as after a deployment.
        for site in scenario.sites.indices {
            steerer.snapshot.loads[site] = SiteLoad(utilization: 0, serviceMs: scenario.sites[site].serviceMs,
                                                    healthy: true, reportedAt: 0)
        }
    }

    mutating func simulate() {
        let ticks = Int((scenario.duration).rounded(.up))
        let windowTicks = max(1, Int(scenario.window.rounded()))
        var events = scenario.events.sorted { $0.at < $1.at }[...]
        let baseRate = regionRates()
        var arrivals: [(time: Double, group: Int32)] = []

        for tick in 0..<ticks {
            let now = Double(tick)
            while let event = events.first, event.at <= now {
                apply(event, now: now)
                events.removeFirst()
            }
            runPending(until: now)
            emitReports(now: now)
            steerer.publishDirectedLoad(now: now)
            // Arrivals of this second, from their own random stream: the same for every policy.
            arrivals.removeAll(keepingCapacity: true)
            for region in scenario.regions.indices {
                let rate = baseRate[region] * demandFactor[region] * diurnal(region: region, now: now)
                let count = arrivalRandom.poisson(mean: rate)
                let members = world.regionGroups[region]
                for _ in 0..<count {
                    let group = members[world.regionPicker[region].draw(&arrivalRandom)]
                    arrivals.append((now + arrivalRandom.unit(), Int32(group)))
                }
            }
            arrivals.sort { $0.time < $1.time }
            for arrival in arrivals { serve(group: Int(arrival.group), at: arrival.time) }

            if (tick + 1) % windowTicks == 0 || tick == ticks - 1 {
                closeWindow(start: Double(tick + 1 - windowTicks), length: Double(windowTicks))
            }
        }
    }

    /// Requests per second per region at the scenario's mean utilisation.
    func regionRates() -> [Double] {
        let total = scenario.utilization * scenario.totalCapacity
        let weights = scenario.regions.map(\.weight)
        let sum = max(weights.reduce(0, +), 1e-9)
        return weights.map { total * $0 / sum }
    }

    func diurnal(region: Int, now: Double) -> Double {
        guard let diurnal = scenario.diurnal, diurnal.period > 0 else { return 1 }
        let phase = scenario.regions[region].location.longitude * Double.pi / 180
        return max(0, 1 + diurnal.amplitude * sin(2 * Double.pi * now / diurnal.period + phase))
    }

    mutating func apply(_ event: Event, now: Double) {
        func site(_ id: String) -> Int? { scenario.sites.firstIndex { $0.id == id } }
        switch event.kind {
        case .fail(let id):
            guard let index = site(id) else { return }
            queues[index].setUp(false, at: now)
            schedule(now + scenario.detectDelay, .check(site: index, passing: false))
        case .recover(let id):
            guard let index = site(id) else { return }
            queues[index].setUp(true, at: now)
            queues[index].resize(servers: servers[index], at: now)
            reportWork[index] = 0
            lastReportTime[index] = now
            schedule(now + scenario.detectDelay, .check(site: index, passing: true))
        case .capacity(let id, let factor):
            guard let index = site(id) else { return }
            servers[index] = max(1, Int((Double(scenario.sites[index].servers) * factor).rounded()))
            queues[index].resize(servers: servers[index], at: now)
        case .demand(let name, let factor, let until):
            guard let index = scenario.regions.firstIndex(where: { $0.name == name }) else { return }
            demandFactor[index] = factor
            schedule(until, .demand(region: index, factor: 1))
        }
    }

    mutating func schedule(_ time: Double, _ action: Action) {
        let position = pending.firstIndex { $0.time > time } ?? pending.endIndex
        pending.insert((time, action), at: position)
    }

    mutating func runPending(until now: Double) {
        while let first = pending.first, first.time <= now {
            pending.removeFirst()
            switch first.action {
            case .report(let site, let utilization):
                // As the server's writer does: a report is stamped with its clock when it
                // arrives, and measured over the time since the site's previous one.
                steerer.snapshot.loads[site] = SiteLoad(utilization: utilization,
                                                        serviceMs: scenario.sites[site].serviceMs,
                                                        healthy: true, reportedAt: now)
                    .measured(after: steerer.snapshot.loads[site])
            case .check(let site, let passing):
                steerer.snapshot.checksPassing[site] = passing
            case .demand(let region, let factor):
                demandFactor[region] = factor
            }
        }
    }

    /// A site measures its utilisation as the work offered since its last report over the
    /// servers it really has (so a silent capacity loss shows as higher utilisation).
    mutating func emitReports(now: Double) {
        for site in scenario.sites.indices where now >= nextReport[site] {
            nextReport[site] += scenario.reportInterval
            let elapsed = max(now - lastReportTime[site], 1e-9)
            let utilization = reportWork[site] / (Double(servers[site]) * elapsed)
            reportWork[site] = 0
            lastReportTime[site] = now
            guard queues[site].up else { continue }
            schedule(now + scenario.reportDelay, .report(site: site, utilization: utilization))
        }
    }

    mutating func resolve(group: Int, at time: Double) -> Int {
        let resolverIndex = world.groups[group].resolver
        let resolver = world.resolvers[resolverIndex]
        let prefix = world.groups[group].prefix
        let bits = UInt64(prefix.address.bytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        func key(_ scope: Int) -> UInt64 {
            let masked = scope == 0 ? 0 : bits & ~((UInt64(1) << UInt64(32 - scope)) - 1)
            return masked << 8 | UInt64(scope)
        }
        if resolver.ecs {
            // RFC 7871 §7.3.1: an answer cached for a scope serves every client inside it.
            for scope in scopesSeen.reversed() {
                if let entry = caches[resolverIndex][key(scope)], entry.expires > time { return entry.site }
            }
        } else if let entry = caches[resolverIndex][0], entry.expires > time {
            return entry.site
        }
        authoritative += 1
        let client = resolver.ecs ? Client(address: prefix.address, prefixLength: 24)
            : Client(address: resolver.address)
        let answer = steerer.decide(client: client, now: time)
        let ttl = resolver.stretches ? max(answer.ttl, scenario.resolvers.stretchTTL) : answer.ttl
        if resolver.ecs {
            let scope = min(answer.scope, 24)
            if !scopesSeen.contains(scope) { scopesSeen.append(scope); scopesSeen.sort() }
            caches[resolverIndex][key(scope)] = (answer.site, time + ttl)
        } else {
            caches[resolverIndex][0] = (answer.site, time + ttl)
        }
        return answer.site
    }

    /// The oracle: every queue known, the lowest expected response time for this request.
    func oracle(group: Int, at time: Double) -> Int {
        var best = 0
        var bestTime = Double.infinity
        for site in scenario.sites.indices {
            let expected = world.rtt(group: group, site: site) + queues[site].wait(at: time) * 1000
                + scenario.sites[site].serviceMs
            if expected < bestTime { (best, bestTime) = (site, expected) }
        }
        return best
    }

    mutating func serve(group: Int, at time: Double) {
        let site = policy == .oracle ? oracle(group: group, at: time) : resolve(group: group, at: time)
        let spec = scenario.sites[site]
        let service = spec.serviceCV == 1 ? serviceRandom.exponential(mean: spec.serviceMs / 1000)
            : serviceRandom.logNormal(mean: spec.serviceMs / 1000, cv: spec.serviceCV)
        result.sent += 1
        reportWork[site] += service
        windowWork[site] += service
        let wait = queues[site].arrive(at: time, service: service)
        let responseMs: Double
        if let wait {
            result.served += 1
            responseMs = world.rtt(group: group, site: site) + (wait + service) * 1000
        } else {
            result.dropped += 1
            responseMs = scenario.timeoutMs
            if !queues[site].up { windowDown[site] = true }
        }
        perSecond[site][min(Int(time), perSecond[site].count - 1)] += 1
        windowHistogram.add(responseMs)
        guard time >= scenario.warmup else { return }
        result.measured += 1
        if wait == nil { result.measuredDropped += 1 }
        histogram.add(responseMs)
        windowRequests[site] += 1
        if !transitions.contains(where: { $0.contains(time) }) {
            windowRequestsOutside[site] += 1
            measuredOutside += 1
        }
        if lastSite[group] >= 0 && lastSite[group] != Int32(site) { changes += 1 }
        lastSite[group] = Int32(site)
    }

    mutating func closeWindow(start: Double, length: Double) {
        var row: [Double] = []
        for site in scenario.sites.indices {
            let utilization = windowDown[site] || !queues[site].up ? Double.infinity
                : windowWork[site] / (Double(servers[site]) * length)
            row.append(utilization)
            if start + length > scenario.warmup {
                if utilization.isFinite { result.maxUtilization = max(result.maxUtilization, utilization) }
                if utilization >= 1 {
                    overloaded += windowRequests[site]
                    overloadedOutside += windowRequestsOutside[site]
                }
            }
            windowWork[site] = 0
            windowRequests[site] = 0
            windowRequestsOutside[site] = 0
            windowDown[site] = false
        }
        result.utilization.append(row)
        result.series.append((start, windowHistogram.mean, windowHistogram.quantile(0.95)))
        windowHistogram.reset()
    }

    func finish() -> RunResult {
        var result = self.result
        result.mean = histogram.mean
        result.p50 = histogram.quantile(0.5)
        result.p95 = histogram.quantile(0.95)
        result.p99 = histogram.quantile(0.99)
        result.overloadedShare = result.measured > 0 ? Double(overloaded) / Double(result.measured) : 0
        result.overloadedOutsideShare = measuredOutside > 0 ? Double(overloadedOutside) / Double(measuredOutside) : 0
        let hours = max(scenario.duration - scenario.warmup, 1) / 3600
        result.changesPerPrefixHour = Double(changes) / Double(max(world.groups.count, 1)) / hours
        result.authoritativeRate = Double(authoritative) / max(scenario.duration, 1)
        result.evacuation = evacuationTimes()
        return result
    }

    /// For each failure: the first 5-second span after it in which the site received less
    /// than 10% of its requests per second over the minute before.
    func evacuationTimes() -> [Double?] {
        scenario.events.compactMap { event -> Double?? in
            guard case .fail(let id) = event.kind, let site = scenario.sites.firstIndex(where: { $0.id == id }) else {
                return nil
            }
            let counts = perSecond[site]
            let at = Int(event.at)
            let before = counts[max(0, at - 60)..<min(at, counts.count)]
            let baseline = Double(before.reduce(0) { $0 + Int($1) }) / Double(max(before.count, 1))
            guard baseline > 0 else { return .some(0) }
            var second = at
            while second + 5 <= counts.count {
                let span = Double(counts[second..<(second + 5)].reduce(0) { $0 + Int($1) }) / 5
                if span < 0.1 * baseline { return .some(Double(second - at)) }
                second += 1
            }
            return .some(nil)
        }
    }
}
