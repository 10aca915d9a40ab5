/// A bounds-checked cursor over a received message. It borrows the bytes (from a NIO
/// buffer or an array) for the duration of one decode and never copies the message.
public struct WireReader {
    public let bytes: UnsafeRawBufferPointer
    public private(set) var offset: Int

    public init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    public var remaining: Int { bytes.count - offset }

    public mutating func readUInt8() throws(WireError) -> UInt8 {
        guard offset < bytes.count else { throw .truncated }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func readUInt16() throws(WireError) -> UInt16 {
        guard offset + 2 <= bytes.count else { throw .truncated }
        defer { offset += 2 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    public mutating func readUInt32() throws(WireError) -> UInt32 {
        guard offset + 4 <= bytes.count else { throw .truncated }
        defer { offset += 4 }
        return UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16
            | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }

    /// Returns the next `count` bytes and advances past them.
    public mutating func readBytes(_ count: Int) throws(WireError) -> UnsafeRawBufferPointer {
        guard count >= 0, offset + count <= bytes.count else { throw .truncated }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
    }

    public mutating func skip(_ count: Int) throws(WireError) {
        guard count >= 0, offset + count <= bytes.count else { throw .truncated }
        offset += count
    }

    /// Reads a possibly compressed name (RFC 1035 §4.1.4) and returns it uncompressed.
    ///
    /// Hostile input is bounded three ways: a pointer must point strictly before the
    /// place it was read from (so no loop can form), labels are at most 63 octets, and the
    /// expanded name at most 255 octets.
    public mutating func readName() throws(WireError) -> DNSName {
        var out: [UInt8] = []
        out.reserveCapacity(32)
        var position = offset
        var resumeAt: Int? = nil
        // Every pointer must move backwards, so the lowest place reached only decreases.
        var lowestPointerSource = position
        while true {
            guard position < bytes.count else { throw .truncated }
            let length = bytes[position]
            switch length & 0xC0 {
            case 0x00:
                if length == 0 {
                    out.append(0)
                    guard out.count <= DNSName.maxWireLength else { throw .nameTooLong }
                    offset = resumeAt ?? (position + 1)
                    return DNSName(uncheckedWire: out)
                }
                let end = position + 1 + Int(length)
                guard end <= bytes.count else { throw .truncated }
                guard out.count + 1 + Int(length) + 1 <= DNSName.maxWireLength else { throw .nameTooLong }
                out.append(length)
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[(position + 1)..<end]))
                position = end
            case 0xC0:
                guard position + 2 <= bytes.count else { throw .truncated }
                let target = Int(length & 0x3F) << 8 | Int(bytes[position + 1])
                guard target < lowestPointerSource else { throw .badPointer }
                if resumeAt == nil { resumeAt = position + 2 }
                lowestPointerSource = target
                position = target
            default:
                throw .badLabelType
            }
        }
    }
}
