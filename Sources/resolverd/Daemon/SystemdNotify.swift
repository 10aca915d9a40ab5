import Foundation

/// The sd_notify(3) protocol without linking libsystemd: one datagram of `KEY=VALUE` lines
/// to the Unix socket named by `$NOTIFY_SOCKET`, which systemd sets for `Type=notify`
/// units. Without the variable every call does nothing, so the daemon runs the same under
/// any supervisor.
struct SystemdNotifier: Sendable {
    let socketPath: String?

    init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        socketPath = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Sockets are bound: systemd starts units ordered after this one.
    func ready(status: String) { send("READY=1\nSTATUS=\(status)") }

    /// A reload begins; `ready` ends it. MONOTONIC_USEC lets systemd ≥ 253 match the
    /// message to the reload it asked for (`Type=notify-reload`).
    func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        send("RELOADING=1\nMONOTONIC_USEC=\(Int(now.tv_sec) * 1_000_000 + Int(now.tv_nsec) / 1000)")
    }

    func stopping() { send("STOPPING=1") }

    /// Sends one notification; returns false when there is no socket or the send failed.
    /// A name starting with `@` is in the abstract namespace (a leading NUL byte).
    @discardableResult
    func send(_ message: String) -> Bool {
        guard let socketPath else { return false }
        var path = Array(socketPath.utf8)
        if path.first == UInt8(ascii: "@") { path[0] = 0 }
        var address = sockaddr_un()
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.count < capacity else { return false }
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: path)
        }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + path.count)
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let bytes = Array(message.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, bytes, bytes.count, 0, $0, length) }
        }
        return sent == bytes.count
    }
}
