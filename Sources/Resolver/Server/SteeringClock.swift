#if canImport(Glibc)
import Glibc
#endif

/// The clock of report times and decisions: wall-clock seconds, so that times survive a
/// restart (persisted bindings) and agree between instances.
public enum SteeringClock {
    public static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}
