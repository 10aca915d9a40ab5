/// An edge site as a first-come-first-served queue with `servers` parallel servers and a
/// bounded wait (G/G/c with rejection), simulated exactly per request by the Kiefer–Wolfowitz
/// recursion: a min-heap of the times each server next becomes free. A request arriving at
/// `t` starts on the earliest-free server at max(t, free) and holds it for its service time.
struct SiteQueue: Sendable {
    private var free: [Double]
    private(set) var up = true
    let maxWait: Double

    init(servers: Int, maxWait: Double) {
        free = Array(repeating: 0, count: max(servers, 1))
        self.maxWait = maxWait
    }

    var servers: Int { up ? free.count : 0 }

    /// The wait a request arriving at `time` would have, without taking a server.
    func wait(at time: Double) -> Double {
        up ? max(0, free[0] - time) : .infinity
    }

    /// Serves a request arriving at `time`; returns its wait, or nil when it is rejected (the
    /// site is down or the wait would exceed the limit).
    mutating func arrive(at time: Double, service: Double) -> Double? {
        guard up else { return nil }
        let wait = max(0, free[0] - time)
        guard wait <= maxWait else { return nil }
        free[0] = time + wait + service
        siftDown(0)
        return wait
    }

    /// Changes the number of servers: the busiest ones leave (their requests still finish),
    /// new ones are free at `time`.
    mutating func resize(servers: Int, at time: Double) {
        let target = max(servers, 1)
        free.sort()
        if target < free.count {
            free.removeLast(free.count - target)
        } else {
            free.append(contentsOf: repeatElement(time, count: target - free.count))
            free.sort()
        }
    }

    /// A failed site loses its queue; a recovered one starts empty.
    mutating func setUp(_ isUp: Bool, at time: Double) {
        up = isUp
        for index in free.indices { free[index] = time }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        let count = free.count
        while true {
            let left = 2 * parent + 1
            guard left < count else { return }
            var child = left
            if left + 1 < count && free[left + 1] < free[left] { child = left + 1 }
            guard free[child] < free[parent] else { return }
            free.swapAt(child, parent)
            parent = child
        }
    }
}
