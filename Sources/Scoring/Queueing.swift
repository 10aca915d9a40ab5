#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The compute delay a request meets at a site: its service time plus its wait for a free
/// server, with the site as an M/M/c queue.
///
/// A site is not one server. At the same utilisation a data centre of 64 parallel servers
/// barely queues, while an edge of 6 already makes a request wait a good part of a service
/// time, and an M/M/1 model (service time / (1 − ρ)) gives both the same delay. Steering by
/// that model fills every site to the same utilisation; the small ones, where each client
/// prefix is a big share of the capacity, then swing past 1 while the large ones have room.
/// With c in the model, the large sites take the load they can take without queueing, and
/// the small ones keep the headroom their coarse load needs.
public enum Queueing {
    /// A site's parallel servers: the requests in service at full utilisation, by Little's
    /// law (capacity in requests/s × service time in s). The report's `capacity` and
    /// `service_ms` give it without a field of its own; at least one.
    public static func servers(capacity: Double, serviceMs: Double) -> Double {
        max(1, capacity * serviceMs / 1000)
    }

    /// Mean response time in ms (service + wait) at utilisation `rho` with `servers` parallel
    /// servers, at most `cap` (and `cap` at or above full utilisation).
    ///
    /// The wait is Sakasegawa's approximation of M/M/c (1977):
    /// Wq ≈ S · ρ^(√(2(c+1)) − 1) / (c (1 − ρ)). It is exact for one server (the M/M/1
    /// delay S / (1 − ρ) in all), within 4 % of a service time of Erlang C for every c, and
    /// costs one `pow` rather than a loop over the servers.
    public static func responseTime(serviceMs: Double, utilization rho: Double, servers: Double, cap: Double) -> Double {
        guard rho < 1 else { return cap }
        let c = max(servers, 1)
        let rho = max(rho, 0)
        let wait = serviceMs * pow(rho, (2 * (c + 1)).squareRoot() - 1) / (c * (1 - rho))
        return min(serviceMs + wait, cap)
    }

    /// The chance that a site whose utilisation is estimated at `utilization`, with normal
    /// error `standardError`, is in fact at 1 or above: Q((1 − ρ) / σ). 0 without an error, and
    /// not computed where it is below 10⁻⁹ (six standard errors and more).
    public static func overloadProbability(utilization rho: Double, standardError sigma: Double) -> Double {
        guard sigma > 0 else { return rho >= 1 ? 1 : 0 }
        let z = (1 - rho) / sigma
        if z >= 6 { return 0 }
        return 0.5 * erfc(z / 2.0.squareRoot())
    }

    /// The service time at low load of a site that measured a compute delay of `delayMs` at
    /// utilisation `rho` (a CATS level-0 report): the one for which `responseTime` gives the
    /// measurement back, found by bisection. It lies between delay × (1 − ρ), the answer for
    /// one server, and the delay itself; the servers grow with it (`servers(capacity:...)`).
    public static func serviceTime(delayMs: Double, utilization rho: Double, capacity: Double) -> Double {
        guard rho < 1 else { return delayMs * 0.01 }
        var low = delayMs * max(1 - rho, 0.01)
        var high = delayMs
        for _ in 0..<60 where high - low > 1e-9 * delayMs {
            let middle = (low + high) / 2
            let delay = responseTime(serviceMs: middle, utilization: rho,
                                     servers: servers(capacity: capacity, serviceMs: middle), cap: .infinity)
            if delay < delayMs { low = middle } else { high = middle }
        }
        return (low + high) / 2
    }
}
