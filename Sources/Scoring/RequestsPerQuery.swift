/// How many requests at the sites one DNS query of a binding stands for, measured from the
/// sites' reports, separately for the two kinds of binding.
///
/// A resolver asks at most once per TTL whatever the number of users behind it, so a query
/// rate says little of demand by itself. A client subnet (ECS) is a customer network; a
/// resolver's own address (no ECS) stands for every user of that resolver, often tens of
/// times more. One figure for both, the reported load ÷ all bindings' query rate, makes the
/// anti-herding estimate of a moved resolver far too small: the server then sends several
/// resolvers to a site that has room for one, and the site overloads until its next report
/// and the answers' TTL have gone by.
///
/// The split is the least-squares fit of each site's reported load to the query rates of
/// its subnet and resolver bindings that the report has seen, over the recent reports (a
/// few minutes' half-life): sites differ in their mix, and the mix moves, which is what
/// tells the two apart. Only the fit's ratio is used; the figures are scaled so that all
/// bindings together account for the reported load, as one figure did. When the fit is not
/// determined (one kind only, or the same mix everywhere), both are the single figure.
public struct RequestsPerQuery: Sendable, Equatable {
    /// Requests per query of a client-subnet binding, and of a resolver's binding.
    public var subnet: Double
    public var resolver: Double

    public init(subnet: Double, resolver: Double) {
        self.subnet = subnet
        self.resolver = resolver
    }

    /// The figure for a binding of that kind (`Binding.viaResolver`, `Client.isSourceAddress`).
    public func of(viaResolver: Bool) -> Double { viaResolver ? resolver : subnet }

    /// Query rates of the two kinds.
    public struct Rates: Sendable, Equatable {
        public var subnet = 0.0
        public var resolver = 0.0

        public init(subnet: Double = 0, resolver: Double = 0) {
            self.subnet = subnet
            self.resolver = resolver
        }

        public mutating func add(_ rate: Double, viaResolver: Bool) {
            if viaResolver { resolver += rate } else { subnet += rate }
        }
    }

    /// The decayed sums of the normal equations of reported = subnet × s + resolver × r.
    public struct Fit: Sendable, Equatable {
        var ss = 0.0, sr = 0.0, rr = 0.0, sy = 0.0, ry = 0.0
        var updated: Double?
        /// Seconds after which a report counts half.
        public var halfLife: Double

        public init(halfLife: Double = 300) { self.halfLife = halfLife }

        /// One site's report (requests/s) and the query rates of its bindings it has seen.
        public mutating func add(reported: Double, seen: Rates, at now: Double) {
            guard reported.isFinite, seen.subnet.isFinite, seen.resolver.isFinite else { return }
            if let updated, now > updated {
                let decay = pow(0.5, (now - updated) / halfLife)
                (ss, sr, rr, sy, ry) = (ss * decay, sr * decay, rr * decay, sy * decay, ry * decay)
            }
            updated = max(updated ?? now, now)
            ss += seen.subnet * seen.subnet
            sr += seen.subnet * seen.resolver
            rr += seen.resolver * seen.resolver
            sy += seen.subnet * reported
            ry += seen.resolver * reported
        }

        /// Resolver requests per query ÷ subnet requests per query, when the reports tell it.
        public var ratio: Double? {
            let determinant = ss * rr - sr * sr
            // Nearly collinear (every site with the same mix, or one kind only): not told.
            guard ss > 0, rr > 0, determinant > 0.01 * ss * rr else { return nil }
            let subnet = (rr * sy - sr * ry) / determinant
            let resolver = (ss * ry - sr * sy) / determinant
            guard subnet > 0, resolver > 0, subnet.isFinite, resolver.isFinite else { return nil }
            return min(max(resolver / subnet, 0.01), 100)
        }

        /// Both figures, scaled so that the bindings' `total` query rates account for the
        /// load all sites `reported`; `fallback` for both while nothing is reported.
        public func estimate(reported: Double, total: Rates, fallback: Double) -> RequestsPerQuery {
            let both = total.subnet + total.resolver
            guard both > 0, reported > 0 else { return RequestsPerQuery(subnet: fallback, resolver: fallback) }
            // One kind only: the single figure, whatever the fit says.
            let ratio = total.subnet > 0 && total.resolver > 0 ? (self.ratio ?? 1) : 1
            let subnet = reported / (total.subnet + ratio * total.resolver)
            return RequestsPerQuery(subnet: subnet, resolver: ratio * subnet)
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
