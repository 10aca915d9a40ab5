import Foundation
import Resolver
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Paths of the package and the binaries `swift test` built.
enum Paths {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static var resolverd: String {
        let besideTests = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("resolverd").path
        if FileManager.default.isExecutableFile(atPath: besideTests) { return besideTests }
        return root.appendingPathComponent(".build/debug/resolverd").path
    }

    static let zones = root.appendingPathComponent("zones").path

    static func tool(_ name: String) -> String? {
        for directory in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"] {
            let path = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// A fresh directory for one test's files (configuration, zones, logs, state), removed
    /// with the others when the test process exits; `KEEP_TEST_DIRS=1` keeps them, to read a
    /// failed test's server log afterwards.
    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "resolverd-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        made.withLock { $0.append(path) }
        _ = removedAtExit
        return path
    }

    private static let made = Mutex<[String]>([])

    /// Registered once: removes every directory `temporaryDirectory` made. At exit rather than
    /// at each test's end: a server a test started may write to its directory until it stops.
    private static let removedAtExit: Void = {
        atexit {
            guard ProcessInfo.processInfo.environment["KEEP_TEST_DIRS"] != "1" else { return }
            for path in Paths.made.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
        }
    }()
}

/// Calls `body` with an IPv4 loopback socket address for `port` (0: any port).
func withLoopback<T>(port: Int, host: String = "127.0.0.1", _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr(host)
    address.sin_port = UInt16(port).bigEndian
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
}

/// A loopback port free for both UDP and TCP at the time of the call.
func freePort() -> Int {
    for _ in 0..<50 {
        let udp = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(udp) }
        guard withLoopback(port: 0, { bind(udp, $0, $1) }) == 0 else { continue }
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(udp, $0, &length) }
        }
        let port = Int(UInt16(bigEndian: address.sin_port))
        let tcp = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(tcp) }
        if withLoopback(port: port, { bind(tcp, $0, $1) }) == 0 { return port }
    }
    fatalError("no free port")
}

/// Runs a command to completion and returns its exit status and output.
@discardableResult
func run(_ executable: String, _ arguments: [String], timeout: TimeInterval = 30) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // Read before waiting so a full pipe cannot block the child.
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(10_000) }
    if process.isRunning { process.terminate() }
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

/// A DNS client over real sockets, sending exactly the bytes a test gives it.
enum RawDNS {
    static func udp(port: Int, _ packet: [UInt8], host: String = "127.0.0.1", timeout: Int = 2) -> [UInt8]? {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let sent = packet.withUnsafeBytes { bytes in
            withLoopback(port: port, host: host) { sendto(fd, bytes.baseAddress, bytes.count, 0, $0, $1) }
        }
        // A zero timeout means "send only": SO_RCVTIMEO of zero would block forever.
        guard sent == packet.count, timeout > 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 65535)
        let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard received > 0 else { return nil }
        return Array(buffer[0..<received])
    }

    /// Opens a TCP connection to the server.
    static func connectTCP(port: Int, timeout: Int = 3) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let connected = withLoopback(port: port) { connect(fd, $0, $1) }
        guard connected == 0 else { close(fd); return nil }
        return fd
    }

    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { return false }
            offset += sent
        }
        return true
    }

    static func receiveExactly(_ fd: Int32, _ count: Int) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let received = buffer[offset...].withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard received > 0 else { return nil }
            offset += received
        }
        return buffer
    }

    /// Sends every query on one connection before reading any response (RFC 7766 §6.2.1.1
    /// pipelining), then reads one framed response per query.
    static func tcpPipelined(port: Int, _ packets: [[UInt8]]) -> [[UInt8]]? {
        guard let fd = connectTCP(port: port) else { return nil }
        defer { close(fd) }
        var stream: [UInt8] = []
        for packet in packets { stream += [UInt8(packet.count >> 8), UInt8(packet.count & 0xFF)] + packet }
        guard sendAll(fd, stream) else { return nil }
        var responses: [[UInt8]] = []
        for _ in packets {
            guard let prefix = receiveExactly(fd, 2) else { return nil }
            guard let body = receiveExactly(fd, Int(prefix[0]) << 8 | Int(prefix[1])) else { return nil }
            responses.append(body)
        }
        return responses
    }

    static func query(_ name: String, _ type: RRType, id: UInt16 = 0x4242, edns: EDNS? = EDNS()) -> [UInt8] {
        Query(header: Header(id: id), question: Question(name: try! DNSName(name), type: type), edns: edns).wire
    }
}

/// A `resolverd serve` process on loopback ports of its own, stopped by PID at the end.
final class LiveServer: @unchecked Sendable {
    let host: String
    let port: Int
    let directory: String
    let configPath: String
    private(set) var process: Process
    let logPath: String

    /// Serves the shipped zones on a fresh port, with `dnsOptions` added under `dns:`.
    convenience init(zones: String = Paths.zones, dnsOptions: [String] = [], extraConfig: String = "",
                     arguments: [String] = [], environment: [String: String] = [:]) throws {
        try self.init(arguments: arguments, environment: environment) { port in
            """
            dns:
              listen: ["127.0.0.1:\(port)"]
              nsid: live-test
              tcp-idle-timeout: 2
            \(dnsOptions.map { "  " + $0 + "\n" }.joined())zones: \(zones)
            \(extraConfig)
            """
        }
    }

    /// Serves the configuration `makeConfig(port)` returns, written to a fresh directory.
    /// `files` are written beside it (relative paths in the configuration resolve there).
    /// `host`/`port` pick the DNS address the probe uses (a fresh loopback port by default);
    /// `environment` is added to the process's.
    /// `launcher`: a command that runs the server (e.g. `taskset -c 0`), exec'ing it so that
    /// the process is the server's.
    init(files: [String: String] = [:], probe: String = "svc.example.", host: String = "127.0.0.1", port: Int? = nil,
         arguments: [String] = [], environment: [String: String] = [:], launcher: [String] = [],
         makeConfig: (Int) -> String) throws {
        self.host = host
        directory = try Paths.temporaryDirectory()
        configPath = directory + "/resolverd.yaml"
        logPath = directory + "/resolverd.log"
        for (name, text) in files { try text.write(toFile: "\(directory)/\(name)", atomically: true, encoding: .utf8) }
        // A port found free can be taken before the server binds it: tests run in parallel,
        // and their clients' ephemeral ports come from the same range. A server that could not
        // listen on a port picked here is started again on another one.
        var chosen = port ?? freePort()
        var attempt = 0
        while true {
            try makeConfig(chosen).write(toFile: configPath, atomically: true, encoding: .utf8)
            FileManager.default.createFile(atPath: logPath, contents: nil)
            let process = Process()
            let command = launcher + [Paths.resolverd, "serve", "--config", configPath] + arguments
            process.executableURL = URL(fileURLWithPath: command[0])
            process.arguments = Array(command.dropFirst())
            if !environment.isEmpty {
                process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            }
            let log = FileHandle(forWritingAtPath: logPath)!
            process.standardOutput = log
            process.standardError = log
            process.standardInput = FileHandle.nullDevice
            try process.run()
            do {
                try Self.waitUntilAnswering(process, host: host, port: chosen, logPath: logPath)
                (self.port, self.process) = (chosen, process)
                return
            } catch LiveError.exited(let text) where port == nil && attempt < 4 && text.contains("Address already in use") {
                attempt += 1
                chosen = freePort()
            }
        }
    }

    func waitUntilAnswering() throws {
        try Self.waitUntilAnswering(process, host: host, port: port, logPath: logPath)
    }

    private static func waitUntilAnswering(_ process: Process, host: String, port: Int, logPath: String) throws {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if !process.isRunning { throw LiveError.exited(log(at: logPath)) }
            if RawDNS.udp(port: port, RawDNS.query("svc.example.", .soa), host: host, timeout: 1) != nil { return }
            usleep(50_000)
        }
        throw LiveError.notAnswering(log(at: logPath))
    }

    var log: String { Self.log(at: logPath) }

    private static func log(at path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// The server's threads: each one's name and nice value, from /proc/PID/task.
    func threads() -> [(name: String, nice: Int)] {
        let task = "/proc/\(process.processIdentifier)/task"
        return ((try? FileManager.default.contentsOfDirectory(atPath: task)) ?? []).compactMap { id in
            guard let name = try? String(contentsOfFile: "\(task)/\(id)/comm", encoding: .utf8),
                  let stat = try? String(contentsOfFile: "\(task)/\(id)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            // Fields after "(comm)": state is field 3, nice field 19 (proc(5)).
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 16, let nice = Int(fields[16]) else { return nil }
            return (name.trimmingCharacters(in: .whitespacesAndNewlines), nice)
        }
    }

    /// SIGTERM, then SIGKILL if it has not stopped within five seconds. Returns the exit status.
    @discardableResult
    func stop() -> Int32 {
        guard process.isRunning else { return process.terminationStatus }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit { stop() }

    func dig(_ arguments: [String], server: String? = nil) throws -> String {
        let dig = try #require(Paths.tool("dig"), "dig is not installed (make test installs dnsutils)")
        return try run(dig, ["@\(server ?? host)", "-p", "\(port)", "+norec", "+time=2", "+tries=1"] + arguments).stdout
    }

    enum LiveError: Error { case exited(String), notAnswering(String) }
}

/// Bytes from hexadecimal text, for packets written out in tests.
enum Golden {
    static func bytes(_ hex: String) -> [UInt8] {
        let digits = Array(hex.utf8)
        return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
    }
}
