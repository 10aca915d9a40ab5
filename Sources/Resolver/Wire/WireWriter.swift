/// Builds a message into a reusable byte array, compressing names (RFC 1035 §4.1.4).
///
/// One writer lives per transport handler and is reset for every response, so answering
/// reuses its storage instead of allocating.
public struct WireWriter {
    public private(set) var bytes: [UInt8]
    /// Offsets of label starts already written, candidates for compression pointers.
    private var labelOffsets: [UInt16]

    public init(capacity: Int = 4096) {
        bytes = []
        bytes.reserveCapacity(capacity)
        labelOffsets = []
        labelOffsets.reserveCapacity(128)
    }

    public var count: Int { bytes.count }

    public mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
        labelOffsets.removeAll(keepingCapacity: true)
    }

    /// Makes the message the `count` bytes `body` writes through a pointer (a response put
    /// together from precompiled parts), with no compression targets.
    public mutating func replaceAll(count: Int, _ body: (UnsafeMutableRawBufferPointer) -> Void) {
        reset()
        bytes.append(contentsOf: repeatElement(0, count: count))
        bytes.withUnsafeMutableBytes(body)
    }

    /// Cuts the message back to `length` bytes, forgetting compression targets beyond it.
    public mutating func truncate(to length: Int) {
        bytes.removeSubrange(length...)
        while let last = labelOffsets.last, Int(last) >= length { labelOffsets.removeLast() }
    }

    @inline(__always) public mutating func writeUInt8(_ value: UInt8) { bytes.append(value) }

    @inline(__always) public mutating func writeUInt16(_ value: UInt16) {
        bytes.append(UInt8(value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    @inline(__always) public mutating func writeUInt32(_ value: UInt32) {
        bytes.append(UInt8(value >> 24))
        bytes.append(UInt8(truncatingIfNeeded: value >> 16))
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    public mutating func writeBytes(_ data: some Collection<UInt8>) { bytes.append(contentsOf: data) }

    public mutating func writeBytes(_ data: UnsafeRawBufferPointer) { bytes.append(contentsOf: data) }

    public mutating func patchUInt16(_ value: UInt16, at offset: Int) {
        bytes[offset] = UInt8(value >> 8)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: value)
    }

    public mutating func patchUInt32(_ value: UInt32, at offset: Int) {
        bytes[offset] = UInt8(value >> 24)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: value >> 16)
        bytes[offset + 2] = UInt8(truncatingIfNeeded: value >> 8)
        bytes[offset + 3] = UInt8(truncatingIfNeeded: value)
    }

    /// Writes `name`, replacing its longest suffix already in the message by a pointer
    /// when `compress` is true. Names written uncompressed still become pointer targets.
    public mutating func writeName(_ name: DNSName, compress: Bool = true) {
        writeName(storage: name.storage, start: name.start, compress: compress)
    }

    /// Writes the uncompressed name that starts at `start` in `storage` (which may hold more
    /// after it, as RDATA does), without copying it out first.
    mutating func writeName(storage: [UInt8], start: Int, compress: Bool) {
        storage.withUnsafeBufferPointer { nameBytes in
            var index = start
            while nameBytes[index] != 0 {
                if compress, let target = findSuffix(nameBytes, from: index) {
                    writeUInt16(0xC000 | target)
                    return
                }
                if bytes.count < 0x4000 { labelOffsets.append(UInt16(bytes.count)) }
                let length = Int(nameBytes[index])
                bytes.append(contentsOf: nameBytes[index...(index + length)])
                index += 1 + length
            }
            bytes.append(0)
        }
    }

    /// Finds an earlier occurrence of the name suffix starting at `from`, comparing
    /// case-insensitively and following pointers already in the message.
    private func findSuffix(_ name: UnsafeBufferPointer<UInt8>, from: Int) -> UInt16? {
        bytes.withUnsafeBufferPointer { message in
            for candidate in labelOffsets where suffixMatches(name, from, message, Int(candidate)) {
                return candidate
            }
            return nil
        }
    }

    private func suffixMatches(_ name: UnsafeBufferPointer<UInt8>, _ from: Int,
                               _ message: UnsafeBufferPointer<UInt8>, _ at: Int) -> Bool {
        var i = from
        var j = at
        while true {
            // A candidate may be a label of the name being written, whose end is not yet in
            // the message ("a.a.example.": the second "a" matches the first, whose next label
            // is not written yet): such a suffix is not in the message, so no match.
            guard j < message.count else { return false }
            // Our own pointers always point backwards, so this terminates.
            while message[j] & 0xC0 == 0xC0 {
                j = Int(message[j] & 0x3F) << 8 | Int(message[j + 1])
            }
            let length = name[i]
            guard message[j] == length, j + Int(length) < message.count else { return false }
            if length == 0 { return true }
            for k in 1...Int(length) where asciiLower(name[i + k]) != asciiLower(message[j + k]) {
                return false
            }
            i += 1 + Int(length)
            j += 1 + Int(length)
        }
    }
}
