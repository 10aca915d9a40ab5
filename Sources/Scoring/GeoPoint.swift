#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A point on the Earth, in degrees.
public struct GeoPoint: Hashable, Sendable, CustomStringConvertible {
    public var latitude: Double
    public var longitude: Double

    public init?(latitude: Double, longitude: Double) {
        guard latitude.isFinite, longitude.isFinite, (-90...90).contains(latitude), (-180...180).contains(longitude) else {
            return nil
        }
        self.latitude = latitude
        self.longitude = longitude
    }

    /// Great-circle distance in kilometres (haversine).
    public func distance(to other: GeoPoint) -> Double {
        let radians = Double.pi / 180
        let dLat = (other.latitude - latitude) * radians
        let dLon = (other.longitude - longitude) * radians
        let a = sin(dLat / 2) * sin(dLat / 2)
            + cos(latitude * radians) * cos(other.latitude * radians) * sin(dLon / 2) * sin(dLon / 2)
        return 6371.0 * 2 * atan2(a.squareRoot(), (1 - a).squareRoot())
    }

    /// A round-trip time estimate from distance alone: light in fibre covers about 200 km
    /// per millisecond, real paths are about 1.5 times the great circle, plus 2 ms of access
    /// and queuing. Used only where no measurement exists.
    public func estimatedRTT(to other: GeoPoint) -> Double {
        2.0 + 2.0 * distance(to: other) * 1.5 / 200.0
    }

    public var description: String { "[\(latitude), \(longitude)]" }
}
